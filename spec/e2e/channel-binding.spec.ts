// SCRAM channel binding on real TLS connections, raw sockets: every -PLUS binding type the server
// advertises (XEP-0440) works, tls-unique on TLS 1.3 is accepted in the compatible policy and
// refused in strict, the GS2 'y' flag follows doc/authentication.md's table, and the
// server-first-message carries XEP-0474's downgrade-protection hash. Capping TLS at 1.2 is what
// these tests are about (tls-unique exists only there), not a workaround.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RawClient, type Element } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

type Tls = 'TLSv1.2' | 'TLSv1.3';

interface Secured {
  c: RawClient;
  mechanisms: string[];
  bindings: string[] | undefined;
}

async function secured(server: TestServer, version: Tls, directTls = false): Promise<Secured> {
  const c = await RawClient.connect(directTls ? server.directTlsPort : server.c2sPort, { directTls, tls: { minVersion: version, maxVersion: version } });
  c.openStream();
  if (!directTls) await c.starttls();
  const features: Element = await c.expect((el) => el.name === 'stream:features');
  assert.equal(c.tlsSocket?.getProtocol(), version);
  const mechanisms = features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.text()) ?? [];
  const bindings = features.getChild('sasl-channel-binding', 'urn:xmpp:sasl-cb:0')?.getChildren('channel-binding').map((b) => String(b.attrs.type));
  return { c, mechanisms, bindings };
}

/** XEP-0474's h, computed here from the features as a client would. */
function expectedH(alg: string, mechanisms: string[], bindings: string[] | undefined): string {
  const sort = (xs: string[]) => [...xs].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let s = sort(mechanisms).join('\x1e');
  if (bindings?.length) s += `\x1f${sort(bindings).join('\x1e')}`;
  return createHash(alg).update(s).digest('base64');
}

