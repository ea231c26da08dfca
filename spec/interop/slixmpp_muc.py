#!/usr/bin/python3
# MUC interop client for Cadence's test suite: slixmpp 1.8.3 (Debian's python3-slixmpp) with its
# xep_0045 plugin at its defaults. Run with /usr/bin/python3.
#
# Prints one line per event on stdout (see slixmpp_common.py):
#   EVENT joined nick=... role=... affiliation=... statuses=110,201
#   EVENT config fields=<number of fields in the form>
#   EVENT configured
#   EVENT history from=<nick> body=...          (guest: the history join_muc_wait collected)
#   EVENT subject text=...
#   EVENT occupant nick=...                     (guest: the others present on entry)
#   EVENT message from=<nick> body=...          (a live groupchat message)
#   EVENT left
#   EVENT done / EVENT closed / FAIL <reason>
#
# Actions:
#   owner  join --room as --nick (creating it), read the configuration form with
#          get_room_config, set the room name to --name and make it persistent in it, submit it with
#          set_room_config, set the subject to --subject, send --send as a groupchat message and
#          wait for it to come back, log out.
#   guest  join --room as --nick with join_muc_wait (maxstanzas 20), report history, subject and
#          occupants, send --send and wait for it to come back, wait for --expect messages from
#          others, leave with leave_muc, log out.
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
        self.room = JID(args.room)
        self.done: asyncio.Future = self.loop.create_future()
        self.closed = False
        self.messages: list = []
        self.changed = asyncio.Event()
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0045')
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('connection_failed', lambda e: self.finish(False, f'connection_failed {e}'))
        self.add_event_handler(f'muc::{self.room}::message', self.on_groupchat)

    def finish(self, ok: bool, reason: str = '') -> None:
        if self.done.done():
            return
        out('EVENT done' if ok else f'FAIL {reason}')
        self.done.set_result(ok)

    def on_disconnected(self, reason) -> None:
        self.closed = True
        self.finish(False, f'disconnected {reason}')

    def on_groupchat(self, msg) -> None:
        if msg.get_plugin('delay', check=True) is not None:
            return  # history, reported by join_muc_wait's result
        nick = msg['from'].resource
        out(f"EVENT message from={nick} body={one_line(msg['body'])}")
        self.messages.append((nick, msg['body']))
        self.changed.set()

    async def until(self, predicate) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()

    async def on_session_start(self, _event) -> None:
        try:
            await self.get_roster()
            self.send_presence()
            await self.act()
            self.finish(True)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.finish(False, f'{type(exc).__name__}: {one_line(str(exc))}')

    async def act(self) -> None:
        a = self.args
        muc = self.plugin['xep_0045']
        history = {'maxstanzas': 20} if a.action == 'guest' else {}
        pres, subject, occupants, history_msgs = await muc.join_muc_wait(self.room, a.nick, timeout=a.timeout, **history)
        item = pres['muc']
        codes = ','.join(str(c) for c in sorted(pres['muc']['status_codes']))
        out(f"EVENT joined nick={pres['from'].resource} role={item['role']} affiliation={item['affiliation']} statuses={codes}")
        for m in history_msgs:
            out(f"EVENT history from={m['from'].resource} body={one_line(m['body'])}")
        out(f"EVENT subject text={one_line(subject['subject'])}")
        for p in occupants:
            out(f"EVENT occupant nick={p['from'].resource}")
        if a.action == 'owner':
            form = await muc.get_room_config(self.room)
            fields = form.get_fields()
            out(f'EVENT config fields={len(fields)}')
            fields['muc#roomconfig_roomname']['value'] = a.name
            fields['muc#roomconfig_persistentroom']['value'] = True
            await muc.set_room_config(self.room, form)
            out('EVENT configured')
            if a.subject:
                muc.set_subject(self.room, a.subject)
        for body in a.send:
            self.send_message(mto=self.room, mbody=body, mtype='groupchat')
            await asyncio.wait_for(self.until(lambda b=body: any(m[1] == b for m in self.messages)), a.timeout)
        if a.expect:
            await asyncio.wait_for(self.until(lambda: sum(1 for m in self.messages if m[0] != a.nick) >= a.expect), a.timeout)
        if a.action == 'guest':
            muc.leave_muc(self.room, a.nick)
            out('EVENT left')


def main() -> int:
    p = argparse.ArgumentParser(description='slixmpp MUC interop client for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--action', choices=['owner', 'guest'], required=True)
    p.add_argument('--room', required=True)
    p.add_argument('--nick', required=True)
    p.add_argument('--name', default='')
    p.add_argument('--subject', default='')
    p.add_argument('--send', action='append', default=[])
    p.add_argument('--expect', type=int, default=0)
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr)
    xmpp = Client(args)
    xmpp.connect((args.host, args.port))
    return run_until_done(xmpp, args.timeout)


if __name__ == '__main__':
    sys.exit(main())
