// Federation with a real Prosody (Debian's 0.12): prosody.example on 127.0.0.2 (started by the test
// with a private config and data directory), cadence.example on 127.0.0.1. Not `.test`: libunbound
// answers every name under `test.` itself with NXDOMAIN (a default local zone, RFC 6761), so
// Prosody would never ask the test's DNS server. Cadence reaches Prosody
// through a static route (s2sRoutes); Prosody finds Cadence through SRV on the test's loopback
// DNS server (libunbound forwarded there). A Cadence user and a Prosody user subscribe to each
// other, see presence and exchange messages both ways — with dialback when neither trusts the
// other's certificate, with SASL EXTERNAL when both trust the test CA — and a Prosody presenting
// a certificate for another name is refused when s2sSecureAuth is on.
import assert from 'node:assert/strict';
import { stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { startProsody, type ProsodyServer } from '../helpers/prosody-server.ts';
import { federate, loginAt, startFederated } from '../helpers/s2s.ts';
import type { TestServer } from '../helpers/server.ts';
import { S2sTestPki } from '../helpers/testca-s2s.ts';

const PASS = 'prosody-s2s-pass';

describe('s2s interop: Prosody 0.12', function () {
  this.timeout(90000);
  let dns: TestDnsServer;
  let cadence: TestServer | undefined;
  let prosody: ProsodyServer | undefined;
  const clients: TestClient[] = [];
  const pki = S2sTestPki.create();
  const prosodyCert = pki.issue({ cn: 'prosody.example', dns: ['prosody.example'], xmppAddrs: ['prosody.example'] });
  const cadenceCert = pki.issue({ cn: 'cadence.example', dns: ['cadence.example'], srvNames: ['_xmpp-server.cadence.example'] });

  beforeEach(async () => {
    dns = await startDnsServer();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`---- cadence\n${cadence?.output ?? ''}`);
      console.log(`---- prosody\n${prosody?.output().split('\n').filter((l) => /s2s|dialback|auth|cert|error|warn/i.test(l)).join('\n') ?? ''}`);
      console.log(`---- DNS queries: ${dns.queries.map((q) => `${q.name}/${q.type}`).join(' ')}`);
    }
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await cadence?.destroy();
    await prosody?.stop();
    cadence = prosody = undefined;
    await dns.close();
  });

  const startBoth = async (cadenceConfig: Record<string, unknown>, prosodyOpts: { trustCa: boolean; cert?: { certFile: string; keyFile: string }; bidi?: boolean }) => {
    cadence = await startFederated({ host: 'cadence.example', dns, users: { alice: PASS }, config: { s2sRoutes: { 'prosody.example': '127.0.0.2:5269' }, ...cadenceConfig } });
    const cert = prosodyOpts.cert ?? prosodyCert;
    prosody = await startProsody({
      host: 'prosody.example', address: '127.0.0.2', dnsPort: dns.port, certFile: cert.certFile, keyFile: cert.keyFile,
      caFile: prosodyOpts.trustCa ? pki.root.certFile : undefined, users: { bob: PASS }, bidi: prosodyOpts.bidi,
    });
    const alice = await loginAt('127.0.0.1', cadence.c2sPort, 'cadence.example', 'alice', PASS);
    clients.push(alice);
    const bob = await loginAt('127.0.0.2', prosody.c2sPort, 'prosody.example', 'bob', PASS);
    clients.push(bob);
    return { alice, bob };
  };

  it('federates with dialback: messages, subscriptions and presence both ways', async () => {
    const { alice, bob } = await startBoth({}, { trustCa: false });
    await federate(alice, bob);
    await cadence!.waitForOutput(/s2s stream cadence\.example → prosody\.example established \(dialback, TLSv1\.3/);
    await cadence!.waitForOutput(/s2s stream from prosody\.example to cadence\.example authenticated \(dialback/);
  });

  it('federates with SASL EXTERNAL when both trust the CA', async () => {
    const { alice, bob } = await startBoth({ s2sCaFile: pki.root.certFile, s2sSecureAuth: true, tls: { certificate: cadenceCert.certFile, key: cadenceCert.keyFile } }, { trustCa: true });
    await federate(alice, bob);
    await cadence!.waitForOutput(/s2s stream cadence\.example → prosody\.example established \(EXTERNAL, TLSv1\.3/);
    await cadence!.waitForOutput(/s2s stream from prosody\.example to cadence\.example authenticated \(EXTERNAL/);
  });

  it('bidirectional streams (XEP-0288, Prosody\'s mod_s2s_bidi), SASL EXTERNAL: one connection each way it was opened', async () => {
    const { alice, bob } = await startBoth({ s2sCaFile: pki.root.certFile, s2sSecureAuth: true, tls: { certificate: cadenceCert.certFile, key: cadenceCert.keyFile } }, { trustCa: true, bidi: true });
    // Cadence opens the stream: Prosody's replies come back over it.
    await alice.send(xml('message', { to: bob.bare, type: 'chat' }, xml('body', {}, 'to prosody over bidi')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'to prosody over bidi', 20000);
    await cadence!.waitForOutput(/s2s stream cadence\.example → prosody\.example established \(EXTERNAL, TLSv1\.3, bidi\)/);
    await bob.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'back over the same stream')));
    await alice.expect((s) => s.name === 'message' && s.getChildText('body') === 'back over the same stream', 20000);
    await federate(alice, bob);
    assert.doesNotMatch(cadence!.output, /s2s stream from prosody\.example to cadence\.example authenticated/);
    const list = await cadence!.cli(['shell', 's2s', 'list']);
    const rows = list.stdout.split('\n').filter((l) => /^(in|out)\s/.test(l));
    assert.equal(rows.length, 1, list.stdout);
    assert.match(rows[0]!, /^out\s+cadence\.example\s+prosody\.example\s+EXTERNAL\s+TLSv1\.3\s.*bidi$/);
  });

  it('bidirectional streams with Prosody opening them (dialback): Cadence answers over Prosody\'s stream', async () => {
    const { alice, bob } = await startBoth({}, { trustCa: false, bidi: true });
    await bob.send(xml('message', { to: alice.bare, type: 'chat' }, xml('body', {}, 'from prosody first')));
    await alice.expect((s) => s.name === 'message' && s.getChildText('body') === 'from prosody first', 20000);
    await cadence!.waitForOutput(/s2s stream from prosody\.example to cadence\.example authenticated \(dialback, TLSv1\.3, bidi\)/);
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'answer over prosody\'s stream')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'answer over prosody\'s stream', 20000);
    assert.doesNotMatch(cadence!.output, /s2s stream cadence\.example → prosody\.example established/);
  });

  it('refuses a Prosody whose certificate names another domain under s2sSecureAuth', async () => {
    const wrong = pki.issue({ cn: 'wrong.test', dns: ['wrong.test'] });
    const { alice } = await startBoth({ s2sCaFile: pki.root.certFile, s2sSecureAuth: true }, { trustCa: false, cert: wrong });
    await alice.send(xml('message', { to: 'bob@prosody.example', id: 'w1', type: 'chat' }, xml('body', {}, 'not for a wrong certificate')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'w1' && s.attrs.type === 'error', 40000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-timeout');
    await cadence!.waitForOutput(/prosody\.example did not present a valid certificate \(certificate not valid for prosody\.example/);
  });
});
