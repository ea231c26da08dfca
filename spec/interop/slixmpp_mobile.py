#!/usr/bin/python3
# Interop client for Cadence's multi-device features, driven by slixmpp (Debian's python3-slixmpp
# 1.8.3) with its plugins at their defaults. Run with /usr/bin/python3.
#
# Prints one line per event on stdout (bodies with newlines escaped as \n):
#   EVENT session_start jid=...
#   EVENT carbons_enabled                        (xep_0280's enable() got its result)
#   EVENT carbon_received from=... to=... body=...
#   EVENT carbon_sent from=... to=... body=...
#   EVENT mam from=... body=... id=... sid=...  (one per archived message, oldest first)
#   EVENT mam_done count=N
#   EVENT done / EVENT closed / FAIL <reason>
#
# Actions:
#   carbons  log in, send available presence (priority --priority), enable carbons with
#            xep_0280, print carbons as they come until --expect have come.
#   mam      log in, page through the whole archive (with --peer: with that JID) with
#            xep_0313's iterate() (RSM pages of slixmpp's default size), print each message.
#   mam-retrieve  the same with retrieve() (one query, the server's default page).
import argparse
import asyncio
import logging
import sys

from slixmpp_common import one_line, out, run_until_done
from slixmpp import ClientXMPP, JID


class Client(ClientXMPP):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.jid, args.password)
        self.args = args
        self.done: asyncio.Future = self.loop.create_future()
        self.closed = False
        self.carbons = 0
        self.register_plugin('xep_0280')
        self.register_plugin('xep_0313')
        self.add_event_handler('connection_failed', lambda e: self.finish(False, f'connection_failed {e}'))
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('carbon_received', lambda m: self.on_carbon('received', m['carbon_received']))
        self.add_event_handler('carbon_sent', lambda m: self.on_carbon('sent', m['carbon_sent']))

    def finish(self, ok: bool, reason: str = '') -> None:
        if self.done.done():
            return
        out('EVENT done' if ok else f'FAIL {reason}')
        self.done.set_result(ok)

    def on_disconnected(self, reason) -> None:
        self.closed = True
        self.finish(False, f'disconnected {reason}')

    def on_carbon(self, direction: str, msg) -> None:
        out(f"EVENT carbon_{direction} from={msg['from']} to={msg['to']} body={one_line(msg['body'])}")
        self.carbons += 1
        if self.carbons >= self.args.expect:
            self.finish(True)

    async def on_session_start(self, _event) -> None:
        out(f'EVENT session_start jid={self.boundjid}')
        try:
            if self.args.action == 'carbons':
                self.send_presence(ppriority=self.args.priority)
                await self['xep_0280'].enable()
                out('EVENT carbons_enabled')
                if self.args.expect == 0:
                    self.finish(True)
            elif self.args.action == 'mam':
                count = 0
                peer = JID(self.args.peer) if self.args.peer else None
                async for msg in self['xep_0313'].iterate(with_jid=peer):
                    self.print_result(msg)
                    count += 1
                out(f'EVENT mam_done count={count}')
                self.finish(True)
            elif self.args.action == 'mam-retrieve':
                peer = JID(self.args.peer) if self.args.peer else None
                iq = await self['xep_0313'].retrieve(with_jid=peer)
                results = iq['mam']['results']
                for msg in results:
                    self.print_result(msg)
                out(f'EVENT mam_done count={len(results)} complete={iq["mam_fin"]["complete"]}')
                self.finish(True)
        except Exception as err:  # noqa: BLE001
            self.finish(False, f'{type(err).__name__} {err}')

    def print_result(self, msg) -> None:
        result = msg['mam_result']
        inner = result['forwarded']['stanza']
        sid = inner.xml.find('{urn:xmpp:sid:0}stanza-id')
        out(f"EVENT mam from={inner['from']} body={one_line(inner['body'])} id={result['id']} "
            f"sid={sid.get('id') if sid is not None else 'none'}")


def main() -> int:
    p = argparse.ArgumentParser(description='slixmpp carbons/MAM interop client for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--action', required=True, choices=['carbons', 'mam', 'mam-retrieve'])
    p.add_argument('--peer', default='')
    p.add_argument('--priority', type=int, default=0)
    p.add_argument('--expect', type=int, default=0)
    p.add_argument('--timeout', type=float, default=30.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr,
                        format='%(levelname)s %(name)s: %(message)s')
    xmpp = Client(args)
    xmpp.connect((args.host, args.port))
    return run_until_done(xmpp, args.timeout)


if __name__ == '__main__':
    sys.exit(main())
