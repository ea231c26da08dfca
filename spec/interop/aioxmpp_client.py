#!/usr/bin/python3
# Interop client for Cadence's test suite, driven by aioxmpp (Debian's python3-aioxmpp 0.13.3,
# with aiosasl 0.5 and aioopenssl 0.6). Run with /usr/bin/python3 (the system Python that has it).
#
# aioxmpp's own choices, which the tests follow rather than configure away:
#   - The security layer is aioxmpp's default, aioxmpp.make_security_layer(password): TLS is
#     pyOpenSSL through aioopenssl, verified against the system trust store (the tests point
#     SSL_CERT_FILE at their CA); SASL is aiosasl's, with aioxmpp's own mechanism choice and
#     retries. The server's log tells which mechanism was used and how many attempts it took.
#   - The roster is aioxmpp.RosterClient: set_entry/remove_entry send the roster set and return on
#     the server's result; the local roster only changes when the server's push arrives, so every
#     roster action here waits for the push, which is what proves the push was sent. The initial
#     roster get carries `ver` when the server announces roster versioning; with --roster-cache the
#     roster (items and version) is kept in a JSON file between runs, as a real client would.
#
# Prints machine-readable lines on stdout, one event per line (values run to the end of the line
# or the next ' key='; message bodies have newlines escaped as \n; groups are sorted and joined
# with '|'):
#   EVENT tls version=TLSv1.3
#   EVENT session_start jid=romeo@localhost/aio
#   EVENT roster_fetch mode=full|incremental ver_sent=<ver or -> ver=<ver or ->
#   EVENT roster count=1 ver=...                     (followed by one roster_item line per item)
#   EVENT roster_item jid=juliet@localhost name=Juliet groups=Friends|Verona subscription=none ask=
#   EVENT roster_push added jid=... name=... groups=... subscription=... ask=...
#   EVENT roster_fetched added|name|...          (the same, for a change that came with the roster get)
#   EVENT roster_push name jid=... name=...
#   EVENT roster_push subscription jid=... subscription=... ask=...
#   EVENT roster_push group_added jid=... group=...
#   EVENT roster_push group_removed jid=... group=...
#   EVENT roster_push removed jid=...
#   EVENT subscribe from=juliet@localhost
#   EVENT subscribed from=juliet@localhost
#   EVENT approved to=juliet@localhost
#   EVENT sent subscribe to=juliet@localhost
#   EVENT presence from=juliet@localhost/garden type=available
#   EVENT message from=juliet@localhost/garden type=chat body=... delay=<stamp or none> delay_from=...
#   EVENT sent to=juliet@localhost body=...
#   EVENT failed_auth text=...
#   EVENT done                                   (the action succeeded)
#   EVENT closed                                 (the stream was closed after 'done')
#   FAIL <reason>
# Exit status: 0 success, 1 failure (auth failure, timeout, error), 2 usage.
#
# Actions:
#   login          log in (STARTTLS, or direct TLS with --direct-tls; SASL; bind), report, log out.
#   message        log in available, send each --send body to --peer (a full JID), wait for a
#                  message back from the peer, log out.
#   roster-get     log in, fetch the roster, print it, log out.
#   roster-set     set the item --peer to exactly --name and the --group list (repeatable; none:
#                  no groups) with RosterClient.set_entry, wait for the push, print the roster.
#   roster-remove  remove --peer with RosterClient.remove_entry, wait for the push, print the roster.
#   chat           log in available; with --subscribe, subscribe to --peer; approve the peer's
#                  subscription request and ask back (unless already subscribed); wait for the
#                  peer's available presence; with --send, send each body (in order) and, with
#                  --expect N, wait for N messages from the peer; with --echo, answer the first
#                  message from the peer with "echo: <body>"; log out once the roster item for the
#                  peer has subscription='both'.
#   send           log in (no presence), send each --send body to --peer as a chat message, log out.
#   receive        log in, send available presence, collect messages (for instance the offline
#                  ones) until --expect N have come (or for --collect seconds), report, log out.
import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import timedelta

import aioxmpp
import aioxmpp.connector
import aioxmpp.dispatcher
import aioxmpp.misc  # noqa: F401 - registers Message.xep0203_delay
import aioxmpp.roster.xso as roster_xso
import aiosasl