describe('e2e: SCRAM channel binding and downgrade protection', function () {
  this.timeout(60_000);
  let server: TestServer;
  let strict: TestServer;
  const clients: RawClient[] = [];
  const open = async (s: TestServer, version: Tls, directTls = false) => {
    const r = await secured(s, version, directTls);
    clients.push(r.c);
    return r;
  };

  before(async () => {
    [server, strict] = await Promise.all([
      startServer({ users: { alice: 'secret' } }),
      startServer({ users: { alice: 'secret' }, config: { channelBindingPolicy: 'strict' } }),
    ]);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(async () => {
    await Promise.all([server?.destroy(), strict?.destroy()]);
  });

  describe('compatible policy (default)', () => {
    it('advertises tls-exporter and tls-server-end-point on TLS 1.3, next to the -PLUS mechanisms', async () => {
      const { mechanisms, bindings } = await open(server, 'TLSv1.3');
      assert.deepEqual(bindings, ['tls-exporter', 'tls-server-end-point']);
      assert.deepEqual(mechanisms, [
        'SCRAM-SHA-512-PLUS',
        'SCRAM-SHA-256-PLUS',
        'SCRAM-SHA-1-PLUS',
        'SCRAM-SHA-512',
        'SCRAM-SHA-256',
        'SCRAM-SHA-1',
        'PLAIN',
      ]);
    });

    it('advertises tls-unique and tls-server-end-point on TLS 1.2', async () => {
      const { bindings } = await open(server, 'TLSv1.2');
      assert.deepEqual(bindings, ['tls-unique', 'tls-server-end-point']);
    });

    const cases: [Tls, string][] = [
      ['TLSv1.3', 'tls-exporter'],
      ['TLSv1.3', 'tls-server-end-point'],
      ['TLSv1.2', 'tls-server-end-point'],
      ['TLSv1.2', 'tls-unique'],
      ['TLSv1.3', 'tls-unique'],
    ];
    for (const [version, type] of cases) {
      it(`logs in with SCRAM-SHA-256-PLUS and p=${type} on ${version}`, async () => {
        const { c } = await open(server, version);
        const r = await c.scram({ mechanism: 'SCRAM-SHA-256-PLUS', user: 'alice', password: 'secret', gs2: `p=${type}` });
        assert.deepEqual(r.status, 'success', r.condition);
      });
    }

    it('logs in with SCRAM-SHA-512-PLUS and tls-exporter over direct TLS', async () => {
      const { c } = await open(server, 'TLSv1.3', true);
      const r = await c.scram({ mechanism: 'SCRAM-SHA-512-PLUS', user: 'alice', password: 'secret', gs2: 'p=tls-exporter' });
      assert.equal(r.status, 'success', r.condition);
    });

    it('refuses binding data that is not this connection’s', async () => {
      const other = await open(server, 'TLSv1.3');
      const { c } = await open(server, 'TLSv1.3');
      const r = await c.scram({ mechanism: 'SCRAM-SHA-256-PLUS', user: 'alice', password: 'secret', gs2: 'p=tls-exporter', cbData: other.c.channelBinding('tls-exporter') });
      assert.deepEqual(r, { status: 'failure', condition: 'not-authorized', serverFirst: r.serverFirst });
    });

    it('takes tls-unique on TLS 1.3 as the client’s Finished message only', async () => {
      const { c } = await open(server, 'TLSv1.3');
      const serverFinished = c.tlsSocket!.getPeerFinished()!;
      const r = await c.scram({ mechanism: 'SCRAM-SHA-256-PLUS', user: 'alice', password: 'secret', gs2: 'p=tls-unique', cbData: serverFinished });
      assert.equal(r.condition, 'not-authorized');
    });

    for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256']) {
      it(`accepts ${mechanism} with the GS2 flag y on TLS 1.3 although -PLUS was offered`, async () => {
        const { c, mechanisms } = await open(server, 'TLSv1.3');
        assert.ok(mechanisms.includes(`${mechanism}-PLUS`));
        const r = await c.scram({ mechanism, user: 'alice', password: 'secret', gs2: 'y' });
        assert.equal(r.status, 'success', r.condition);
      });
    }

    it('refuses the GS2 flag y on TLS 1.2, where tls-unique exists: a stripped -PLUS list', async () => {
      const { c } = await open(server, 'TLSv1.2');
      const r = await c.scram({ mechanism: 'SCRAM-SHA-1', user: 'alice', password: 'secret', gs2: 'y' });
      assert.deepEqual(r, { status: 'failure', condition: 'not-authorized' });
    });

    for (const [mechanism, alg, version] of [
      ['SCRAM-SHA-256-PLUS', 'sha256', 'TLSv1.3'],
      ['SCRAM-SHA-1', 'sha1', 'TLSv1.2'],
      ['SCRAM-SHA-512', 'sha512', 'TLSv1.3'],
    ] as const) {
      it(`puts XEP-0474's h over the advertised lists into the server-first-message (${mechanism}, ${version})`, async () => {
        const { c, mechanisms, bindings } = await open(server, version);
        const gs2 = mechanism.endsWith('-PLUS') ? `p=${bindings![0]}` : 'n';
        const r = await c.scram({ mechanism, user: 'alice', password: 'secret', gs2 });
        assert.equal(r.status, 'success', r.condition);
        const h = /,h=([^,]+)/.exec(r.serverFirst!)?.[1];
        assert.equal(h, expectedH(alg, mechanisms, bindings));
      });
    }
  });

  describe('strict policy', () => {
    it('refuses tls-unique on TLS 1.3', async () => {
      const { c } = await open(strict, 'TLSv1.3');
      const r = await c.scram({ mechanism: 'SCRAM-SHA-256-PLUS', user: 'alice', password: 'secret', gs2: 'p=tls-unique' });
      assert.deepEqual(r, { status: 'failure', condition: 'not-authorized' });
    });

    it('accepts tls-unique on TLS 1.2 and tls-exporter on TLS 1.3', async () => {
      const a = await open(strict, 'TLSv1.2');
      assert.equal((await a.c.scram({ mechanism: 'SCRAM-SHA-1-PLUS', user: 'alice', password: 'secret', gs2: 'p=tls-unique' })).status, 'success');
      const b = await open(strict, 'TLSv1.3');
      assert.equal((await b.c.scram({ mechanism: 'SCRAM-SHA-1-PLUS', user: 'alice', password: 'secret', gs2: 'p=tls-exporter' })).status, 'success');
    });

    it('refuses the GS2 flag y whenever -PLUS was offered, TLS 1.3 included', async () => {
      const { c } = await open(strict, 'TLSv1.3');
      const r = await c.scram({ mechanism: 'SCRAM-SHA-256', user: 'alice', password: 'secret', gs2: 'y' });
      assert.deepEqual(r, { status: 'failure', condition: 'not-authorized' });
    });
  });
});
