// Hostile server-to-server peers (doc/federation.md): a stream authenticated for one domain that
// sends stanzas from another is closed with invalid-from; a dialback key is confirmed once, for
// the stream it was issued on, and a replayed <db:verify/> is answered invalid (XEP-0220 §2.4,
// doc/federation.md "the replay guard"). Over a bidirectional stream (XEP-0288) an unsolicited
// <db:result type='valid'/> changes nothing, and a refused dialback for a further domain keeps
// that domain's stanzas off the stream.
import assert from 'node:assert/strict';
import net from 'node:net';
import { RawClient, login, streamErrorCondition, xml, type Element } from '../helpers/client.ts';
import { federationFixture, listenerPort, publish, rawPeer, rawPeerExternal, s2sHeader as HEADER } from '../helpers/s2s.ts';
import { S2sTestPki } from '../helpers/testca-s2s.ts';
import { XmppStreamParser } from '../../core/util/stream-parser.ts';

const PASS = 'hostile-pass';

describe('s2s: hostile peers', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);

  it('closes a stream authenticated (SASL EXTERNAL) for evil.test that forges a from of a.test: invalid-from', async () => {
    const pki = S2sTestPki.create();
    const evil = pki.issue({ cn: 'evil.test', dns: ['evil.test'] });
    const server = await fx.start('b.test', { s2sCaFile: pki.root.certFile }, { bob: PASS });
    const bob = await login(server, 'bob', PASS, { presence: true });
    fx.after(() => void bob.stop());

    const { peer, plainFeatures: plain, features } = await rawPeer(fx, server, evil, 'evil.test', 'b.test');
    assert.ok(plain.getChild('starttls')?.getChild('required'), 'STARTTLS is required');
    assert.deepEqual(features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.text()), ['EXTERNAL']);
    await rawPeerExternal(peer, 'evil.test', 'b.test');

    // Its own domain: delivered.
    peer.write(`<message from='mallory@evil.test' to='bob@b.test' type='chat'><body>from evil</body></message>`);
    await bob.expect((s) => s.name === 'message' && s.attrs.from === 'mallory@evil.test' && s.getChildText('body') === 'from evil', 15000);
    // Another domain's address: the stream ends, nothing is delivered.
    peer.write(`<message from='alice@a.test' to='bob@b.test' type='chat'><body>forged</body></message>`);
    const error = await peer.expect((el) => el.name === 'stream:error', 15000);
    assert.equal(streamErrorCondition(error), 'invalid-from');
    await peer.waitClosed();
    await bob.expectNothing((s) => s.name === 'message' && s.getChildText('body') === 'forged', 500);
  });

  it('bidi (XEP-0288): carries our stanzas to the authenticated peer over its stream, and ignores an unsolicited <db:result type=valid/>', async () => {
    const pki = S2sTestPki.create();
    const evil = pki.issue({ cn: 'evil.test', dns: ['evil.test'] });
    const server = await fx.start('b.test', { s2sCaFile: pki.root.certFile }, { bob: PASS });
    const bob = await login(server, 'bob', PASS, { presence: true });
    fx.after(() => void bob.stop());

    const { peer, features } = await rawPeer(fx, server, evil, 'evil.test', 'b.test');
    assert.ok(features.getChild('bidi', 'urn:xmpp:features:bidi'), 'bidi offered after TLS');
    await rawPeerExternal(peer, 'evil.test', 'b.test', { bidi: true });
    // The peer claims that b.test authenticated other.test over this stream: it did not ask (§4).
    peer.write(`<db:result from='other.test' to='b.test' type='valid'/>`);
    peer.write(`<message from='mallory@evil.test' to='bob@b.test' type='chat'><body>hi bob</body></message>`);
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'hi bob', 15000);

    // bob's answer to evil.test travels back on the peer's own stream (no connection of b.test's own).
    await bob.send(xml('message', { to: 'mallory@evil.test', type: 'chat' }, xml('body', {}, 'hi mallory')));
    const answer = await peer.expect((el) => el.name === 'message', 15000);
    assert.equal(answer.getChildText('body'), 'hi mallory');
    assert.equal(answer.attrs.to, 'mallory@evil.test');
    // Nothing for other.test goes to the peer: it bounces (other.test publishes no service).
    fx.dns.set('_xmpp-server._tcp.other.test', [{ type: 'SRV', priority: 0, weight: 0, port: 0, target: '.' }]);
    await bob.send(xml('message', { to: 'x@other.test', id: 'o1', type: 'chat' }, xml('body', {}, 'not for the peer')));
    await bob.expect((s) => s.name === 'message' && s.attrs.id === 'o1' && s.attrs.type === 'error', 15000);
    await peer.expectNothing((el) => el.name === 'message', 500);
    // The answer took the peer's stream: b.test has no outgoing stream of its own.
    const streams = (await server.cli(['shell', 's2s', 'list'])).stdout.split('\n').filter((l) => /^(in|out)\s/.test(l));
    assert.deepEqual(streams.map((l) => l.split(/\s+/).slice(0, 3).join(' ')), ['in b.test evil.test'], streams.join('\n'));
  });

  it('bidi: a peer that refuses our dialback for a further domain (the MUC) gets none of that domain\'s stanzas over its stream', async () => {
    const pki = S2sTestPki.create();
    const evil = pki.issue({ cn: 'evil.test', dns: ['evil.test'] });
    const server = await fx.start('b.test', { s2sCaFile: pki.root.certFile, components: { 'conference.b.test': { module: 'muc' } } }, { bob: PASS });
    const bob = await login(server, 'bob', PASS, { presence: true });
    fx.after(() => void bob.stop());
    const { peer } = await rawPeer(fx, server, evil, 'evil.test', 'b.test');
    await rawPeerExternal(peer, 'evil.test', 'b.test', { bidi: true });

    // bob's room invites mallory@evil.test: conference.b.test first asks to be authenticated.
    const room = 'den@conference.b.test';
    await bob.send(xml('presence', { to: `${room}/bob` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    await bob.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/bob`, 15000);
    await bob.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));
    await bob.send(xml('message', { to: room }, xml('x', { xmlns: 'http://jabber.org/protocol/muc#user' }, xml('invite', { to: 'mallory@evil.test' }))));
    const request = await peer.expect((el) => el.name === 'db:result', 15000);
    assert.equal(request.attrs.from, 'conference.b.test');
    assert.equal(request.attrs.to, 'evil.test');
    assert.ok(request.text().length > 0, 'a dialback key');
    peer.write(`<db:result from='evil.test' to='conference.b.test' type='invalid'/>`);
    await server.waitForOutput(/no dialback for conference\.b\.test → evil\.test: evil\.test did not accept conference\.b\.test \(invalid\)/, 15000);
    await peer.expectNothing((el) => el.name === 'message', 1000);
  });

  it('confirms a dialback key once, on the stream id it was issued for; a replayed <db:verify/> is invalid', async () => {
    const server = await fx.start('a.test', { s2sRequireEncryption: false }, { alice: PASS });
    // A fake b.test: it receives a.test's outgoing stream and its <db:result/> key.
    const key = new Promise<string>((resolve, reject) => {
      const fake = net.createServer((socket) => {
        const parser = new XmppStreamParser({ maxStanzaSize: 1 << 20, maxDepth: 50 });
        parser.on('streamStart', () => {
          socket.write(HEADER('b.test', 'a.test', " id='issued-stream-1'") + "<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>");
        });
        parser.on('stanza', (el: Element) => {
          if (el.name === 'db:result') resolve(el.text());
        });
        socket.on('data', (d) => parser.write(d));
        socket.on('error', () => undefined);
        fx.after(() => socket.destroy());
      });
      fake.listen(0, '127.0.0.1', () => publish(fx.dns, 'b.test', (fake.address() as net.AddressInfo).port));
      fake.on('error', reject);
      fx.after(() => fake.close());
    });
    const alice = await login(server, 'alice', PASS, { presence: true });
    fx.after(() => void alice.stop());
    await alice.send(xml('message', { to: 'bob@b.test', type: 'chat' }, xml('body', {}, 'hi')));
    const issued = await key;
    assert.match(issued, /^[0-9a-f]{64}$/);

    // The Authoritative Server's side: b.test asks a.test about the key.
    const peer = await RawClient.connect(listenerPort(server, 's2s'));
    fx.after(() => peer.close());
    peer.write(HEADER('b.test', 'a.test'));
    await peer.expect((el) => el.name === 'stream:features');
    const ask = (id: string, k: string) => {
      peer.write(`<db:verify from='b.test' to='a.test' id='${id}'>${k}</db:verify>`);
      return peer.expect((el) => el.name === 'db:verify' && el.attrs.id === id && el.attrs.type !== undefined, 15000);
    };
    // Another stream id with the same key: invalid (keys are bound to one stream).
    assert.equal((await ask('some-other-stream', issued)).attrs.type, 'invalid');
    const first = await ask('issued-stream-1', issued);
    assert.equal(first.attrs.type, 'valid');
    assert.equal(first.attrs.from, 'a.test');
    assert.equal(first.attrs.to, 'b.test');
    // The same question again: a replay.
    assert.equal((await ask('issued-stream-1', issued)).attrs.type, 'invalid');
    await server.waitForOutput(/dialback key .* \(stream issued-stream-1\) is replayed: answered invalid/);
  });
});
