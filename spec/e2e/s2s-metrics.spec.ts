// s2s streams in /metrics (mod_metrics reading mod_s2s's stream list): after a message each way
// between two Cadence servers, each shows its stream to the other by direction, remote domain,
// authentication and bidi — one outgoing bidi stream on the side that opened it, one incoming on
// the other — and without federation traffic, no s2s series at all.
import assert from 'node:assert/strict';
import http from 'node:http';
import { DEFAULTS } from '../../core/config.ts';
import { xml } from '../helpers/client.ts';
import { federationFixture, listenerPort } from '../helpers/s2s.ts';
import type { TestServer } from '../helpers/server.ts';

const PASS = 's2s-metrics-pass';

function metrics(server: TestServer): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: listenerPort(server, 'http'), path: '/metrics', agent: false, headers: { Host: server.host } });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`/metrics: ${res.statusCode} ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

const s2sLines = (text: string) => text.split('\n').filter((l) => l.startsWith('cadence_s2s_streams{'));

describe('s2s: streams in /metrics', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);
  const start = (host: string, users: Record<string, string>) => fx.start(host, { modulesEnabled: [...DEFAULTS.modulesEnabled, 's2s', 'metrics'] }, users);
  const { user } = fx;

  it('counts the streams by direction, remote domain, authentication and bidi', async () => {
    const a = await start('a.test', { alice: PASS });
    const b = await start('b.test', { bob: PASS });
    assert.deepEqual(s2sLines(await metrics(a)), []);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'one')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'one', 15000);
    await bob.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'two')));
    await alice.expect((s) => s.name === 'message' && s.getChildText('body') === 'two', 15000);
    await b.waitForOutput(/s2s stream b\.test → a\.test: dialback verification done/);
    assert.deepEqual(s2sLines(await metrics(a)), ['cadence_s2s_streams{direction="out",remote="b.test",auth="dialback",bidi="yes"} 1']);
    const onB = s2sLines(await metrics(b));
    assert.deepEqual(onB, ['cadence_s2s_streams{direction="in",remote="a.test",auth="dialback",bidi="yes"} 1'], onB.join('\n'));
  });
});
