// The queue of an outgoing s2s route while the remote server is down (doc/federation.md): the
// route tries to connect again with a growing pause until s2sQueueTimeout, so a message sent while
// the remote is down is delivered when it comes back in time, and bounced with
// remote-server-timeout (from the addressee, once) when it does not.
import assert from 'node:assert/strict';
import { stanzaErrorCondition, xml } from '../helpers/client.ts';
import { federationFixture, listenerPort } from '../helpers/s2s.ts';

const PASS = 's2s-queue-pass';

describe('s2s: messages queued while the remote server is down', function () {
  this.timeout(90000);
  const fx = federationFixture(PASS);
  const { start, user } = fx;

  it('delivers a message sent while the remote was down once it is back within s2sQueueTimeout', async () => {
    const a = await start('a.test', { s2sQueueTimeout: 60 }, { alice: PASS });
    const down = await start('b.test', {}, { bob: PASS });
    // Not cached (TTL 0), so a's next attempt finds the port b.test comes back on.
    fx.dns.set('_xmpp-server._tcp.b.test', [{ type: 'SRV', priority: 0, weight: 0, port: listenerPort(down, 's2s'), target: 'b.test', ttl: 0 }]);
    const alice = await user(a, 'alice');
    await down.stop(); // its SRV record stays: connections are refused
    await alice.send(xml('message', { to: 'bob@b.test', id: 'late1', type: 'chat' }, xml('body', {}, 'sent while you were down')));
    await a.waitForOutput(/cannot connect to b\.test: .*; trying again in \d+ s \(1 stanzas waiting\)/, 20000);
    // b.test comes back (on a new port, published in its SRV record) and bob logs in.
    const b = await start('b.test', {}, { bob: PASS });
    await a.waitForOutput(/s2s stream a\.test → b\.test established/, 40000);
    const bob = await user(b, 'bob');
    const msg = await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'sent while you were down', 20000);
    assert.equal(msg.attrs.from?.toString().split('/')[0], 'alice@a.test');
    await alice.expectNothing((s) => s.name === 'message' && s.attrs.type === 'error', 500);
  });

  it('bounces it with remote-server-timeout when the remote is still down at s2sQueueTimeout, after trying again', async () => {
    const a = await start('a.test', { s2sQueueTimeout: 4 }, { alice: PASS });
    const down = await start('b.test', {}, { bob: PASS });
    const alice = await user(a, 'alice');
    await down.stop();
    await alice.send(xml('message', { to: 'bob@b.test', id: 'gone1', type: 'chat' }, xml('body', {}, 'anyone?')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'gone1' && s.attrs.type === 'error', 30000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-timeout');
    assert.equal(error.attrs.from, 'bob@b.test');
    assert.match(a.output, /cannot connect to b\.test: .*; trying again in 1 s/);
    await alice.expectNothing((s) => s.name === 'message' && s.attrs.id === 'gone1', 500);
  });

  it('remembers the failure for s2sFailureMemory: the next stanza bounces at once, without a new connection attempt', async () => {
    const a = await start('a.test', { s2sQueueTimeout: 2, s2sFailureMemory: 60 }, { alice: PASS });
    const down = await start('b.test', {}, { bob: PASS });
    const alice = await user(a, 'alice');
    await down.stop();
    await alice.send(xml('message', { to: 'bob@b.test', id: 'f1', type: 'chat' }, xml('body', {}, 'first')));
    const first = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'f1' && s.attrs.type === 'error', 30000);
    assert.equal(stanzaErrorCondition(first), 'remote-server-timeout');
    const mark = a.output.length;
    await alice.send(xml('message', { to: 'bob@b.test', id: 'f2', type: 'chat' }, xml('body', {}, 'second')));
    const second = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'f2' && s.attrs.type === 'error', 5000);
    assert.equal(stanzaErrorCondition(second), 'remote-server-timeout');
    assert.match(second.getChild('error')?.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas') ?? '', /not trying again yet/);
    assert.doesNotMatch(a.output.slice(mark), /cannot connect to b\.test/);
  });
});
