// Stream management (XEP-0198) resumption over WebSocket (RFC 7395) with a real web client library
// at its defaults: @xmpp/client (xmpp.js) connects to /xmpp-websocket, enables resumable stream
// management by itself, loses its WebSocket (terminated, as when a laptop's network goes away),
// reconnects on its own and resumes: the 5 messages sent meanwhile arrive, each once. On Node
// before 22 the `ws` package is the global WebSocket, as xmpp.js's README tells Node users to do;
// it trusts the run's test CA (what NODE_EXTRA_CA_CERTS does for a browser's trust store).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { client, xml } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { WebSocket as NodeWebSocket } from 'ws';
import { login, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { startXmppJs } from '../helpers/xmppjs-start.ts';

const USERS = { juliet: 'jul1et-ws-pass', romeo: 'r0meo-ws-pass' };

describe('interop: xmpp.js resumes its stream over WebSocket after losing the socket', function () {
  let server: TestServer;
  let romeo: TestClient;
  const global = globalThis as { WebSocket?: unknown };
  const previous = global.WebSocket;

  before(async function () {
    this.timeout(120_000);
    server = await startServer({ users: USERS, config: { tls: testCa().serverTls } });
    romeo = await login(server, 'romeo', USERS.romeo, { resource: 'desk' });
    const ca = readFileSync(testCa().caFile);
    global.WebSocket = class extends NodeWebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { ca });
      }
    };
  });
  after(async function () {
    global.WebSocket = previous;
    await romeo?.stop();
    await server?.destroy();
  });

  it('@xmpp/client: the 5 messages sent while it was away arrive once it has resumed, each once', async function () {
    const xmpp = client({ service: `wss://localhost:${server.httpsPort}/xmpp-websocket`, domain: 'localhost', username: 'juliet', password: USERS.juliet });
    xmpp.on('error', () => undefined);
    const bodies: string[] = [];
    xmpp.on('stanza', (el: Element) => {
      const body = el.name === 'message' ? el.getChildText('body') : null;
      if (body !== null) bodies.push(body);
    });
    try {
      const jid = (await startXmppJs(xmpp)).toString();
      await xmpp.send(xml('presence'));
      const sm = xmpp.streamManagement as unknown as { id: string; once(event: 'resumed', fn: () => void): void };
      assert.ok(sm.id, 'xmpp.js enabled resumable stream management');
      const resumed = new Promise<void>((resolve) => sm.once('resumed', resolve));

      const mark = server.output.length;
      (xmpp.socket as unknown as { socket: NodeWebSocket }).socket.terminate();
      await server.waitForOutput(/juliet@localhost\/\S+ hibernates/, 10_000, mark);
      for (let i = 1; i <= 5; i++) await romeo.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, `while away ${i}`)));
      await resumed;
      await server.waitForOutput(/juliet@localhost\/\S+ resumed/, 10_000, mark);
      const deadline = Date.now() + 10_000;
      while (bodies.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(bodies, ['while away 1', 'while away 2', 'while away 3', 'while away 4', 'while away 5']);
      assert.equal(xmpp.jid?.toString(), jid, 'the same session');
      assert.doesNotMatch(server.output.slice(mark), /re-routed \d+ unacknowledged/);
    } finally {
      await xmpp.stop().catch(() => undefined);
    }
  });
});
