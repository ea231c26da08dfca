#!/usr/bin/python3
# Interop privileged component for Cadence's test suite: slixmpp's ComponentXMPP (Debian's
# python3-slixmpp 1.8.3) with its own xep_0356 plugin (Privileged Entity, urn:xmpp:privilege:2) at
# its defaults. Run with /usr/bin/python3.
#
# After the handshake it waits for the server's privilege advertisement, reads the roster of each
# --user with the plugin's get_roster, adds each --set-item with set_roster, waits for the
# presence of --presence-from, and prints:
#   EVENT session_start jid=priv.localhost
#   EVENT privileges roster=get message=outgoing presence=managed_entity
#   EVENT roster user=alice@localhost items=bob@localhost
#   EVENT roster_error user=eve@other.localhost condition=forbidden
#   EVENT roster_set user=alice@localhost items=bob@localhost,carol@localhost     (--set-item)
#   EVENT waiting_presence / EVENT presence from=alice@localhost/res status=…      (--presence-from)
#   EVENT done / FAIL <reason>
import argparse
import asyncio
import logging
import sys

from slixmpp_common import one_line, out, run_until_done
from slixmpp import ComponentXMPP
from slixmpp.exceptions import IqError


class Privileged(ComponentXMPP):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.jid, args.secret, args.host, args.port)
        self.args = args
        self.done: asyncio.Future = self.loop.create_future()
        self.closed = False
        self.register_plugin('xep_0356')
        self.add_event_handler('session_start', lambda _e: out(f'EVENT session_start jid={self.boundjid.full}'))
        self.add_event_handler('privileges_advertised', self.on_privileges)
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('presence_available', self.on_presence)
        self.presence_seen: asyncio.Future = self.loop.create_future()

    def on_presence(self, pres) -> None:
        # Presence permission (XEP-0356 §7): the managed entity's presence, from its full JID.
        if self.args.presence_from and pres['from'].bare == self.args.presence_from and not self.presence_seen.done():
            out(f'EVENT presence from={pres["from"]} status={pres["status"]}')
            self.presence_seen.set_result(True)

    def on_disconnected(self, reason) -> None:
        self.closed = True
        self.finish(False, f'disconnected {reason}')

    def finish(self, ok: bool, reason: str = '') -> None:
        if self.done.done():
            return
        out('EVENT done' if ok else f'FAIL {reason}')
        self.done.set_result(ok)

    async def on_privileges(self, _event=None) -> None:
        p = self['xep_0356'].granted_privileges
        out(f'EVENT privileges roster={p["roster"]} message={p["message"]} presence={p["presence"]}')
        try:
            for user in self.args.user:
                try:
                    iq = await self['xep_0356'].get_roster(user)
                    items = sorted(str(j) for j in iq['roster']['items'])
                    out(f'EVENT roster user={user} items={",".join(items)}')
                except IqError as err:
                    out(f'EVENT roster_error user={user} condition={stanza_condition(err.iq)}')
            for spec in self.args.set_item:
                # Roster set on behalf of a user (roster access set/both), with the plugin's set_roster.
                user, jid = spec.split('=', 1)
                try:
                    await self['xep_0356'].set_roster(user, {jid: {'name': 'Set by component', 'subscription': 'none', 'groups': ['Component']}})
                    iq = await self['xep_0356'].get_roster(user)
                    items = sorted(str(j) for j in iq['roster']['items'])
                    out(f'EVENT roster_set user={user} items={",".join(items)}')
                except IqError as err:
                    out(f'EVENT roster_set_error user={user} condition={stanza_condition(err.iq)}')
            if self.args.presence_from:
                out('EVENT waiting_presence')
                await self.presence_seen
            self.finish(True)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.finish(False, f'{type(exc).__name__}: {one_line(str(exc))}')


def stanza_condition(iq) -> str:
    # slixmpp 1.8.3 registers the error plugin in jabber:client only, so on a component stream
    # (jabber:component:accept) iq['error'] reads a made-up feature-not-implemented: read the XML.
    for el in iq.xml:
        if el.tag.endswith('}error'):
            for c in el:
                if c.tag.startswith('{urn:ietf:params:xml:ns:xmpp-stanzas}') and not c.tag.endswith('}text'):
                    return c.tag.split('}', 1)[1]
    return ''


def main() -> int:
    p = argparse.ArgumentParser(description='slixmpp privileged component for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--secret', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--user', action='append', default=[])
    p.add_argument('--set-item', action='append', default=[], help='user@host=contact@host: add contact to user\'s roster')
    p.add_argument('--presence-from', default='', help='wait for an available presence from this bare JID')
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')
    xmpp = Privileged(args)
    xmpp.connect()
    return run_until_done(xmpp, args.timeout)


if __name__ == '__main__':
    sys.exit(main())
