#!/usr/bin/python3
# Interop client for Cadence's test suite: aioxmpp's stream management (XEP-0198), which
# aioxmpp.Client negotiates by itself, with resumption, at its defaults (Debian's python3-aioxmpp).
# Run with /usr/bin/python3.
#
# It logs in available, then once the file --drop-when exists aborts its TCP connection (a phone
# losing its network). aioxmpp reconnects and resumes by itself; its connector waits for the file
# --resume-when before opening the new connection, so the test decides what is sent meanwhile.
# It then collects chat messages until --expect N arrived after the drop, then --collect seconds.
# Lines on stdout:
#   EVENT session_start jid=...
#   EVENT sm enabled=True resumable=True
#   EVENT dropped
#   EVENT suspended
#   EVENT resumed
#   EVENT established                       (a new session instead of a resumption: a failure)
#   EVENT message from=... body=...
#   EVENT received count=N
#   EVENT done
#   FAIL <reason>
import argparse
import asyncio
import logging
import os
import socket
import sys
from datetime import timedelta

import aioxmpp
import aioxmpp.connector
import aioxmpp.dispatcher


def out(line: str) -> None:
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


async def wait_file(path: str) -> None:
    while not os.path.exists(path):
        await asyncio.sleep(0.05)


class GatedConnector(aioxmpp.connector.STARTTLSConnector):
    """aioxmpp's STARTTLS connector; connections after the first wait for a file (the network is back)."""

    def __init__(self, gate: str) -> None:
        super().__init__()
        self.gate = gate
        self.attempts = 0

    async def connect(self, *args, **kwargs):
        self.attempts += 1
        if self.attempts > 1:
            await wait_file(self.gate)
        return await super().connect(*args, **kwargs)


async def amain(args: argparse.Namespace) -> int:
    client = aioxmpp.Client(
        aioxmpp.JID.fromstr(args.jid),
        aioxmpp.make_security_layer(args.password),
        override_peer=[('127.0.0.1', args.port, GatedConnector(args.resume_when))],
        negotiation_timeout=timedelta(seconds=10),
    )
    messages = client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
    received: list = []
    dropped = asyncio.Event()
    resumed = asyncio.Event()

    def on_message(msg) -> None:
        body = msg.body.any() if msg.body else None
        if msg.type_ != aioxmpp.MessageType.CHAT or not body:
            return
        out(f'EVENT message from={msg.from_} body={body}')
        if dropped.is_set():
            received.append(body)

    messages.register_callback(None, None, on_message)
    client.on_stream_suspended.connect(lambda reason: out('EVENT suspended'))
    client.on_stream_resumed.connect(lambda: (out('EVENT resumed'), resumed.set()))

    async def run() -> bool:
        async with client.connected() as stream:
            out(f'EVENT session_start jid={client.local_jid}')
            client.on_stream_established.connect(lambda: out('EVENT established'))
            out(f'EVENT sm enabled={stream.sm_enabled} resumable={stream.sm_resumable}')
            await wait_file(args.drop_when)
            # The TCP socket under the private XML stream's transport, shut down as a lost
            # network would leave it: aioxmpp sees the connection fail, not a stream close.
            xmlstream = getattr(stream, '_xmlstream', None)
            sock = xmlstream.transport.get_extra_info('socket')
            sock.shutdown(socket.SHUT_RDWR)
            dropped.set()
            out('EVENT dropped')
            await resumed.wait()
            while len(received) < args.expect:
                await asyncio.sleep(0.05)
            await asyncio.sleep(args.collect)
            out(f'EVENT received count={len(received)}')
        return True

    try:
        ok = await asyncio.wait_for(run(), args.timeout)
    except asyncio.TimeoutError:
        out(f'FAIL timeout after {args.timeout}s')
        ok = False
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out(f'FAIL {type(exc).__name__}: {exc}')
        ok = False
    if ok:
        out('EVENT done')
    elif client.running:
        client.stop()
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--drop-when', required=True)
    p.add_argument('--resume-when', required=True)
    p.add_argument('--expect', type=int, default=0)
    p.add_argument('--collect', type=float, default=0.5)
    p.add_argument('--timeout', type=float, default=40.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if os.environ.get('AIOXMPP_SM_DEBUG') else logging.CRITICAL, stream=sys.stderr)
    return asyncio.run(amain(args))


if __name__ == '__main__':
    sys.exit(main())
