// Our further domains share an established outgoing stream (XEP-0220 "Multiplexing Sender
// Domains"): when a second virtual host, or a MUC component, of a.test's server writes to b.test
// while the stream a.test → b.test is up, it authenticates with dialback on that stream instead of
// opening a connection of its own; b.test verifies the key with the new domain's Authoritative
// Server as for any dialback. Over a bidirectional stream (XEP-0288) b.test's answers to the new
// domain come back on the same stream.
import assert from 'node:assert/strict';
import net from 'node:net';
import { xml, type Element } from '../helpers/client.ts';
import { federationFixture, listenerPort, publish, s2sHeader } from '../helpers/s2s.ts';
import { XmppStreamParser } from '../../core/util/stream-parser.ts';
import type { TestServer } from '../helpers/server.ts';

const PASS = 's2s-multiplex-pass';
const NS_MUC = 'http://jabber.org/protocol/muc';

/** The lines of `s2s list` in one direction. */
async function streams(server: TestServer, direction: 'in' | 'out'): Promise<string[]> {
  const r = await server.cli(['shell', 's2s', 'list']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.startsWith(`${direction} `));
}

describe('s2s: further local domains multiplexed onto an outgoing stream (dialback)', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);

  it('a second virtual host writes to b.test over the stream a.test opened, after dialback for its pair on it', async () => {
    const a = await fx.start('a.test', { s2sBidi: false, virtualHosts: { 'a.test': {}, 'a2.test': {} } }, { alice: PASS });
    publish(fx.dns, 'a2.test', listenerPort(a, 's2s'));
    const made = await a.cli(['adduser', 'carol@a2.test'], `${PASS}\n`);
    assert.equal(made.code, 0, made.stderr);
    const b = await fx.start('b.test', { s2sBidi: false }, { bob: PASS });
    const alice = await fx.user(a, 'alice');
    const carol = await fx.user(a, 'carol', 'a2.test');
    const bob = await fx.user(b, 'bob');

    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'from a')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'from a', 20000);
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(dialback/);
    await carol.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'from a2')));
    const got = await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'from a2', 20000);
    assert.equal(got.attrs.from?.toString().split('/')[0], 'carol@a2.test');
    await a.waitForOutput(/s2s stream a\.test → b\.test: a2\.test authenticated over it \(dialback multiplexing\)/);
    await b.waitForOutput(/s2s stream from a2\.test to b\.test authenticated \(dialback/);
    await carol.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'again from a2')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'again from a2', 20000);
    // b.test asked a2.test (the Authoritative Server) about the key over a connection of its own,
    // and a2.test verified b.test's answer stream in turn: that verification connection closes.
    await a.waitForOutput(/s2s stream a2\.test → b\.test: dialback verification done; the stream a\.test → b\.test \(multiplexing\) carries the pair/);
    // One connection from a's server to b.test, carrying both domains; none of a2.test's own.
    assert.doesNotMatch(a.output, /s2s stream a2\.test → b\.test established/);
    const out = await streams(a, 'out');
    assert.equal(out.length, 1, out.join('\n'));
    assert.match(out[0]!, /^out\s+a\.test,a2\.test\s+b\.test\s+dialback/);
    const into = await streams(b, 'in');
    assert.equal(into.length, 1, into.join('\n'));
    assert.match(into[0]!, /^in\s+b\.test\s+a\.test,a2\.test\s+dialback/);
    // Answers to carol take b's own stream to a2.test (without bidi, each direction has its own).
    await bob.send(xml('message', { to: carol.jid, type: 'chat' }, xml('body', {}, 'to a2')));
    await carol.expect((s) => s.name === 'message' && s.getChildText('body') === 'to a2', 20000);
  });

  it("a MUC component's invitation travels over a.test's bidi stream, and b.test's answers to the room come back on it", async () => {
    const a = await fx.start('a.test', { components: { 'conference.a.test': { module: 'muc' } } }, { alice: PASS });
    publish(fx.dns, 'conference.a.test', listenerPort(a, 's2s'));
    const b = await fx.start('b.test', {}, { bob: PASS });
    const alice = await fx.user(a, 'alice');
    const bob = await fx.user(b, 'bob');

    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'hello')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'hello', 20000);
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(dialback, TLSv1\.3, bidi\)/);
    const room = 'den@conference.a.test';
    await alice.send(xml('presence', { to: `${room}/alice` }, xml('x', { xmlns: NS_MUC })));
    await alice.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/alice`, 15000);
    await alice.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: `${NS_MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));
    // The room's first stanza to b.test: a mediated invitation (XEP-0045 §7.8.2).
    await alice.send(xml('message', { to: room }, xml('x', { xmlns: `${NS_MUC}#user` }, xml('invite', { to: bob.bare }))));
    await bob.expect((s) => s.name === 'message' && s.attrs.from === room && s.getChild('x', `${NS_MUC}#user`)?.getChild('invite') !== undefined, 20000);
    await a.waitForOutput(/s2s stream a\.test → b\.test: conference\.a\.test authenticated over it \(dialback multiplexing\)/);
    // bob joins: b.test sends to the room over the same bidi stream (the domain was authenticated on it).
    await bob.send(xml('presence', { to: `${room}/bob` }, xml('x', { xmlns: NS_MUC })));
    await bob.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/bob` && s.attrs.type === undefined, 20000);
    await alice.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/bob` && s.attrs.type === undefined, 20000);
    assert.doesNotMatch(a.output, /s2s stream conference\.a\.test → b\.test established/);
    assert.doesNotMatch(b.output, /s2s stream b\.test → conference\.a\.test established/);
    const out = await streams(a, 'out');
    assert.equal(out.length, 1, out.join('\n'));
    assert.match(out[0]!, /^out\s+a\.test,conference\.a\.test\s+b\.test\s+dialback.*bidi$/);
    const into = await streams(b, 'in');
    assert.equal(into.length, 1, into.join('\n'));
  });
});

