#!/usr/bin/python3
# Interop client for Cadence's test suite, driven by slixmpp (Debian's python3-slixmpp 1.8.3).
# Run with /usr/bin/python3 (the system Python that has slixmpp).
#
# Prints machine-readable lines on stdout, one event per line (values run to the end of the
# line or the next ' key='; message bodies have newlines escaped as \n):
#   EVENT tls version=TLSv1.3                   (STARTTLS or direct TLS, printed once bound)
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
#   EVENT roster_push_item jid=juliet@localhost name=Juliet groups=Friends|Verona subscription=both ask=
#                                                (after roster_push, for a push (an iq set) only;
#                                                groups sorted and joined with '|')
#   EVENT roster count=1 ver=3                   (roster actions: the roster, then one line per item)
#   EVENT roster_item jid=juliet@localhost name=Juliet groups=Friends|Verona subscription=none ask=
#   EVENT subscribe from=juliet@localhost
#   EVENT subscribed from=juliet@localhost
#   EVENT presence from=juliet@localhost/garden type=available show=available
#   EVENT message from=juliet@localhost/garden type=chat body=...
#   EVENT message from=... type=chat body=... delay=<stamp as sent, or none> delay_from=...
#                                                (the same, in action receive-offline)
#   EVENT received count=2                       (receive-offline: messages with a body)
#   EVENT sent to=juliet@localhost body=...
#   EVENT done                                   (the action succeeded)
#   EVENT closed                                 (the stream was closed after 'done')
#   FAIL <reason>
# Exit status: 0 success, 1 failure (auth failure, timeout, disconnection before done), 2 usage.
#
# Actions:
#   login  log in (STARTTLS, or direct TLS with --direct-tls; SASL; bind), report, log out.
#   chat   log in, fetch the roster, send presence; with --subscribe, subscribe to --peer
#          (slixmpp's auto_authorize/auto_subscribe answer the peer's requests); wait until the
#          peer's available presence is seen; with --send, send a chat message to the peer and wait
#          for one back; with --echo, answer the first chat message from the peer with
#          "echo: <body>"; once the server has pushed subscription='both' for the peer, log out.
#   message
#          log in, send available presence, send each --send body to --peer (a full JID) as a
#          chat message, wait for a chat message back from the peer, log out.
#   send   log in, send each --send body (repeatable, in order) to --peer as a chat message, log
#          out; no presence and no wait for the peer (it may well be offline).
#   receive-offline
#          log in, fetch the roster, send available presence (which is what makes the server
#          deliver stored offline messages), collect messages until --expect N have come, then
#          for --collect more seconds (to see any extra), report each with its delay stamp.
#   roster-get     log in, fetch the roster, print it, log out.
#   roster-set     fetch the roster, then set the item --peer to --name (empty: none) and the
#                  --group list (repeatable) with slixmpp's update_roster; wait for the server's
#                  result and its push of the item; print the server's roster (a get without ver).
#   roster-remove  fetch the roster, remove --peer with del_roster_item, wait for the result and
#                  the push of subscription='remove', print the server's roster.
import argparse
import asyncio
import logging
import sys

from slixmpp_common import one_line, out, run_until_done
from slixmpp import ClientXMPP, JID


