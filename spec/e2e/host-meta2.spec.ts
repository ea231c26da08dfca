// XEP-0487 (Host Meta 2) in /.well-known/host-meta.json: with the server's public addresses
// configured (`host_meta.ips`), the JSON fetched over HTTPS has the top-level `xmpp` object (ttl)
// and links with ips/priority/weight/sni for the direct-TLS listener (port) and the secure
// WebSocket and BOSH endpoints — and what it lists really serves: a direct TLS connection to
// the announced port with the announced SNI negotiates ALPN `xmpp-client` and opens an XMPP
// stream for the host. Over plain HTTP, or without `ips`, the document stays XEP-0156.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { DEFAULTS } from '../../core/config.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { tlsProbe } from '../helpers/tls-probe.ts';

interface Link {
  rel: string;
  href?: string;
  port?: number;
  ips?: string[];
  priority?: number;
  weight?: number;
  sni?: string;
}
interface Jrd {
  xmpp?: { ttl: number };
  links: Link[];
}

function fetchJson(secure: boolean, port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Jrd }> {
  return new Promise((resolve, reject) => {
    const get = secure ? https.get : http.get;
    get({ host: '127.0.0.1', port, path, headers: { Host: `localhost:${port}` }, servername: 'localhost', rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(body) as Jrd }));
    }).on('error', reject);
  });
}

describe('e2e: XEP-0487 connection data in host-meta.json', function () {
  let server: TestServer;
  let plain: TestServer | undefined;
  let starttlsOnly: TestServer | undefined;
  let federating: TestServer | undefined;

  before(async function () {
    server = await startServer({ config: { host_meta: { ips: ['127.0.0.1'], ttl: 600 } } });
  });
  after(async function () {
    await server?.destroy();
    await plain?.destroy();
    await starttlsOnly?.destroy();
    await federating?.destroy();
  });

  it('lists direct TLS, WebSocket and BOSH with ips, priority, weight and sni, and a ttl', async function () {
    const r = await fetchJson(true, server.httpsPort, '/.well-known/host-meta.json');
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'max-age=600');
    assert.deepEqual(r.body.xmpp, { ttl: 600 });
    const byRel = new Map(r.body.links.map((l) => [l.rel, l]));
    assert.deepEqual(byRel.get('urn:xmpp:alt-connections:tls'), {
      rel: 'urn:xmpp:alt-connections:tls', port: server.directTlsPort, ips: ['127.0.0.1'], priority: 10, weight: 50, sni: 'localhost',
    });
    assert.deepEqual(byRel.get('urn:xmpp:alt-connections:websocket'), {
      rel: 'urn:xmpp:alt-connections:websocket', href: `wss://localhost:${server.httpsPort}/xmpp-websocket`, ips: ['127.0.0.1'], priority: 20, weight: 50, sni: 'localhost',
    });
    assert.deepEqual(byRel.get('urn:xmpp:alt-connections:xbosh'), {
      rel: 'urn:xmpp:alt-connections:xbosh', href: `https://localhost:${server.httpsPort}/http-bind`, ips: ['127.0.0.1'], priority: 30, weight: 50, sni: 'localhost',
    });
  });

  it('announces only what serves: the direct-TLS link connects with ALPN xmpp-client and opens a stream for the host', async function () {
    const { body } = await fetchJson(true, server.httpsPort, '/.well-known/host-meta.json');
    const link = body.links.find((l) => l.rel === 'urn:xmpp:alt-connections:tls')!;
    const probe = await tlsProbe({ port: link.port!, servername: link.sni, alpn: ['xmpp-client'] });
    try {
      assert.equal(probe.alpnProtocol, 'xmpp-client');
      assert.match(String(probe.peer.subjectaltname), /DNS:localhost/);
      const header = await new Promise<string>((resolve, reject) => {
        let got = '';
        probe.socket.on('data', (d: Buffer) => {
          got += d.toString();
          if (/<stream:stream[^>]*>/.test(got)) resolve(got);
        });
        probe.socket.once('error', reject);
        probe.socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${link.sni}' version='1.0'>`);
      });
      assert.match(header, /from=['"]localhost['"]/);
    } finally {
      probe.socket.destroy();
    }
  });

  it('stays XEP-0156 over plain HTTP (XEP-0487 data is for HTTPS only)', async function () {
    const r = await fetchJson(false, server.httpPort, '/.well-known/host-meta.json');
    assert.equal(r.body.xmpp, undefined);
    assert.ok(r.body.links.every((l) => l.ips === undefined && l.port === undefined), JSON.stringify(r.body));
  });

  it('stays XEP-0156 when no public address is configured', async function () {
    plain = await startServer({});
    const r = await fetchJson(true, plain.httpsPort, '/.well-known/host-meta.json');
    assert.equal(r.body.xmpp, undefined);
    assert.ok(r.body.links.length > 0);
    assert.ok(r.body.links.every((l) => l.ips === undefined && l.rel !== 'urn:xmpp:alt-connections:tls'), JSON.stringify(r.body));
  });

  it('publishes no XEP-0487 data when nothing listed is reachable that way (STARTTLS only has no link relation)', async function () {
    starttlsOnly = await startServer({
      config: { c2sDirectTlsPorts: [], modulesEnabled: ['tls', 'saslauth', 'bind', 'host_meta'], host_meta: { ips: ['127.0.0.1'], directTlsPort: 443 } },
    });
    const r = await fetchJson(true, starttlsOnly.httpsPort, '/.well-known/host-meta.json');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { links: [] }, 'no xmpp object: it would tell clients to skip the SRV records that lead to STARTTLS');
  });

  it('with federation: lists the s2s direct-TLS port (ALPN xmpp-server), and publishes nothing of XEP-0487 when s2s has STARTTLS only', async function () {
    const s2s = { modulesEnabled: [...DEFAULTS.modulesEnabled, 's2s'], s2sPorts: [0], host_meta: { ips: ['127.0.0.1'] } };
    federating = await startServer({ config: { ...s2s, s2sDirectTlsPorts: [0] } });
    const port = Number(federating.addresses.find((a) => a.startsWith('s2s_direct_tls='))!.split(':').pop());
    const r = await fetchJson(true, federating.httpsPort, '/.well-known/host-meta.json');
    assert.ok(r.body.xmpp);
    const link = r.body.links.find((l) => l.rel === 'urn:xmpp:alt-connections:s2s-tls');
    assert.deepEqual(link, { rel: 'urn:xmpp:alt-connections:s2s-tls', port, ips: ['127.0.0.1'], priority: 10, weight: 50, sni: 'localhost' });
    const probe = await tlsProbe({ port, servername: 'localhost', alpn: ['xmpp-server'] });
    probe.socket.destroy();
    assert.equal(probe.alpnProtocol, 'xmpp-server');
    await federating.destroy();

    federating = await startServer({ config: s2s });
    const legacy = await fetchJson(true, federating.httpsPort, '/.well-known/host-meta.json');
    assert.equal(legacy.body.xmpp, undefined, 'servers reading XEP-0487 would skip the SRV records of the STARTTLS s2s port');
    assert.ok(legacy.body.links.every((l) => l.ips === undefined), JSON.stringify(legacy.body));
    await federating.waitForOutput(/no XEP-0487 data in host-meta\.json: federation has no direct-TLS port/);
  });
});