def out(line: str) -> None:
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def one_line(text) -> str:
    return str(text).replace('\\', '\\\\').replace('\n', '\\n')


def groups_str(groups) -> str:
    return '|'.join(sorted(groups))


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.jid = aioxmpp.JID.fromstr(args.jid)
        self.peer_full = aioxmpp.JID.fromstr(args.peer) if args.peer else None
        self.peer = self.peer_full.bare() if self.peer_full else None
        connector = aioxmpp.connector.XMPPOverTLSConnector() if args.direct_tls else aioxmpp.connector.STARTTLSConnector()
        self.client = aioxmpp.Client(
            self.jid,
            aioxmpp.make_security_layer(args.password),
            # Where the server listens (its SRV records, for a real domain).
            override_peer=[(args.host, args.port, connector)],
            negotiation_timeout=timedelta(seconds=10),
            logger=logging.getLogger('aioxmpp.client'),
        )
        self.roster = self.client.summon(aioxmpp.RosterClient)
        self.presence = self.client.summon(aioxmpp.PresenceClient)
        self.messages = self.client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        self.changed = asyncio.Event()  # set on every roster push / message / presence
        # Entries reported before the initial roster has been received come from the roster get,
        # not from pushes.
        self.roster_received = False
        self.received: list = []
        self.peer_online = False
        self.echoed = False

        if args.roster_cache and os.path.exists(args.roster_cache):
            with open(args.roster_cache, encoding='utf-8') as f:
                self.roster.import_from_json(json.load(f))

        # The roster get is sent by RosterClient before the stream counts as established; watch
        # its answer to tell a full roster from an incremental one (XEP-0237: an empty result).
        original_send = self.client.send

        async def send(stanza, **kwargs):
            is_roster_get = (isinstance(stanza, aioxmpp.IQ) and stanza.type_ == aioxmpp.IQType.GET
                             and isinstance(stanza.payload, roster_xso.Query))
            ver_sent = stanza.payload.ver if is_roster_get else None
            result = await original_send(stanza, **kwargs)
            if is_roster_get:
                mode = 'incremental' if result is None else 'full'
                ver = self.roster.version if result is None else result.ver
                out(f"EVENT roster_fetch mode={mode} ver_sent={ver_sent if ver_sent is not None else '-'} "
                    f"ver={ver if ver is not None else '-'}")
            return result

        self.client.send = send

        self.client.on_stream_established.connect(self.on_established)
        self.roster.on_initial_roster_received.connect(self.on_initial_roster)
        self.roster.on_entry_added.connect(self.on_entry_added)
        self.roster.on_entry_name_changed.connect(self.on_entry_name_changed)
        self.roster.on_entry_subscription_state_changed.connect(self.on_entry_subscription)
        self.roster.on_entry_added_to_group.connect(self.on_group_added)
        self.roster.on_entry_removed_from_group.connect(self.on_group_removed)
        self.roster.on_entry_removed.connect(self.on_entry_removed)
        self.roster.on_subscribe.connect(self.on_subscribe)
        self.roster.on_subscribed.connect(self.on_subscribed)
        self.presence.on_available.connect(self.on_available)
        self.messages.register_callback(None, None, self.on_message)

    # -- reporting -------------------------------------------------------------------------

    def on_established(self) -> None:
        # aioxmpp keeps the XML stream (and its aioopenssl transport) private to the StanzaStream.
        xmlstream = getattr(self.client.stream, '_xmlstream', None)
        transport = getattr(xmlstream, 'transport', None)
        conn = transport.get_extra_info('ssl_object') if transport is not None else None
        version = conn.get_protocol_version_name() if conn is not None else 'none'
        out(f'EVENT tls version={version}')
        out(f'EVENT session_start jid={self.client.local_jid}')

    def item_line(self, item) -> str:
        return (f'jid={item.jid} name={one_line(item.name or "")} groups={groups_str(item.groups)} '
                f'subscription={item.subscription} ask={item.ask or ""}')

    def print_roster(self) -> None:
        ver = self.roster.version if self.roster.version is not None else '-'
        out(f'EVENT roster count={len(self.roster.items)} ver={ver}')
        for jid in sorted(self.roster.items, key=str):
            out(f'EVENT roster_item {self.item_line(self.roster.items[jid])}')

    def poke(self) -> None:
        self.changed.set()

    async def until(self, predicate) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()

    def kind(self) -> str:
        return 'roster_push' if self.roster_received else 'roster_fetched'

    def on_initial_roster(self) -> None:
        self.roster_received = True

    def on_entry_added(self, item) -> None:
        out(f'EVENT {self.kind()} added {self.item_line(item)}')
        self.poke()

    def on_entry_name_changed(self, item) -> None:
        out(f'EVENT {self.kind()} name jid={item.jid} name={one_line(item.name or "")}')
        self.poke()

    def on_entry_subscription(self, item) -> None:
        out(f'EVENT {self.kind()} subscription jid={item.jid} subscription={item.subscription} ask={item.ask or ""}')
        self.poke()

    def on_group_added(self, item, group) -> None:
        out(f'EVENT {self.kind()} group_added jid={item.jid} group={group}')
        self.poke()

    def on_group_removed(self, item, group) -> None:
        out(f'EVENT {self.kind()} group_removed jid={item.jid} group={group}')
        self.poke()

    def on_entry_removed(self, item) -> None:
        out(f'EVENT {self.kind()} removed jid={item.jid}')
        self.poke()

    def on_subscribe(self, stanza) -> None:
        out(f'EVENT subscribe from={stanza.from_}')
        if self.args.action == 'chat' and self.peer is not None and stanza.from_.bare() == self.peer:
            self.roster.approve(self.peer)
            out(f'EVENT approved to={self.peer}')
            item = self.roster.items.get(self.peer)
            if item is None or (item.subscription in ('none', 'from') and item.ask != 'subscribe'):
                self.roster.subscribe(self.peer)
                out(f'EVENT sent subscribe to={self.peer}')
        self.poke()

    def on_subscribed(self, stanza) -> None:
        out(f'EVENT subscribed from={stanza.from_}')
        self.poke()

    def on_available(self, full_jid, _stanza) -> None:
        out(f'EVENT presence from={full_jid} type=available')
        if self.peer is not None and full_jid.bare() == self.peer and full_jid.resource:
            self.peer_online = True
        self.poke()

    def on_message(self, msg) -> None:
        try:
            body = msg.body.any()
        except (KeyError, ValueError):
            body = None
        if body is None:
            # Chat states and other bodiless messages are not what the tests look at.
            return
        delays = list(msg.xep0203_delay)
        if delays:
            stamp = delays[0].stamp.isoformat()
            delay_from = str(delays[0].from_) if delays[0].from_ is not None else ''
        else:
            stamp, delay_from = 'none', ''
        out(f'EVENT message from={msg.from_} type={msg.type_.value} body={one_line(body)} '
            f'delay={stamp} delay_from={delay_from}')
        self.received.append(msg)
        if (self.args.echo and not self.echoed and self.peer is not None and msg.from_ is not None
                and msg.from_.bare() == self.peer):
            self.echoed = True
            reply = f'echo: {body}'
            answer = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT, to=msg.from_)
            answer.body[None] = reply
            self.client.enqueue(answer)
            out(f'EVENT sent to={msg.from_} body={one_line(reply)}')
        self.poke()

    # -- actions ---------------------------------------------------------------------------

    def from_peer(self) -> int:
        return sum(1 for m in self.received if m.from_ is not None and m.from_.bare() == self.peer)

    async def send_bodies(self, to=None) -> None:
        to = to or self.peer
        for body in self.args.send:
            msg = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT, to=to)
            msg.body[None] = body
            await self.client.send(msg)
            out(f'EVENT sent to={to} body={one_line(body)}')

    async def act(self) -> None:
        a = self.args
        action = a.action
        if action in ('roster-set', 'roster-remove', 'chat', 'send', 'message') and self.peer is None:
            raise RuntimeError(f'{action} needs --peer')
        if action == 'login':
            return
        if action == 'roster-get':
            self.print_roster()
            return
        if action == 'roster-set':
            existing = self.roster.items.get(self.peer)
            current = set(existing.groups) if existing is not None else set()
            wanted = set(a.group)
            await self.roster.set_entry(self.peer, name=a.name or None, add_to_groups=frozenset(wanted - current),
                                        remove_from_groups=frozenset(current - wanted), timeout=10)
            out(f'EVENT set_result jid={self.peer}')

            def applied() -> bool:
                item = self.roster.items.get(self.peer)
                return item is not None and (item.name or '') == a.name and set(item.groups) == wanted

            await self.until(applied)
            self.print_roster()
            return
        if action == 'roster-remove':
            await self.roster.remove_entry(self.peer, timeout=10)
            out(f'EVENT remove_result jid={self.peer}')
            await self.until(lambda: self.peer not in self.roster.items)
            self.print_roster()
            return
        if action == 'send':
            await self.send_bodies()
            # Let the server take the last message before the stream closes.
            await asyncio.sleep(0.2)
            return
        if action == 'message':
            await self.send_bodies(self.peer_full)
            await self.until(lambda: self.from_peer() >= 1)
            return
        if action == 'receive':
            if a.expect > 0:
                await self.until(lambda: len(self.received) >= a.expect)
                # Anything more than expected shows up in the report.
                await asyncio.sleep(a.collect)
            else:
                await asyncio.sleep(a.collect)
            out(f'EVENT received count={len(self.received)}')
            return
        if action == 'chat':
            self.print_roster()
            if a.subscribe:
                self.roster.subscribe(self.peer)
                out(f'EVENT sent subscribe to={self.peer}')
            await self.until(lambda: self.peer_online)
            if a.send:
                await self.send_bodies()
            if a.expect > 0:
                await self.until(lambda: self.from_peer() >= a.expect)
            if a.echo:
                await self.until(lambda: self.echoed)
            await self.until(lambda: self.peer in self.roster.items and self.roster.items[self.peer].subscription == 'both')
            out(f'EVENT mutual jid={self.peer}')
            await asyncio.sleep(0.2)
            return
        raise RuntimeError(f'unknown action {action}')

    async def run(self) -> bool:
        a = self.args
        available = a.action in ('chat', 'receive', 'message')
        presence = aioxmpp.PresenceState(available=available)
        try:
            async with self.client.connected(presence=presence, timeout=timedelta(seconds=a.timeout)):
                await self.act()
                out('EVENT done')
                if a.roster_cache:
                    with open(a.roster_cache, 'w', encoding='utf-8') as f:
                        json.dump(self.roster.export_as_json(), f)
        except aiosasl.AuthenticationFailure as exc:
            out(f'EVENT failed_auth text={one_line(exc.text or exc.opaque_error)}')
            out('FAIL authentication failed')
            return False
        out('EVENT closed')
        return True


