// Web clients' libraries over XMPP over WebSocket (RFC 7395), as their users run them — default
// settings but the endpoint URL, certificate verification on against the test CA (trusted through
// NODE_EXTRA_CA_CERTS) — log in on their first SASL attempt with SCRAM, bind, and exchange a
// message each way with a TCP client. "First attempt" is counted from the server's log
// (spec/helpers/sasl-log.ts). StanzaJS has only WebSocket and BOSH transports: this is where it
// is tested (spec/interop/first-login.spec.ts covers the TCP clients).
import assert from 'node:assert/strict';
import path from 'node:path';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { assertFirstAttemptLogin, describeAttempts } from '../helpers/sasl-log.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa, trustingEnv } from '../helpers/testca.ts';
import { PyClient, type Result } from './pyclient.ts';

const HOST = 'localhost';
const USERS = { peer: 'peer-pass', xmppjs: 'xmppjs-ws-pass', stanzajs: 'stanzajs-pass' } as const;
type User = keyof typeof USERS;

const CLIENTS: { name: string; user: Exclude<User, 'peer'>; script: string }[] = [
  { name: '@xmpp/client', user: 'xmppjs', script: path.join(ROOT, 'spec', 'interop', 'xmppjs_client.ts') },
  { name: 'StanzaJS (stanza)', user: 'stanzajs', script: path.join(ROOT, 'spec', 'interop', 'stanzajs_client.ts') },
];

describe('interop: web client libraries over WebSocket log in on their first SASL attempt', function () {
  let server: TestServer;
  let peer: TestClient;
  const running: PyClient[] = [];

  before(async function () {
    server = await startServer({ users: USERS, config: { tls: testCa().serverTls } });
    peer = await login(server, 'peer', USERS.peer, { resource: 'desk', presence: true });
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((p) => p.kill()));
    peer?.inbox.drain();
  });
  after(async function () {
    await peer?.stop();
    await server?.destroy();
  });

  for (const c of CLIENTS) {
    it(`${c.name}: SCRAM, bind, a message each way`, async function () {
      const bare = `${c.user}@${HOST}`;
      const from = server.output.length;
      const body = `hello from ${c.name} over WebSocket`;
      const answered = (async () => {
        const m = await peer.expect((el) => el.name === 'message' && String(el.attrs.from).split('/')[0] === bare && el.getChildText('body') === body, 30_000);
        await peer.send(xml('message', { to: String(m.attrs.from), type: 'chat' }, xml('body', {}, `hello back, ${c.name}`)));
        return m;
      })();
      answered.catch(() => undefined);
      const url = `wss://${HOST}:${server.httpsPort}/xmpp-websocket`;
      const args = ['--import', 'tsx', c.script, '--service', url, '--domain', HOST, '--username', c.user, '--password', USERS[c.user], '--peer', peer.jid, '--send', body];
      const p = PyClient.command(process.execPath, args, { env: trustingEnv() });
      running.push(p);
      const r: Result = await p.exited;
      const why = `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- ${describeAttempts(server, bare, from)}\n--- server (tail)\n${server.output.slice(from).slice(-3000)}`;
      assert.equal(r.code, 0, why);
      const mechanism = await assertFirstAttemptLogin(server, bare, from);
      assert.match(mechanism, /^SCRAM-/, why);
      assert.match(r.stdout, new RegExp(`EVENT online jid=${bare}/`), why);
      assert.match(r.stdout, new RegExp(`EVENT message from=${peer.jid.split('/')[0]}/[^ ]+ type=chat body=hello back`), why);
      const m = await answered;
      assert.equal(m.attrs.type, 'chat');
    });
  }
});
