#!/usr/bin/python3
# Interop client for Cadence's test suite: slixmpp (Debian's python3-slixmpp 1.8.3) with its
# xep_0198 (stream management) and xep_0352 (client state indication) plugins at their defaults.
# Run with /usr/bin/python3.
#
# It logs in (STARTTLS, SASL, bind; xep_0198 enables SM with resumption by itself), sends
# available presence, says <inactive/> (xep_0352), then:
#   - once the file --drop-when exists, drops its TCP connection without closing the stream
#     (what a phone losing its network does);
#   - once the file --resume-when exists, connects again: xep_0198 resumes the stream by itself;
#   - collects chat messages until --expect N arrived after resuming, then --collect more seconds,
#     and logs out.
# Lines on stdout:
#   EVENT session_start jid=...
#   EVENT sm_enabled id=... resume=true
#   EVENT csi inactive
#   EVENT dropped
#   EVENT sm_resumed
#   EVENT sm_failed
#   EVENT message from=... body=...
#   EVENT received count=N
#   EVENT done
#   FAIL <reason>
import argparse
import asyncio
import logging
import os
import sys

from slixmpp import ClientXMPP

from slixmpp_common import one_line, out


def event(name, *words, **values):
    parts = ['EVENT', name, *words] + [f'{k}={one_line(v)}' for k, v in values.items()]
    out(' '.join(parts))


def fail(reason):
    out(f'FAIL {reason}')


class Client(ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.register_plugin('xep_0198')
        self.register_plugin('xep_0352')
        self.resumed = False
        self.after_resume = []
        self.finished = asyncio.get_event_loop().create_future()
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('sm_enabled', self.on_enabled)
        self.add_event_handler('session_resumed', self.on_resumed)
        self.add_event_handler('sm_failed', lambda _: event('sm_failed'))
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('failed_all_auth', lambda _: self.finish('authentication failed'))

    def finish(self, failure=None):
        if not self.finished.done():
            self.finished.set_result(failure)

    async def on_start(self, _):
        event('session_start', jid=str(self.boundjid))
        self.send_presence()

    async def on_enabled(self, stanza):
        event('sm_enabled', id=stanza['id'], resume=str(stanza['resume']).lower())
        self['xep_0352'].send_inactive()
        event('csi', 'inactive')
        asyncio.ensure_future(self.drop_and_resume())

    async def wait_file(self, path):
        while not os.path.exists(path):
            await asyncio.sleep(0.05)

    async def drop_and_resume(self):
        await self.wait_file(self.args.drop_when)
        self.abort()
        event('dropped')
        await self.wait_file(self.args.resume_when)
        self.connect(('127.0.0.1', self.args.port))

    def on_resumed(self, _):
        self.resumed = True
        event('sm_resumed')
        asyncio.ensure_future(self.collect())

    def on_message(self, msg):
        if msg['type'] not in ('chat', 'normal') or not msg['body']:
            return
        event('message', **{'from': str(msg['from']), 'body': msg['body']})
        if self.resumed:
            self.after_resume.append(msg['body'])

    async def collect(self):
        while len(self.after_resume) < self.args.expect:
            await asyncio.sleep(0.05)
        await asyncio.sleep(self.args.collect)
        event('received', count=str(len(self.after_resume)))
        self.finish()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--jid', required=True)
    parser.add_argument('--password', required=True)
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--drop-when', required=True)
    parser.add_argument('--resume-when', required=True)
    parser.add_argument('--expect', type=int, default=0)
    parser.add_argument('--collect', type=float, default=0.5)
    parser.add_argument('--timeout', type=float, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    client = Client(args)
    client.connect(('127.0.0.1', args.port))
    try:
        failure = await asyncio.wait_for(client.finished, args.timeout)
    except asyncio.TimeoutError:
        failure = 'timeout'
    if failure:
        fail(failure)
        return 1
    event('done')
    client.disconnect()
    await asyncio.sleep(0.2)
    return 0


if __name__ == '__main__':
    sys.exit(asyncio.run(main()))
