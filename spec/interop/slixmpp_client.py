#!/usr/bin/python3
# Interop client for Cadence's test suite, driven by slixmpp (Debian's python3-slixmpp 1.8.3).
# Run with /usr/bin/python3 (the system Python that has slixmpp).
#
# Prints machine-readable lines on stdout, one event per line (values run to the end of the
# line or the next ' key='; message bodies have newlines escaped as \n):
#   EVENT tls version=TLSv1.3
#   EVENT failed_auth condition=not-authorized text=...
#   EVENT failed_all_auth
#   EVENT mechanism SCRAM-SHA-256-PLUS           (the mechanism that succeeded)
#   EVENT channel_binding gs2=p=tls-unique,,     (-PLUS only: the GS2 header sent)
#   EVENT auth_success
#   EVENT session_start jid=romeo@localhost/slix
#   EVENT roster items=juliet@localhost
#   EVENT sent_presence
#   EVENT sent subscribe to=juliet@localhost
#   EVENT roster_push jid=juliet@localhost subscription=both ask=
#   EVENT subscribe from=juliet@localhost
#   EVENT subscribed from=juliet@localhost
#   EVENT presence from=juliet@localhost/garden type=available show=available
#   EVENT message from=juliet@localhost/garden type=chat body=...
#   EVENT sent to=juliet@localhost body=...
#   EVENT done                                   (the action succeeded)
#   EVENT closed                                 (the stream was closed after 'done')
#   FAIL <reason>
# Exit status: 0 success, 1 failure (auth failure, timeout, disconnection before done), 2 usage.
#
# Actions:
#   login  log in (STARTTLS + SASL + bind), report, log out.
#   chat   log in, fetch the roster, send presence; with --subscribe, subscribe to --peer
#          (slixmpp's auto_authorize/auto_subscribe answer the peer's requests); wait until the
#          peer's available presence is seen; with --send, send a chat message to the peer and wait
#          for one back; with --echo, answer the first chat message from the peer with
#          "echo: <body>"; once the server has pushed subscription='both' for the peer, log out.
import argparse
import asyncio
import logging
import ssl
import sys

from slixmpp import ClientXMPP, JID


def out(line: str) -> None:
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def one_line(text: str) -> str:
    return text.replace('\\', '\\\\').replace('\n', '\\n')


