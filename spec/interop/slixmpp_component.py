#!/usr/bin/python3
# Interop component for Cadence's test suite: an external component (XEP-0114) driven by
# slixmpp's ComponentXMPP (Debian's python3-slixmpp 1.8.3). Run with /usr/bin/python3 (the system
# Python that has slixmpp).
#
# An echo bot: answers every message that has a body with "echo: <body>" (from the address the
# message was sent to), and every iq get/set with an empty result. It prints machine-readable lines
# on stdout, one event per line:
#   EVENT session_start jid=echo.localhost
#   EVENT message from=romeo@localhost/x to=echo.localhost type=chat body=...
#   EVENT sent to=romeo@localhost/x body=echo: ...
#   EVENT iq from=romeo@localhost/x type=get
#   EVENT stream_error condition=not-authorized
#   EVENT done
#   EVENT closed | EVENT close_timeout
#   FAIL <reason>
# Exit status: 0 success, 1 failure (handshake refused, disconnection, timeout), 2 usage.
#
# It stays connected until --max-echo messages have been echoed or --linger seconds have passed
# since the handshake (whichever comes first; 0 disables either), then closes its stream with
# </stream:stream> (a graceful disconnect). --timeout bounds the whole run: when it expires the
# run fails and the connection is aborted.
import argparse
import asyncio
import logging
import sys

from slixmpp_common import one_line, out, run_until_done
from slixmpp import ComponentXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath


class Echo(ComponentXMPP):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.jid, args.secret, args.host, args.port)
        self.args = args
        self.done: asyncio.Future = self.loop.create_future()
        self.echoes = 0
        self.closed = False
        self.add_event_handler('connection_failed', self.on_connection_failed)
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('stream_error', self.on_stream_error)
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('message', self.on_message)
        self.register_handler(Callback('EchoIq', MatchXPath(f'{{{self.default_ns}}}iq'), self.on_iq))

    def finish(self, ok: bool, reason: str = '') -> None:
        if self.done.done():
            return
        out('EVENT done' if ok else f'FAIL {reason}')
        self.done.set_result(ok)

    def on_connection_failed(self, err) -> None:
        self.finish(False, f'connection_failed {err}')

    def on_disconnected(self, reason) -> None:
        self.closed = True
        out('EVENT disconnected')
        self.finish(False, f'disconnected {reason}')

    def on_stream_error(self, err) -> None:
        out(f"EVENT stream_error condition={err['condition']}")

    async def on_session_start(self, _event) -> None:
        out(f'EVENT session_start jid={self.boundjid.full}')
        if self.args.linger > 0:
            await asyncio.sleep(self.args.linger)
            self.finish(True)

    def on_message(self, msg) -> None:
        body = msg['body']
        out(f"EVENT message from={msg['from']} to={msg['to']} type={msg['type']} body={one_line(body)}")
        if not body or msg['type'] == 'error':
            return
        reply = f'echo: {body}'
        msg.reply(reply).send()
        out(f"EVENT sent to={msg['from']} body={one_line(reply)}")
        self.echoes += 1
        if 0 < self.args.max_echo <= self.echoes:
            # Let the reply leave before closing the stream.
            self.loop.call_later(0.2, self.finish, True)

    def on_iq(self, iq) -> None:
        out(f"EVENT iq from={iq['from']} type={iq['type']}")
        if iq['type'] in ('get', 'set'):
            iq.reply(clear=True).send()


def main() -> int:
    p = argparse.ArgumentParser(description='slixmpp external component (echo bot) for Cadence tests')
    p.add_argument('--jid', required=True, help="the component's domain")
    p.add_argument('--secret', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--max-echo', type=int, default=0, help='close after echoing this many messages (0: no limit)')
    p.add_argument('--linger', type=float, default=0.0, help='close this many seconds after the handshake (0: no limit)')
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')

    xmpp = Echo(args)
    xmpp.connect()
    return run_until_done(xmpp, args.timeout)


if __name__ == '__main__':
    sys.exit(main())