class Client(ClientXMPP):
    def __init__(self, args: argparse.Namespace) -> None:
        # sasl_mech: how a slixmpp application pins a mechanism (None: slixmpp picks).
        super().__init__(args.jid, args.password, sasl_mech=args.mech or None)
        self.args = args
        self.peer = JID(args.peer) if args.peer else None
        self.done: asyncio.Future = self.loop.create_future()
        self.peer_online = asyncio.Event()
        self.got_message = asyncio.Event()
        self.echoed = asyncio.Event()
        self.mutual = asyncio.Event()
        self.pushed = asyncio.Event()  # set on every roster push (iq set)
        self.pushes: list = []
        self.received: list = []
        self.got_all = asyncio.Event()
        self.closed = False

        # Everything else at slixmpp's defaults: certificate verification against the system
        # trust store (the tests point SSL_CERT_FILE at their CA), no TLS version cap, slixmpp's
        # own SASL callbacks.
        self.auto_authorize = True
        self.auto_subscribe = True

        self.add_event_handler('connection_failed', self.on_connection_failed)
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('stream_error', self.on_stream_error)
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
        self.report_tls()
        out(f'EVENT session_start jid={self.boundjid.full}')
        try:
            if self.args.action == 'login':
                self.finish(True)
                return
            if self.args.action == 'send':
                await self.send_only()
            elif self.args.action == 'message':
                await self.message_round_trip()
            elif self.args.action == 'receive-offline':
                await self.receive_offline()
            elif self.args.action.startswith('roster-'):
                await self.manage_roster()
            else:
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
        if self.args.send:
            self.send_bodies(self.peer)
            await self.got_message.wait()
        if self.args.echo:
            await self.echoed.wait()
        # Both subscriptions are in place (the server pushed subscription='both'), so the peer
        # has been sent our presence before we go offline.
        await self.mutual.wait()
        # Let the last stanzas leave before closing the stream.
        await asyncio.sleep(0.2)
        self.finish(True)

    def send_bodies(self, to) -> None:
        for body in self.args.send:
            self.send_message(mto=to, mbody=body, mtype='chat')
            out(f'EVENT sent to={to} body={one_line(body)}')

    async def send_only(self) -> None:
        if self.peer is None:
            raise RuntimeError('send needs --peer')
        self.send_bodies(self.peer.bare)
        # Let the server take the messages before the stream closes.
        await asyncio.sleep(0.3)
        self.finish(True)

    async def message_round_trip(self) -> None:
        # What a minimal bot does: come online, say something, wait for the answer.
        if self.peer is None:
            raise RuntimeError('message needs --peer')
        self.send_presence()
        out('EVENT sent_presence')
        self.send_bodies(self.peer)
        await self.got_message.wait()
        self.finish(True)

    async def receive_offline(self) -> None:
        if not self.args.no_roster:
            await self.get_roster(timeout=10)
        self.send_presence()
        out('EVENT sent_presence')
        if self.args.expect > 0:
            await self.got_all.wait()
        await asyncio.sleep(self.args.collect)
        out(f'EVENT received count={len(self.received)}')
        self.finish(True)

    def print_roster(self, items: dict, ver) -> None:
        out(f"EVENT roster count={len(items)} ver={ver if ver else '-'}")
        for jid in sorted(items, key=str):
            out(f'EVENT roster_item {item_line(jid, items[jid])}')

    async def fetch_full_roster(self) -> None:
        # A roster get without 'ver' (slixmpp's get_roster would send its version and may get an
        # empty result back): the server's whole roster, as it stands now.
        iq = self.Iq()
        iq['type'] = 'get'
        iq.enable('roster')
        result = await iq.send(timeout=10)
        items = {str(j): dict(v) for j, v in result['roster']['items'].items()}
        self.print_roster(items, result['roster']['ver'])

    async def wait_push(self, predicate) -> dict:
        while True:
            for item in self.pushes:
                if predicate(item):
                    return item
            self.pushed.clear()
            await self.pushed.wait()

    async def manage_roster(self) -> None:
        action = self.args.action
        if action == 'roster-get':
            await self.fetch_full_roster()
            self.finish(True)
            return
        # Fetch the roster first, as a client does before editing it.
        await self.get_roster(timeout=10)
        if self.peer is None:
            raise RuntimeError(f'{action} needs --peer')
        peer = self.peer.bare
        if action == 'roster-set':
            name = self.args.name
            groups = list(self.args.group)
            await self.update_roster(peer, name=name, groups=groups, timeout=10)
            out(f'EVENT set_result jid={peer}')
            await self.wait_push(lambda i: i['jid'] == peer and i['name'] == name
                                 and sorted(i['groups']) == sorted(groups) and i['subscription'] != 'remove')
        elif action == 'roster-remove':
            await self.del_roster_item(peer)
            out(f'EVENT remove_result jid={peer}')
            await self.wait_push(lambda i: i['jid'] == peer and i['subscription'] == 'remove')
        else:
            raise RuntimeError(f'unknown action {action}')
        await self.fetch_full_roster()
        self.finish(True)

    def on_roster_push(self, iq) -> None:
        is_push = iq['type'] == 'set'
        for jid, item in iq['roster']['items'].items():
            sub = item.get('subscription', '')
            ask = item.get('ask', '')
            out(f'EVENT roster_push jid={jid} subscription={sub} ask={ask}')
            if is_push:
                out(f'EVENT roster_push_item {item_line(jid, item)}')
                self.pushes.append({'jid': str(JID(jid).bare), 'name': item.get('name', ''),
                                    'groups': list(item.get('groups', [])), 'subscription': sub})
                self.pushed.set()
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
        if self.args.action == 'receive-offline':
            if not body:
                return
            # The stamp exactly as the server wrote it (XEP-0203 <delay/>), not slixmpp's parse.
            delay = msg.xml.find('{urn:xmpp:delay}delay')
            stamp = delay.get('stamp', '') if delay is not None else 'none'
            delay_from = delay.get('from', '') if delay is not None else ''
            out(f"EVENT message from={msg['from']} type={msg['type']} body={one_line(body)} "
                f'delay={stamp} delay_from={delay_from}')
            self.received.append(msg)
            if self.args.expect > 0 and len(self.received) >= self.args.expect:
                self.got_all.set()
            return
        out(f"EVENT message from={msg['from']} type={msg['type']} body={one_line(body)}")
        if self.peer is None or msg['from'].bare != self.peer.bare or msg['type'] not in ('chat', 'normal'):
            return
        self.got_message.set()
        if self.args.echo and not self.echoed.is_set():
            reply = f'echo: {body}'
            msg.reply(reply).send()
            out(f"EVENT sent to={msg['from']} body={one_line(reply)}")
            self.echoed.set()