async def amain(args: argparse.Namespace) -> int:
    driver = Driver(args)
    try:
        ok = await asyncio.wait_for(driver.run(), args.timeout)
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
    p = argparse.ArgumentParser(description='aioxmpp interop client for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--action', default='login',
                   choices=['login', 'roster-get', 'roster-set', 'roster-remove', 'chat', 'send', 'receive', 'message'])
    p.add_argument('--direct-tls', action='store_true', help='connect with direct TLS (XEP-0368) instead of STARTTLS')
    p.add_argument('--peer', default='')
    p.add_argument('--name', default='', help='roster-set: the item name (empty: none)')
    p.add_argument('--group', action='append', default=[], help='roster-set: a group (repeatable)')
    p.add_argument('--subscribe', action='store_true')
    p.add_argument('--send', action='append', default=[], help='a message body (repeatable, sent in order)')
    p.add_argument('--expect', type=int, default=0, help='messages to wait for (receive: from anyone; chat: from --peer)')
    p.add_argument('--echo', action='store_true')
    p.add_argument('--collect', type=float, default=0.5,
                   help='receive: seconds to keep listening (after --expect messages, if given)')
    p.add_argument('--roster-cache', default='', help='JSON file keeping the roster and its version between runs')
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL,
                        stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')
    return asyncio.run(amain(args))


if __name__ == '__main__':
    sys.exit(main())
