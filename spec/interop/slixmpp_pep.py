#!/usr/bin/python3
# PEP interop client for Cadence's test suite: slixmpp 1.8.3's own plugins at their defaults —
# xep_0030, xep_0115 (its caps in presence), xep_0060, xep_0163, xep_0084, xep_0048 (storage in
# private XML, XEP-0049, its default; or in PEP with --method xep_0223).
#
# Prints one line per event on stdout:
#   EVENT session_start jid=...
#   EVENT avatar_published id=<sha1>        (avatar-publish: data and metadata published)
#   EVENT own_metadata id=<sha1>            (avatar-publish: read back with xep_0060.get_items)
#   EVENT avatar_event from=<bare> id=<sha1> (avatar-listen: a metadata notification)
#   EVENT bookmarks_stored
#   EVENT bookmark jid=... name=... autojoin=... nick=...   (bookmarks: read back)
#   EVENT done / EVENT closed / FAIL <reason>
# Actions:
#   avatar-publish  publish --avatar (a base64 PNG) with xep_0084, read the metadata back.
#   avatar-listen   send presence (with caps saying avatar metadata+notify) and wait for a
#                   metadata notification from --peer.
#   bookmarks       store one conference bookmark (--room, --nick) with xep_0048, read them back.
import argparse
import asyncio
import base64
import hashlib
import logging
import sys

from slixmpp_common import out, run_until_done
from slixmpp import ClientXMPP, JID
from slixmpp.plugins.xep_0048 import Bookmarks


class Client(ClientXMPP):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.jid, args.password)
        self.args = args
        self.done: asyncio.Future = self.loop.create_future()
        self.closed = False
        for plugin in ['xep_0030', 'xep_0115', 'xep_0060', 'xep_0163', 'xep_0084', 'xep_0048']:
            self.register_plugin(plugin)
        if args.method:
            self['xep_0048'].storage_method = args.method
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('failed_all_auth', lambda _e: self.finish(False, 'failed_all_auth'))
        self.add_event_handler('avatar_metadata_publish', self.on_avatar)

    def finish(self, ok: bool, reason: str = '') -> None:
        if self.done.done():
            return
        out('EVENT done' if ok else f'FAIL {reason}')
        self.done.set_result(ok)

    def on_disconnected(self, reason) -> None:
        self.closed = True
        self.finish(False, f'disconnected {reason}')

    def on_avatar(self, msg) -> None:
        if self.args.action != 'avatar-listen' or msg['from'].bare != JID(self.args.peer).bare:
            return
        info = msg['pubsub_event']['items']['item']['avatar_metadata']['info']
        out(f"EVENT avatar_event from={msg['from'].bare} id={info['id']}")
        self.finish(True)

    async def on_session_start(self, _event) -> None:
        out(f'EVENT session_start jid={self.boundjid.full}')
        try:
            await self.get_roster()
            self.send_presence()
            if self.args.action == 'avatar-publish':
                data = base64.b64decode(self.args.avatar)
                avatar_id = hashlib.sha1(data).hexdigest()
                await self['xep_0084'].publish_avatar(data)
                await self['xep_0084'].publish_avatar_metadata([{'id': avatar_id, 'type': 'image/png', 'bytes': len(data)}])
                out(f'EVENT avatar_published id={avatar_id}')
                iq = await self['xep_0060'].get_items(self.boundjid.bare, 'urn:xmpp:avatar:metadata')
                for item in iq['pubsub']['items']:
                    out(f"EVENT own_metadata id={item['id']}")
                self.finish(True)
            elif self.args.action == 'bookmarks':
                bookmarks = Bookmarks()
                bookmarks.add_conference(self.args.room, self.args.nick, name='Interop room', autojoin=True)
                await self['xep_0048'].set_bookmarks(bookmarks)
                out('EVENT bookmarks_stored')
                result = await self['xep_0048'].get_bookmarks()
                storage = result['private']['bookmarks'] if self['xep_0048'].storage_method == 'xep_0049' else result['pubsub']['items']['item']['bookmarks']
                for conf in storage['conferences']:
                    out(f"EVENT bookmark jid={conf['jid']} name={conf['name']} autojoin={conf['autojoin']} nick={conf['nick']}")
                self.finish(True)
        except Exception as err:  # noqa: BLE001
            self.finish(False, f'{type(err).__name__} {err}')


def main() -> int:
    p = argparse.ArgumentParser(description='slixmpp PEP interop client for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--action', required=True, choices=['avatar-publish', 'avatar-listen', 'bookmarks'])
    p.add_argument('--peer', default='')
    p.add_argument('--avatar', default='')
    p.add_argument('--room', default='')
    p.add_argument('--nick', default='')
    p.add_argument('--method', default='', help="bookmarks: xep_0048's storage_method (default: its own, xep_0049)")
    p.add_argument('--timeout', type=float, default=30.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')
    xmpp = Client(args)
    xmpp.connect((args.host, args.port))
    return run_until_done(xmpp, args.timeout)


if __name__ == '__main__':
    sys.exit(main())
