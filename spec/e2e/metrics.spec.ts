// mod_metrics (doc/metrics.md) over real HTTP: two users log in and exchange messages, a wrong
// password fails, a connection over the per-address cap is refused; then /metrics shows each of
// these, parses as Prometheus text, names no user; an address outside metrics.allow gets 403.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { DEFAULTS } from '../../core/config.ts';
import { login, RawClient, saslCondition, streamErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';

function get(port: number, path: string, opts: { localAddress?: string; accept?: string } = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, localAddress: opts.localAddress, agent: false, headers: { Host: 'localhost', ...(opts.accept ? { Accept: opts.accept } : {}) } });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The Prometheus text exposition format (0.0.4), checked line by line; returns sample → value. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const labelValue = '"(?:[^"\\\\\\n]|\\\\[\\\\n"])*"';
  const sample = new RegExp(`^(${name})(\\{(?:[a-zA-Z_][a-zA-Z0-9_]*=${labelValue}(?:,[a-zA-Z_][a-zA-Z0-9_]*=${labelValue})*)?,?\\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( -?\\d+)?$`);
  const typed = new Set<string>();
  assert.ok(text.endsWith('\n'), 'the text ends with a line feed');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const meta = new RegExp(`^# (HELP|TYPE) (${name}) (.*)$`).exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
        assert.ok(!typed.has(meta[2]!), `TYPE twice for ${meta[2]}`);
        typed.add(meta[2]!);
      }
      continue;
    }
    const m = sample.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return samples;
}

describe('e2e: metrics at /metrics (mod_metrics)', function () {
  this.timeout(60_000);
  let server: TestServer;
  const clients: TestClient[] = [];

  before(async () => {
    server = await startServer({
      users: { alice: 'alice-pass', bob: 'bob-pass' },
      config: {
        modulesEnabled: [...DEFAULTS.modulesEnabled, 'metrics'],
        limits: { connectionsPerAddress: 3 },
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.stop().catch(() => undefined);
    await server?.destroy();
  });

  it('counts sessions, stanzas, auth failures and limits hit, in Prometheus text without JIDs', async () => {
    const before = parsePrometheus((await get(server.httpPort, '/metrics')).body);
    const at = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

    const alice = await login(server, 'alice', 'alice-pass', { resource: 'desk' });
    const bob = await login(server, 'bob', 'bob-pass', { resource: 'phone' });
    clients.push(alice, bob);
    for (let i = 0; i < 3; i++) {
      await alice.send(xml('message', { to: bob.jid, type: 'chat', id: `m${i}` }, xml('body', {}, `hello ${i}`)));
      await bob.expect((s) => s.name === 'message' && s.attrs.id === `m${i}`);
    }

    // A wrong password: SASL not-authorized.
    const wrong = await RawClient.connect(server.c2sPort);
    try {
      wrong.openStream();
      await wrong.starttls();
      await wrong.expect((el) => el.name === 'stream:features');
      wrong.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0guess').toString('base64')}</auth>`);
      assert.equal(saslCondition(await wrong.expect((el) => el.name === 'failure')), 'not-authorized');
    } finally {
      wrong.close();
    }

    // Connections over the cap (3 from one address: alice, bob and these): refused with policy-violation.
    const extra = await Promise.all([0, 1].map(() => RawClient.connect(server.c2sPort)));
    const conditions = await Promise.all(extra.map(async (c) => {
      c.openStream();
      const el = await c.expect((e) => e.name === 'stream:features' || e.name === 'stream:error');
      return el.name === 'stream:error' ? streamErrorCondition(el) : 'features';
    }));
    assert.ok(conditions.includes('policy-violation'), conditions.join(' '));

    const res = await get(server.httpPort, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    const after = parsePrometheus(res.body);
    for (const c of extra) c.close();

    assert.equal(at(after, 'cadence_sessions{type="c2s",host="localhost"}'), 2, res.body);
    assert.equal(at(after, 'cadence_bound_resources{host="localhost"}'), 2);
    const sent = at(after, 'cadence_stanzas_total{direction="in",kind="message",host="localhost"}') - at(before, 'cadence_stanzas_total{direction="in",kind="message",host="localhost"}');
    const received = at(after, 'cadence_stanzas_total{direction="out",kind="message",host="localhost"}') - at(before, 'cadence_stanzas_total{direction="out",kind="message",host="localhost"}');
    assert.equal(sent, 3);
    assert.ok(received >= 3, `out messages ${received}`);
    assert.equal(at(after, 'cadence_auth_failures_total{host="localhost",condition="not-authorized"}') - at(before, 'cadence_auth_failures_total{host="localhost",condition="not-authorized"}'), 1);
    assert.ok(at(after, 'cadence_limits_hit_total{limit="connectionsPerAddress"}') >= 1, res.body);
    // Routing latency of the 3 messages, and handler time by event and module.
    assert.equal(at(after, 'cadence_routing_seconds_count{kind="message"}') - at(before, 'cadence_routing_seconds_count{kind="message"}'), 3);
    assert.ok(at(after, 'cadence_routing_seconds_bucket{le="+Inf",kind="message"}') >= 3);
    assert.ok(at(after, 'cadence_handler_calls_total{event="message/full",module="message"}') >= 3, res.body.split('\n').filter((l) => l.includes('message/full')).join('\n'));
    assert.ok(after.has('cadence_handler_seconds_total{event="message/full",module="message"}'));
    // prom-client's process metrics: memory and event-loop delay.
    assert.ok(at(after, 'process_resident_memory_bytes') > 0);
    assert.ok(after.has('nodejs_eventloop_lag_seconds'));
    // Every metric the Grafana dashboard (doc/examples/grafana-cadence.json) queries exists.
    const dashboard = readFileSync(path.join(ROOT, 'doc', 'examples', 'grafana-cadence.json'), 'utf8');
    const queried = new Set([...dashboard.matchAll(/\b(?:cadence|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0]));
    assert.ok(queried.size >= 10, [...queried].join(' '));
    const names = [...after.keys()].map((k) => k.replace(/\{.*$/, ''));
    for (const name of queried) assert.ok(names.includes(name), `the dashboard queries ${name}, which /metrics does not have`);
    // Hosts only: no username or JID anywhere.
    assert.doesNotMatch(res.body, /alice|bob|desk|phone/);
  });

  it('answers OpenMetrics to a scraper that asks for it', async () => {
    const res = await get(server.httpPort, '/metrics', { accept: 'application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5' });
    assert.equal(res.status, 200);
    assert.match(res.type, /^application\/openmetrics-text; version=1\.0\.0/);
    assert.match(res.body, /# EOF\n$/);
    assert.match(res.body, /^cadence_sessions\{/m);
  });

  it('refuses an address outside metrics.allow', async () => {
    const res = await get(server.httpPort, '/metrics', { localAddress: '127.0.0.2' });
    assert.equal(res.status, 403);
    assert.doesNotMatch(res.body, /cadence_/);
    await server.waitForOutput(/\/metrics refused to 127\.0\.0\.2/);
  });
});
