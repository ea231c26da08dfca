// Federation between two Cadence servers (RFC 6120 s2s, doc/federation.md): a.test and b.test on
// 127.0.0.1, each found by the other through SRV records on a loopback DNS server. With their
// self-signed certificates they authenticate with dialback (XEP-0220); with certificates from a
// test CA both trust, with SASL EXTERNAL (XEP-0178). Users subscribe to each other across the
// servers, see presence and exchange messages both ways.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stanzaErrorCondition, xml } from '../helpers/client.ts';
import { federate, federationFixture, listenerPort, publish } from '../helpers/s2s.ts';
import { S2sTestPki } from '../helpers/testca-s2s.ts';

const PASS = 's2s-pass';
describe('s2s: two Cadence servers federating', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);
  const { start, user } = fx;

  // Without XEP-0288 (s2sBidi: false) each direction has its own stream; bidi: s2s-bidi.spec.ts.
  it('authenticates with dialback when certificates prove nothing, and carries messages, subscriptions and presence both ways; s2s list and s2s close', async () => {
    const a = await start('a.test', { s2sBidi: false }, { alice: PASS });
    const b = await start('b.test', { s2sBidi: false }, { bob: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await federate(alice, bob);
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(dialback, TLSv1\.3/);
    await b.waitForOutput(/s2s stream b\.test → a\.test established \(dialback, TLSv1\.3/);
    await b.waitForOutput(/s2s stream from a\.test to b\.test authenticated \(dialback/);
    const list = await a.cli(['shell', 's2s', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /out\s+a\.test\s+b\.test\s+dialback\s+TLSv1\.3/);
    assert.match(list.stdout, /in\s+a\.test\s+b\.test\s+dialback\s+TLSv1\.3/);
    const closed = await a.cli(['shell', 's2s', 'close', 'b.test']);
    assert.equal(closed.code, 0, closed.stderr);
    assert.match(closed.stdout, /closed 2 streams with b\.test/);
    await a.waitForOutput(/s2s stream a\.test → b\.test closed \(closed by the operator\)/);
  });

  it('authenticates with SASL EXTERNAL when both present certificates from a trusted CA', async () => {
    const pki = S2sTestPki.create();
    const certA = pki.issue({ cn: 'a.test', dns: ['a.test'], xmppAddrs: ['a.test'] });
    const certB = pki.issue({ cn: 'b.test', dns: ['b.test'], srvNames: ['_xmpp-server.b.test'] });
    const common = { s2sCaFile: pki.root.certFile, s2sSecureAuth: true, s2sBidi: false };
    const a = await start('a.test', { ...common, tls: { certificate: certA.certFile, key: certA.keyFile } }, { alice: PASS });
    const b = await start('b.test', { ...common, tls: { certificate: certB.certFile, key: certB.keyFile } }, { bob: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await federate(alice, bob);
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(EXTERNAL/);
    await b.waitForOutput(/s2s stream b\.test → a\.test established \(EXTERNAL/);
    await a.waitForOutput(/s2s stream from b\.test to a\.test authenticated \(EXTERNAL/);
  });

  it('refuses a peer whose certificate is for another name when s2sSecureAuth is on: the message bounces', async () => {
    const pki = S2sTestPki.create();
    const certA = pki.issue({ cn: 'a.test', dns: ['a.test'] });
    const wrong = pki.issue({ cn: 'wrong.test', dns: ['wrong.test'] });
    const a = await start('a.test', { s2sCaFile: pki.root.certFile, s2sSecureAuth: true, tls: { certificate: certA.certFile, key: certA.keyFile } }, { alice: PASS });
    const b = await start('b.test', { s2sCaFile: pki.root.certFile, tls: { certificate: wrong.certFile, key: wrong.keyFile } }, { bob: PASS });
    const alice = await user(a, 'alice');
    await user(b, 'bob');
    await alice.send(xml('message', { to: 'bob@b.test', id: 'm1', type: 'chat' }, xml('body', {}, 'secret')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'm1' && s.attrs.type === 'error', 15000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-timeout');
    await a.waitForOutput(/did not present a valid certificate \(certificate not valid for b\.test/);
    assert.doesNotMatch(b.output, /authenticated \(dialback/);
  });

  it('re-reads s2sCaFile on a config reload: a CA replaced at the same path is trusted from then on', async () => {
    const pki = S2sTestPki.create();
    const unrelated = S2sTestPki.create();
    const certA = pki.issue({ cn: 'a.test', dns: ['a.test'] });
    const certB = pki.issue({ cn: 'b.test', dns: ['b.test'] });
    const dir = mkdtempSync(path.join(tmpdir(), 'cadence-s2s-ca-'));
    fx.after(() => rmSync(dir, { recursive: true, force: true }));
    const caFile = path.join(dir, 'ca.pem');
    copyFileSync(unrelated.root.certFile, caFile);
    const a = await start('a.test', { s2sCaFile: caFile, s2sSecureAuth: true, s2sFailureMemory: 0, tls: { certificate: certA.certFile, key: certA.keyFile } }, { alice: PASS });
    const b = await start('b.test', { s2sCaFile: pki.root.certFile, tls: { certificate: certB.certFile, key: certB.keyFile } }, { bob: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await bob.send(xml('presence'));
    await alice.send(xml('message', { to: 'bob@b.test', id: 'before', type: 'chat' }, xml('body', {}, 'not yet')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'before' && s.attrs.type === 'error', 15000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-timeout');

    copyFileSync(pki.root.certFile, caFile); // the operator puts the right CA in place
    const reload = await a.cli(['shell', 'config', 'reload']);
    assert.equal(reload.code, 0, reload.stderr);
    await alice.send(xml('message', { to: 'bob@b.test', id: 'after', type: 'chat' }, xml('body', {}, 'now trusted')));
    await bob.expect((s) => s.name === 'message' && s.attrs.id === 'after', 15000);
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(EXTERNAL/);
  });

  it('connects with direct TLS (XEP-0368) to a peer that publishes only _xmpps-server', async () => {
    const a = await start('a.test', {}, { alice: PASS });
    const b = await start('b.test', { s2sDirectTlsPorts: [0] }, { bob: PASS }, { publish: false });
    publish(fx.dns, 'b.test', listenerPort(b, 's2s_direct_tls'), true);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await alice.send(xml('message', { to: bob.bare, type: 'chat' }, xml('body', {}, 'over direct TLS')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'over direct TLS', 15000);
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(dialback, TLSv1\.3, direct TLS, bidi\)/);
  });

  it('closes idle streams (s2sIdleTimeout) and opens a new one for the next stanza', async () => {
    const a = await start('a.test', { s2sIdleTimeout: 1 }, { alice: PASS });
    const b = await start('b.test', {}, { bob: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await alice.send(xml('message', { to: bob.bare, type: 'chat' }, xml('body', {}, 'first')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'first', 15000);
    await a.waitForOutput(/s2s stream a\.test → b\.test closed \(idle\)/, 15000);
    const mark = a.output.length;
    await alice.send(xml('message', { to: bob.bare, type: 'chat' }, xml('body', {}, 'second')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'second', 15000);
    await a.waitForOutput(/s2s stream a\.test → b\.test established/, 15000, mark);
  });

  it('bounces a queued message with remote-server-timeout when the remote server is down', async () => {
    const a = await start('a.test', { s2sQueueTimeout: 2 }, { alice: PASS });
    const b = await start('b.test', {}, { bob: PASS });
    const alice = await user(a, 'alice');
    await b.stop(); // its SRV record stays: connections are refused
    await alice.send(xml('message', { to: 'bob@b.test', id: 'q1', type: 'chat' }, xml('body', {}, 'anyone?')));
    await alice.send(xml('message', { to: 'bob@b.test', id: 'q2', type: 'chat' }, xml('body', {}, 'hello?')));
    for (const id of ['q1', 'q2']) {
      const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === id && s.attrs.type === 'error', 40000);
      assert.equal(stanzaErrorCondition(error), 'remote-server-timeout');
      assert.equal(error.attrs.from, 'bob@b.test');
    }
  });

  it('bounces with remote-server-not-found when the domain publishes no s2s service', async () => {
    const a = await start('a.test', {}, { alice: PASS });
    fx.dns.set('_xmpp-server._tcp.nowhere.test', [{ type: 'SRV', priority: 0, weight: 0, port: 0, target: '.' }]);
    const alice = await user(a, 'alice');
    await alice.send(xml('message', { to: 'x@nowhere.test', id: 'n1', type: 'chat' }, xml('body', {}, 'hi')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'n1' && s.attrs.type === 'error', 15000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-not-found');
  });
});