def item_line(jid, item) -> str:
    groups = '|'.join(sorted(item.get('groups', []) or []))
    return (f"jid={jid} name={one_line(item.get('name', '') or '')} groups={groups} "
            f"subscription={item.get('subscription', '')} ask={item.get('ask', '') or ''}")


def main() -> int:
    p = argparse.ArgumentParser(description='slixmpp interop client for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--mech', default='', help='SASL mechanism to use (default: slixmpp picks)')
    p.add_argument('--direct-tls', action='store_true', help='connect with direct TLS (XEP-0368) instead of STARTTLS')
    p.add_argument('--action', default='login',
                   choices=['login', 'chat', 'message', 'send', 'receive-offline', 'roster-get', 'roster-set',
                            'roster-remove'])
    p.add_argument('--peer', default='')
    p.add_argument('--subscribe', action='store_true')
    p.add_argument('--send', action='append', default=[], help='a message body (repeatable, sent in order)')
    p.add_argument('--expect', type=int, default=0, help='receive-offline: messages to wait for')
    p.add_argument('--collect', type=float, default=0.5,
                   help='receive-offline: seconds to keep listening after the expected messages')
    p.add_argument('--name', default='', help='roster-set: the item name (empty: none)')
    p.add_argument('--group', action='append', default=[], help='roster-set: a group (repeatable)')
    p.add_argument('--echo', action='store_true')
    p.add_argument('--no-roster', action='store_true', help='chat: skip the roster get')
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')

    xmpp = Client(args)
    if args.direct_tls:
        xmpp.connect((args.host, args.port), use_ssl=True)
    else:
        # STARTTLS, which slixmpp insists on by default (force_starttls=True).
        xmpp.connect((args.host, args.port))
    return run_until_done(xmpp, args.timeout)


if __name__ == '__main__':
    sys.exit(main())
