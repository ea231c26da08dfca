// Bidirectional server-to-server streams (XEP-0288) between two Cadence servers: the stream the
// first stanza opened carries the replies too, so only one connection exists between the servers
// (with SASL EXTERNAL), or one once the dialback verification connection is done (dialback).
// A further domain of the receiving server (its MUC component) authenticates with dialback over
// the bidi stream (XEP-0288 §2.2) and its stanzas travel on it.
import assert from 'node:assert/strict';
import { xml, type TestClient } from '../helpers/client.ts';
import { federate, federationFixture, listenerPort, publish } from '../helpers/s2s.ts';
import { S2sTestPki } from '../helpers/testca-s2s.ts';
import type { TestServer } from '../helpers/server.ts';

const PASS = 's2s-bidi-pass';

describe('s2s: bidirectional streams (XEP-0288) between two Cadence servers', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);
  const { start, user } = fx;
  const list = async (server: TestServer) => {
    const r = await server.cli(['shell', 's2s', 'list']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => /^(in|out)\s/.test(l));
  };
  const chat = async (from: TestClient, to: TestClient, body: string) => {
    await from.send(xml('message', { to: to.jid, type: 'chat' }, xml('body', {}, body)));
    await to.expect((s) => s.name === 'message' && s.getChildText('body') === body, 15000);
  };

  it('with SASL EXTERNAL: one connection carries messages, subscriptions and presence both ways', async () => {
    const pki = S2sTestPki.create();
    const certA = pki.issue({ cn: 'a.test', dns: ['a.test'] });
    const certB = pki.issue({ cn: 'b.test', dns: ['b.test'] });
    const common = { s2sCaFile: pki.root.certFile, s2sSecureAuth: true };
    const a = await start('a.test', { ...common, tls: { certificate: certA.certFile, key: certA.keyFile } }, { alice: PASS });
    const b = await start('b.test', { ...common, tls: { certificate: certB.certFile, key: certB.keyFile } }, { bob: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await federate(alice, bob);
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(EXTERNAL, TLSv1\.3, bidi\)/);
    await b.waitForOutput(/s2s stream from a\.test to b\.test authenticated \(EXTERNAL, TLSv1\.3, bidi\)/);
    // b never connected to a: its replies went over a's stream (one stream on each side, below).
    assert.doesNotMatch(a.output, /s2s stream from b\.test to a\.test authenticated/);
    const onA = await list(a);
    assert.equal(onA.length, 1, onA.join('\n'));
    assert.match(onA[0]!, /^out\s+a\.test\s+b\.test\s+EXTERNAL\s+TLSv1\.3\s+\d+s\s+ready\s+queued 0\s+bidi$/);
    const onB = await list(b);
    assert.equal(onB.length, 1, onB.join('\n'));
    assert.match(onB[0]!, /^in\s+b\.test\s+a\.test\s+EXTERNAL\s+TLSv1\.3\s+\d+s\s+ready\s+bidi$/);
  });

  it('with dialback: the verification connection closes and the bidi stream carries both ways', async () => {
    const a = await start('a.test', {}, { alice: PASS });
    const b = await start('b.test', {}, { bob: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await chat(alice, bob, 'hello over bidi');
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(dialback, TLSv1\.3, bidi\)/);
    await b.waitForOutput(/s2s stream b\.test → a\.test: dialback verification done; a bidirectional stream carries the pair/);
    await chat(bob, alice, 'reply over the same stream');
    await chat(alice, bob, 'and again');
    await chat(bob, alice, 'and back');
    assert.doesNotMatch(b.output, /s2s stream b\.test → a\.test established/);
    const onB = await list(b);
    assert.equal(onB.length, 1, onB.join('\n'));
    assert.match(onB[0]!, /^in\s+b\.test\s+a\.test\s+dialback\s+TLSv1\.3\s+\d+s\s+ready\s+bidi$/);
  });

  it('without s2sBidi on the initiating side, each direction opens its own stream', async () => {
    const a = await start('a.test', { s2sBidi: false }, { alice: PASS });
    const b = await start('b.test', {}, { bob: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await chat(alice, bob, 'one way');
    await chat(bob, alice, 'other way');
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(dialback, TLSv1\.3\)/);
    await b.waitForOutput(/s2s stream b\.test → a\.test established \(dialback, TLSv1\.3\)/);
    assert.doesNotMatch(b.output, /, bidi\)/);
  });

  it('authenticates a further domain of the receiving server (its MUC) with dialback over the bidi stream', async () => {
    const a = await start('a.test', { components: { 'conference.a.test': { module: 'muc' } } }, { alice: PASS });
    const b = await start('b.test', {}, { bob: PASS });
    publish(fx.dns, 'conference.a.test', listenerPort(a, 's2s'));
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    // bob@b.test → a.test opens b's bidi stream to a; then the room's stanzas to bob may use it.
    await chat(bob, alice, 'first from b');
    await b.waitForOutput(/s2s stream b\.test → a\.test established \(dialback, TLSv1\.3, bidi\)/);
    await alice.send(xml('presence', { to: 'room@conference.a.test/alice' }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    await alice.expect((s) => s.name === 'presence' && s.attrs.from === 'room@conference.a.test/alice', 15000);
    // An instant room (XEP-0045 §10.1.2): the owner accepts the default configuration.
    await alice.iq(xml('iq', { type: 'set', to: 'room@conference.a.test' }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'come in')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'come in', 15000);
    await bob.send(xml('presence', { to: 'room@conference.a.test/bob' }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    await bob.expect((s) => s.name === 'presence' && s.attrs.from === 'room@conference.a.test/alice', 15000);
    await bob.expect((s) => s.name === 'presence' && s.attrs.from === 'room@conference.a.test/bob', 15000);
    await a.waitForOutput(/conference\.a\.test authenticated to send to b\.test over it \(dialback, bidi\)/);
    await b.waitForOutput(/conference\.a\.test authenticated to send over it \(dialback, bidi\)/);
    await alice.send(xml('message', { to: 'room@conference.a.test', type: 'groupchat' }, xml('body', {}, 'hi room')));
    await bob.expect((s) => s.name === 'message' && s.attrs.type === 'groupchat' && s.attrs.from === 'room@conference.a.test/alice' && s.getChildText('body') === 'hi room', 15000);
    await bob.send(xml('message', { to: 'room@conference.a.test', type: 'groupchat' }, xml('body', {}, 'hi from b')));
    await alice.expect((s) => s.name === 'message' && s.attrs.type === 'groupchat' && s.attrs.from === 'room@conference.a.test/bob' && s.getChildText('body') === 'hi from b', 15000);
  });
});