/**
 * A hand-driven b.test: accepts every stream, advertises dialback (with `<errors/>` or not), answers
 * dialback requests — `invalid` on its first connection for the domains in `refuseOnFirst`.
 */
interface FakePeer {
  port: number;
  /** What arrived on each connection, in order: dialback requests as 'db:<from>', stanzas as 'stanza:<from>'. */
  connections: string[][];
  close(): void;
}

async function fakePeer(options: { dialbackErrors: boolean; refuseOnFirst: string[] }): Promise<FakePeer> {
  const connections: string[][] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    const seen: string[] = [];
    connections.push(seen);
    const parser = new XmppStreamParser({ maxStanzaSize: 1 << 20, maxDepth: 50 });
    parser.on('streamStart', (attrs: Record<string, string>) => {
      const errors = options.dialbackErrors ? '<errors/>' : '';
      socket.write(`${s2sHeader('b.test', attrs.from ?? '', ` id='fake-${connections.length}'`)}<stream:features><dialback xmlns='urn:xmpp:features:dialback'>${errors}</dialback></stream:features>`);
    });
    parser.on('stanza', (el: Element) => {
      if (el.name === 'db:result') {
        const from = el.attrs.from as string;
        seen.push(`db:${from}`);
        const refused = seen === connections[0] && options.refuseOnFirst.includes(from);
        socket.write(`<db:result from='b.test' to='${from}' type='${refused ? 'invalid' : 'valid'}'/>`);
      } else {
        seen.push(`${el.name}:${String(el.attrs.from).split('@')[1]?.split('/')[0]}`);
      }
    });
    socket.on('data', (d) => parser.write(d));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('s2s: multiplexing only where the peer supports it, and a refused domain gets its own stream', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);

  const setup = async (peer: FakePeer) => {
    fx.after(() => peer.close());
    const a = await fx.start('a.test', { s2sRequireEncryption: false, s2sBidi: false, virtualHosts: { 'a.test': {}, 'a2.test': {} } }, { alice: PASS });
    publish(fx.dns, 'b.test', peer.port);
    const made = await a.cli(['adduser', 'carol@a2.test'], `${PASS}\n`);
    assert.equal(made.code, 0, made.stderr);
    const alice = await fx.user(a, 'alice');
    const carol = await fx.user(a, 'carol', 'a2.test');
    await alice.send(xml('message', { to: 'bob@b.test', type: 'chat' }, xml('body', {}, 'from a')));
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(dialback/);
    await carol.send(xml('message', { to: 'bob@b.test', type: 'chat' }, xml('body', {}, 'from a2')));
    return a;
  };

  it('a peer without dialback error handling (no <errors/>): the further domain opens a stream of its own', async () => {
    const peer = await fakePeer({ dialbackErrors: false, refuseOnFirst: [] });
    const a = await setup(peer);
    await a.waitForOutput(/s2s stream a2\.test → b\.test established \(dialback/);
    assert.deepEqual(peer.connections, [['db:a.test', 'message:a.test'], ['db:a2.test', 'message:a2.test']]);
    assert.doesNotMatch(a.output, /multiplexing/);
  });

  it('a peer that refuses the further domain on the shared stream: its stanzas take a stream of their own', async () => {
    const peer = await fakePeer({ dialbackErrors: true, refuseOnFirst: ['a2.test'] });
    const a = await setup(peer);
    await a.waitForOutput(/s2s stream a\.test → b\.test: no multiplexing for a2\.test: b\.test answered our dialback for a2\.test with invalid; it opens a stream of its own/);
    await a.waitForOutput(/s2s stream a2\.test → b\.test established \(dialback/);
    // The refused request went on the shared stream; the message, on a2.test's own stream after its dialback.
    assert.deepEqual(peer.connections[0]?.slice(0, 3), ['db:a.test', 'message:a.test', 'db:a2.test']);
    assert.deepEqual(peer.connections[1], ['db:a2.test', 'message:a2.test']);
  });
});
