// Federation with a real ejabberd (Debian's 23.01): ejabberd.example on 127.0.0.3 (started by the
// test with a private config, spool and log directory), cadence.example on 127.0.0.1. Cadence
// reaches ejabberd through a static route (s2sRoutes); ejabberd finds Cadence through SRV on the
// test's loopback DNS server (Erlang's resolver pointed there by an ERL_INETRC; the target is an IP
// literal, as ejabberd looks addresses up with the system's getaddrinfo). A Cadence user and
// an ejabberd user subscribe to each other, see presence and exchange messages both ways — with
// dialback when neither trusts the other's certificate, with SASL EXTERNAL when both trust the
// test CA — and an ejabberd presenting a certificate for another name is refused when
// s2sSecureAuth is on.
import assert from 'node:assert/strict';
import { stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { startEjabberd, type EjabberdServer } from '../helpers/ejabberd-server.ts';
import { federate, listenerPort, loginAt, startFederated } from '../helpers/s2s.ts';
import type { TestServer } from '../helpers/server.ts';
import { S2sTestPki } from '../helpers/testca-s2s.ts';

const PASS = 'ejabberd-s2s-pass';

describe('s2s interop: ejabberd 23.01', function () {
  this.timeout(90000);
  let dns: TestDnsServer;
  let cadence: TestServer | undefined;
  let ejabberd: EjabberdServer | undefined;
  const clients: TestClient[] = [];
  const pki = S2sTestPki.create();
  const ejabberdCert = pki.issue({ cn: 'ejabberd.example', dns: ['ejabberd.example'], xmppAddrs: ['ejabberd.example'] });
  const cadenceCert = pki.issue({ cn: 'cadence.example', dns: ['cadence.example'], srvNames: ['_xmpp-server.cadence.example'] });

  beforeEach(async () => {
    dns = await startDnsServer();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`---- cadence\n${cadence?.output ?? ''}`);
      console.log(`---- ejabberd\n${ejabberd?.output().split('\n').filter((l) => /s2s|dialback|auth|cert|error|warn/i.test(l)).join('\n') ?? ''}`);
      console.log(`---- DNS queries: ${dns.queries.map((q) => `${q.name}/${q.type}`).join(' ')}`);
    }
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await cadence?.destroy();
    await ejabberd?.stop();
    cadence = ejabberd = undefined;
    await dns.close();
  });

  const startBoth = async (cadenceConfig: Record<string, unknown>, ejabberdOpts: { trustCa: boolean; cert?: { certFile: string; keyFile: string } }) => {
    cadence = await startFederated({ host: 'cadence.example', dns, users: { alice: PASS }, config: { s2sRoutes: { 'ejabberd.example': '127.0.0.3:5269' }, ...cadenceConfig } });
    // ejabberd looks addresses up with getaddrinfo (the system's resolver): an IP-literal target needs no query.
    dns.set('_xmpp-server._tcp.cadence.example', [{ type: 'SRV', priority: 0, weight: 0, port: listenerPort(cadence, 's2s'), target: '127.0.0.1' }]);
    const cert = ejabberdOpts.cert ?? ejabberdCert;
    ejabberd = await startEjabberd({
      host: 'ejabberd.example', address: '127.0.0.3', dnsPort: dns.port, certFile: cert.certFile, keyFile: cert.keyFile,
      caFile: ejabberdOpts.trustCa ? pki.root.certFile : undefined, users: { bob: PASS },
    });
    const alice = await loginAt('127.0.0.1', cadence.c2sPort, 'cadence.example', 'alice', PASS);
    clients.push(alice);
    const bob = await loginAt('127.0.0.3', ejabberd.c2sPort, 'ejabberd.example', 'bob', PASS);
    clients.push(bob);
    return { alice, bob };
  };

  it('federates with dialback: messages, subscriptions and presence both ways', async () => {
    const { alice, bob } = await startBoth({}, { trustCa: false });
    await federate(alice, bob);
    await cadence!.waitForOutput(/s2s stream cadence\.example → ejabberd\.example established \(dialback, TLSv1\.3/);
    await cadence!.waitForOutput(/s2s stream from ejabberd\.example to cadence\.example authenticated \(dialback/);
  });

  it('federates with SASL EXTERNAL when both trust the CA', async () => {
    const { alice, bob } = await startBoth({ s2sCaFile: pki.root.certFile, s2sSecureAuth: true, tls: { certificate: cadenceCert.certFile, key: cadenceCert.keyFile } }, { trustCa: true });
    await federate(alice, bob);
    await cadence!.waitForOutput(/s2s stream cadence\.example → ejabberd\.example established \(EXTERNAL, TLSv1\.3/);
    await cadence!.waitForOutput(/s2s stream from ejabberd\.example to cadence\.example authenticated \(EXTERNAL/);
  });

  it('multiplexes a second Cadence domain onto the established stream (XEP-0220 sender multiplexing, dialback)', async () => {
    const { alice, bob } = await startBoth({ virtualHosts: { 'cadence.example': {}, 'cadence2.example': {} } }, { trustCa: false });
    dns.set('_xmpp-server._tcp.cadence2.example', [{ type: 'SRV', priority: 0, weight: 0, port: listenerPort(cadence!, 's2s'), target: '127.0.0.1' }]);
    const made = await cadence!.cli(['adduser', 'carol@cadence2.example'], `${PASS}\n`);
    assert.equal(made.code, 0, made.stderr);
    const carol = await loginAt('127.0.0.1', cadence!.c2sPort, 'cadence2.example', 'carol', PASS);
    clients.push(carol);
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'from cadence')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'from cadence', 30000);
    await carol.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'from cadence2')));
    const got = await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'from cadence2', 30000);
    assert.equal(got.attrs.from?.toString().split('/')[0], 'carol@cadence2.example');
    await cadence!.waitForOutput(/s2s stream cadence\.example → ejabberd\.example: cadence2\.example authenticated over it \(dialback multiplexing\)/);
    assert.doesNotMatch(cadence!.output, /s2s stream cadence2\.example → ejabberd\.example established/);
  });

  it('refuses a ejabberd whose certificate names another domain under s2sSecureAuth', async () => {
    const wrong = pki.issue({ cn: 'wrong.test', dns: ['wrong.test'] });
    const { alice } = await startBoth({ s2sCaFile: pki.root.certFile, s2sSecureAuth: true }, { trustCa: false, cert: wrong });
    await alice.send(xml('message', { to: 'bob@ejabberd.example', id: 'w1', type: 'chat' }, xml('body', {}, 'not for a wrong certificate')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'w1' && s.attrs.type === 'error', 40000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-timeout');
    await cadence!.waitForOutput(/ejabberd\.example did not present a valid certificate \(certificate not valid for ejabberd\.example/);
  });
});
