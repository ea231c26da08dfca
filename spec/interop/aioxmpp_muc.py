#!/usr/bin/python3
# MUC interop client for Cadence's test suite: aioxmpp 0.13.3 (Debian's python3-aioxmpp) with
# aioxmpp.MUCClient at its defaults (which include XEP-0410 self-pings while joined). Run with
# /usr/bin/python3.
#
# Prints one line per event on stdout:
#   EVENT entered nick=... role=... affiliation=...
#   EVENT history from=<nick> body=...      (messages that came with a delay stamp)
#   EVENT subject text=...
#   EVENT configured                          (creator: the configuration form was submitted)
#   EVENT message from=<nick> body=...        (a live groupchat message)
#   EVENT topic text=...                      (set_topic went through and came back)
#   EVENT left
#   EVENT done / EVENT closed / FAIL <reason>
#
# Actions:
#   create  join --room as --nick (the server creates it, locked), read the configuration form
#           with get_room_config as aioxmpp.muc.ConfigurationForm, set the room name to --name,
#           make it persistent and submit it with set_room_config; send --send and wait for it to come back; log out.
#   guest   join --room as --nick; report history and subject; send each --send and wait for it
#           to come back; wait for --expect messages from others; with --topic, set the topic and
#           wait for it; leave; log out.
import argparse
import asyncio
import logging
import sys
from datetime import timedelta

import aioxmpp
import aioxmpp.muc
import aioxmpp.muc.xso


def out(line: str) -> None:
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def one_line(text) -> str:
    return str(text).replace('\\', '\\\\').replace('\n', '\\n')


def text_of(multi) -> str:
    """The text of an aioxmpp LanguageMap (body, subject), whatever language tag it has."""
    if not multi:
        return ''
    return next(iter(multi.values()))


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = aioxmpp.Client(
            aioxmpp.JID.fromstr(args.jid),
            aioxmpp.make_security_layer(args.password),
            override_peer=[(args.host, args.port, aioxmpp.connector.STARTTLSConnector())],
            negotiation_timeout=timedelta(seconds=10),
            logger=logging.getLogger('aioxmpp.client'),
        )
        self.muc = self.client.summon(aioxmpp.MUCClient)
        self.changed = asyncio.Event()
        self.live: list = []
        self.topics: list = []

    def poke(self) -> None:
        self.changed.set()

    async def until(self, predicate) -> None:
        while not predicate():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), self.args.timeout)

    def on_message(self, msg, member, source, **_kwargs) -> None:
        nick = member.nick if member is not None else ''
        body = text_of(msg.body)
        if msg.xep0203_delay:
            out(f'EVENT history from={nick} body={one_line(body)}')
        elif body:
            out(f'EVENT message from={nick} body={one_line(body)}')
            self.live.append((nick, body))
        self.poke()

    def on_topic(self, member, new_topic, **_kwargs) -> None:
        text = text_of(new_topic)
        out(f'EVENT subject text={one_line(text)}')
        self.topics.append(text)
        self.poke()

    async def act(self) -> None:
        a = self.args
        room_jid = aioxmpp.JID.fromstr(a.room)
        history = aioxmpp.muc.xso.History(maxstanzas=20)
        room, joined = self.muc.join(room_jid, a.nick, history=history)
        room.on_message.connect(self.on_message)
        room.on_topic_changed.connect(self.on_topic)
        await asyncio.wait_for(joined, a.timeout)
        me = room.me
        out(f'EVENT entered nick={me.nick} role={me.role} affiliation={me.affiliation}')
        if a.action == 'create':
            form = aioxmpp.muc.ConfigurationForm.from_xso(await self.muc.get_room_config(room_jid))
            form.roomname.value = a.name
            form.persistentroom.value = True
            await self.muc.set_room_config(room_jid, form.render_reply())
            out('EVENT configured')
        for body in a.send:
            msg = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
            msg.body[None] = body
            room.send_message(msg)
            await self.until(lambda b=body: any(m[1] == b for m in self.live))
        if a.expect:
            await self.until(lambda: sum(1 for m in self.live if m[0] != a.nick) >= a.expect)
        if a.topic:
            await room.set_topic({None: a.topic})
            await self.until(lambda: a.topic in self.topics)
            out(f'EVENT topic text={one_line(a.topic)}')
        if a.action == 'guest':
            await asyncio.wait_for(room.leave(), a.timeout)
            out('EVENT left')

    async def run(self) -> bool:
        async with self.client.connected(presence=aioxmpp.PresenceState(available=True), timeout=timedelta(seconds=self.args.timeout)):
            await self.act()
            out('EVENT done')
        out('EVENT closed')
        return True


async def amain(args: argparse.Namespace) -> int:
    driver = Driver(args)
    try:
        ok = await asyncio.wait_for(driver.run(), args.timeout * 2)
    except asyncio.TimeoutError:
        out(f'FAIL timeout after {args.timeout}s')
        ok = False
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out(f'FAIL {type(exc).__name__}: {one_line(exc)}')
        ok = False
    if not ok and driver.client.running:
        driver.client.stop()
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description='aioxmpp MUC interop client for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--action', choices=['create', 'guest'], required=True)
    p.add_argument('--room', required=True)
    p.add_argument('--nick', required=True)
    p.add_argument('--name', default='')
    p.add_argument('--topic', default='')
    p.add_argument('--send', action='append', default=[])
    p.add_argument('--expect', type=int, default=0)
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr)
    return asyncio.run(amain(args))


if __name__ == '__main__':
    sys.exit(main())
