// Interop client for Cadence's test suite, driven by StanzaJS (`stanza` from npm) with its default
// settings but for the WebSocket URL (it has no TCP transport; in Node it uses the `ws` package,
// trusting Node's CA store — the tests add their CA with NODE_EXTRA_CA_CERTS). Run in its own
// process:
//   node --import tsx spec/interop/stanzajs_client.ts --service wss://localhost:5281/xmpp-websocket \
//     --username romeo --password … --peer juliet@localhost/garden --send 'hello'
// It logs in, comes online, sends the body to --peer, waits for a message back from the peer, and
// logs out, printing the same EVENT lines as xmppjs_client.ts (FAIL <reason> on failure).
import { parseArgs } from 'node:util';
import * as XMPP from 'stanza';

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

function main(): Promise<boolean> {
  if (!args.service || !args.username || !args.password || !args.peer) throw new Error('--service, --username, --password and --peer are required');
  const peer = args.peer;
  const body = args.send;
  const client = XMPP.createClient({
    jid: `${args.username}@${args.domain}`,
    password: args.password,
    // Only the endpoint is given (no XEP-0156 lookup on port 443 of the test host).
    transports: { websocket: args.service, bosh: false },
  });
  return new Promise((resolve, reject) => {
    client.on('auth:failed', () => reject(new Error('authentication failed')));
    client.on('stream:error', (err) => out(`EVENT error ${oneLine(JSON.stringify(err))}`));
    client.on('session:started', () => {
      out(`EVENT online jid=${client.jid}`);
      client.sendPresence();
      client.sendMessage({ to: peer, type: 'chat', body });
      out(`EVENT sent to=${peer} body=${oneLine(body)}`);
    });
    client.on('message', (msg) => {
      if (!msg.body) return;
      out(`EVENT message from=${msg.from} type=${msg.type ?? 'normal'} body=${oneLine(msg.body)}`);
      if (msg.from.split('/')[0] !== peer.split('/')[0]) return;
      out('EVENT done');
      client.once('disconnected', () => {
        out('EVENT closed');
        resolve(true);
      });
      void client.disconnect();
    });
    client.connect();
  });
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