class Client(ClientXMPP):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.jid, args.password)
        self.args = args
        self.peer = JID(args.peer) if args.peer else None
        self.done: asyncio.Future = self.loop.create_future()
        self.peer_online = asyncio.Event()
        self.got_message = asyncio.Event()
        self.echoed = asyncio.Event()
        self.mutual = asyncio.Event()
        self.closed = False

        # Self-signed test certificate: no verification; cap the TLS version as asked (slixmpp
        # 1.8.3's SCRAM-*-PLUS only knows tls-unique, which does not exist in TLS 1.3).
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.ssl_context.maximum_version = {
            '1.2': ssl.TLSVersion.TLSv1_2,
            '1.3': ssl.TLSVersion.TLSv1_3,
        }[args.tls_max]

        # feature_mechanisms is registered by ClientXMPP; it reads these when the server's
        # <mechanisms/> arrive.
        if args.mech:
            self['feature_mechanisms'].use_mech = args.mech
            if not args.mech.endswith('-PLUS') and not args.gs2_y:
                # slixmpp sends gs2 flag 'y' ("I support channel binding but think you don't")
                # whenever the socket yields tls-unique data, even though the server offered
                # -PLUS and we chose not to use it; a correct server then refuses the login as a
                # downgrade (RFC 5802 §6). A non-PLUS login therefore withholds the binding
                # data, so the flag is 'n'.
                default_credentials = self['feature_mechanisms']._default_credentials

                def credentials(required, optional):
                    result = default_credentials(required, optional)
                    if 'channel_binding' in result:
                        result['channel_binding'] = None
                    return result

                self['feature_mechanisms'].sasl_callback = credentials

        self.auto_authorize = True
        self.auto_subscribe = True

        self.add_event_handler('connection_failed', self.on_connection_failed)
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('stream_error', self.on_stream_error)
        self.add_event_handler('tls_success', self.on_tls)
        self.add_event_handler('auth_success', self.on_auth_success)
        self.add_event_handler('failed_auth', self.on_failed_auth)
        self.add_event_handler('failed_all_auth', self.on_failed_all_auth)
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('presence_subscribe', self.on_subscribe)
        self.add_event_handler('presence_subscribed', self.on_subscribed)
        self.add_event_handler('presence_available', self.on_available)
        self.add_event_handler('presence_unavailable', self.on_unavailable)
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('roster_update', self.on_roster_push)

    # -- outcome ---------------------------------------------------------------------------

    def finish(self, ok: bool, reason: str = '') -> None:
        if self.done.done():
            return
        if ok:
            out('EVENT done')
        else:
            out(f'FAIL {reason}')
        self.done.set_result(ok)

    # -- connection ------------------------------------------------------------------------

    def on_connection_failed(self, err) -> None:
        self.finish(False, f'connection_failed {err}')

    def on_disconnected(self, reason) -> None:
        self.closed = True
        self.finish(False, f'disconnected {reason}')

    def on_stream_error(self, err) -> None:
        out(f"EVENT stream_error condition={err['condition']}")

    def on_tls(self, *_args) -> None:
        # 'tls_success' fires before slixmpp stores the new TLS transport: look once it has.
        self.loop.call_soon(self.report_tls)

    def report_tls(self) -> None:
        sslobj = self.transport.get_extra_info('ssl_object') if self.transport else None
        version = sslobj.version() if sslobj is not None else 'none'
        out(f'EVENT tls version={version}')

    # -- SASL ------------------------------------------------------------------------------

    def on_auth_success(self, _stanza) -> None:
        # The mechanism actually used is the one feature_mechanisms chose and completed.
        mech = self['feature_mechanisms'].mech
        out(f'EVENT mechanism {mech.name}')
        if getattr(mech, 'use_channel_binding', False):
            gs2 = getattr(mech, 'gs2_header', b'').decode('ascii', 'replace')
            out(f'EVENT channel_binding gs2={gs2}')
        out('EVENT auth_success')

    def on_failed_auth(self, stanza) -> None:
        text = stanza['text'] if 'text' in stanza.keys() else ''
        out(f"EVENT failed_auth condition={stanza['condition']} text={one_line(str(text))}")

    def on_failed_all_auth(self, *_args) -> None:
        out('EVENT failed_all_auth')
        self.finish(False, 'authentication failed')

    # -- session ---------------------------------------------------------------------------

    async def on_session_start(self, _event) -> None:
        out(f'EVENT session_start jid={self.boundjid.full}')
        try:
            if self.args.action == 'login':
                self.finish(True)
                return
            await self.chat()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.finish(False, f'{type(exc).__name__}: {one_line(str(exc))}')

    async def chat(self) -> None:
        if not self.args.no_roster:
            roster = await self.get_roster(timeout=10)
            items = sorted(str(j) for j in roster['roster']['items'].keys())
            out(f"EVENT roster items={','.join(items)}")
        self.send_presence()
        out('EVENT sent_presence')
        if self.peer is None:
            raise RuntimeError('chat needs --peer')
        if self.args.subscribe:
            self.send_presence(pto=self.peer.bare, ptype='subscribe')
            out(f'EVENT sent subscribe to={self.peer.bare}')
        await self.peer_online.wait()
        if self.args.send is not None:
            self.send_message(mto=self.peer, mbody=self.args.send, mtype='chat')
            out(f'EVENT sent to={self.peer} body={one_line(self.args.send)}')
            await self.got_message.wait()
        if self.args.echo:
            await self.echoed.wait()
        # Both subscriptions are in place (the server pushed subscription='both'), so the peer
        # has been sent our presence before we go offline.
        await self.mutual.wait()
        # Let the last stanzas leave before closing the stream.
        await asyncio.sleep(0.2)
        self.finish(True)

    def on_roster_push(self, iq) -> None:
        for jid, item in iq['roster']['items'].items():
            sub = item.get('subscription', '')
            ask = item.get('ask', '')
            out(f'EVENT roster_push jid={jid} subscription={sub} ask={ask}')
            if self.peer is not None and JID(jid).bare == self.peer.bare and sub == 'both':
                self.mutual.set()

    def on_subscribe(self, pres) -> None:
        out(f"EVENT subscribe from={pres['from']}")

    def on_subscribed(self, pres) -> None:
        out(f"EVENT subscribed from={pres['from']}")

    def on_available(self, pres) -> None:
        frm = pres['from']
        show = pres['show'] or 'available'
        out(f'EVENT presence from={frm} type=available show={show}')
        if self.peer is not None and frm.bare == self.peer.bare and frm.resource:
            self.peer_online.set()

    def on_unavailable(self, pres) -> None:
        out(f"EVENT presence from={pres['from']} type=unavailable")

    def on_message(self, msg) -> None:
        body = msg['body']
        out(f"EVENT message from={msg['from']} type={msg['type']} body={one_line(body)}")
        if self.peer is None or msg['from'].bare != self.peer.bare or msg['type'] not in ('chat', 'normal'):
            return
        self.got_message.set()
        if self.args.echo and not self.echoed.is_set():
            reply = f'echo: {body}'
            msg.reply(reply).send()
            out(f"EVENT sent to={msg['from']} body={one_line(reply)}")
            self.echoed.set()


def main() -> int:
    p = argparse.ArgumentParser(description='slixmpp interop client for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--mech', default='', help='SASL mechanism to use (default: slixmpp picks)')
    p.add_argument('--tls-max', choices=['1.2', '1.3'], default='1.3')
    p.add_argument('--action', choices=['login', 'chat'], default='login')
    p.add_argument('--peer', default='')
    p.add_argument('--subscribe', action='store_true')
    p.add_argument('--send', default=None)
    p.add_argument('--echo', action='store_true')
    p.add_argument('--no-roster', action='store_true', help='chat: skip the roster get')
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--gs2-y', action='store_true',
                   help="keep slixmpp's own gs2 flag for a non-PLUS SCRAM ('y' when TLS yields tls-unique)")
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')

    xmpp = Client(args)
    # STARTTLS only (no direct TLS); refuse to continue without it.
    xmpp.connect((args.host, args.port), use_ssl=False, force_starttls=True, disable_starttls=False)
    try:
        ok = xmpp.loop.run_until_complete(asyncio.wait_for(asyncio.shield(xmpp.done), args.timeout))
    except asyncio.TimeoutError:
        out(f'FAIL timeout after {args.timeout}s')
        ok = False
    if ok:
        # Orderly close: </stream:stream> and wait for the server's.
        try:
            xmpp.loop.run_until_complete(asyncio.wait_for(xmpp.disconnect(wait=2.0), 5))
        except Exception:  # noqa: BLE001
            pass
        out('EVENT closed' if xmpp.closed else 'EVENT close_timeout')
    else:
        xmpp.abort()
    # Cancel slixmpp's background tasks so the interpreter exits quietly.
    pending = [t for t in asyncio.all_tasks(xmpp.loop) if not t.done()]
    for t in pending:
        t.cancel()
    xmpp.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
