// Interop client for Cadence's test suite, driven by xmpp.js (`@xmpp/client` from npm) with its
// default settings: its own choice among STARTTLS / direct TLS (by the service URL's scheme),
// SASL2 or SASL, mechanisms and FAST; certificate verification against Node's trust store (the
// tests add their CA with NODE_EXTRA_CA_CERTS). Run in its own process:
//   node --import tsx spec/interop/xmppjs_client.ts --service xmpp://localhost:5222 \
//     --username romeo --password … --peer juliet@localhost/garden --send 'hello'
// (xmpps:// for direct TLS). It logs in, comes online, sends the body to --peer, waits for a
// message back from the peer, and logs out. One line per thing that happened:
//   EVENT tls version=TLSv1.3
//   EVENT online jid=romeo@localhost/…
//   EVENT sent to=… body=…
//   EVENT message from=… type=chat body=…
//   EVENT done
//   EVENT closed
//   FAIL <reason>
// Exit status: 0 success, 1 failure.
import { parseArgs } from 'node:util';
import type { TLSSocket } from 'node:tls';
import { client, xml } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { startXmppJs } from '../helpers/xmppjs-start.ts';

const { values: args } = parseArgs({
  options: {
    service: { type: 'string' },
    domain: { type: 'string', default: 'localhost' },
    username: { type: 'string' },
    password: { type: 'string' },
    peer: { type: 'string' },
    send: { type: 'string', default: 'hello' },
    timeout: { type: 'string', default: '20' },
  },
});

const out = (line: string) => process.stdout.write(`${line}\n`);
const oneLine = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

async function main(): Promise<boolean> {
  if (!args.service || !args.username || !args.password || !args.peer) throw new Error('--service, --username, --password and --peer are required');
  const peer = args.peer;
  const xmpp = client({ service: args.service, domain: args.domain, username: args.username, password: args.password });
  // One run, one connection: a dropped stream must show as a failure, not be retried.
  xmpp.reconnect.stop();
  xmpp.on('error', (err: Error) => out(`EVENT error ${oneLine(String(err))}`));

  const reply = new Promise<void>((resolve) => {
    xmpp.on('stanza', (el: Element) => {
      if (el.name !== 'message') return;
      const body = el.getChildText('body');
      if (body === null) return;
      out(`EVENT message from=${String(el.attrs.from)} type=${String(el.attrs.type ?? 'normal')} body=${oneLine(body)}`);
      if (String(el.attrs.from).split('/')[0] === peer.split('/')[0]) resolve();
    });
  });

  // By 'online', not start() alone: see spec/helpers/xmppjs-start.ts.
  const address = await startXmppJs(xmpp, (err) => out(`EVENT start-timeout ${oneLine(String(err))}`));
  const socket = (xmpp as unknown as { socket?: { socket?: TLSSocket } }).socket?.socket;
  out(`EVENT tls version=${socket?.getProtocol?.() ?? 'none'}`);
  out(`EVENT online jid=${address.toString()}`);
  await xmpp.send(xml('presence'));
  await xmpp.send(xml('message', { to: peer, type: 'chat' }, xml('body', {}, args.send)));
  out(`EVENT sent to=${peer} body=${oneLine(args.send)}`);
  await reply;
  out('EVENT done');
  await xmpp.stop();
  out('EVENT closed');
  return true;
}

const timeoutS = Number(args.timeout);
const timer = setTimeout(() => {
  out(`FAIL timeout after ${timeoutS}s`);
  process.exit(1);
}, timeoutS * 1000);
main().then(
  (ok) => {
    clearTimeout(timer);
    process.exit(ok ? 0 : 1);
  },
  (err: unknown) => {
    out(`FAIL ${oneLine(String(err))}`);
    process.exit(1);
  },
);
