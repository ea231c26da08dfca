// MUC and component traffic across servers: bob@b.test joins a room of a.test's conference
// component (occupants' presence and groupchat both ways), and an external component of a.test
// (XEP-0114) exchanges messages with bob@b.test. With s2sBidi off each direction has its own
// stream (from and to the component's domain); the bidi case is in s2s-bidi.spec.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DEFAULTS } from '../../core/config.ts';
import { RawClient, xml } from '../helpers/client.ts';
import { federationFixture, listenerPort, publish } from '../helpers/s2s.ts';

const PASS = 's2s-muc-pass';
const SECRET = 'gw-secret';
const NS_MUC = 'http://jabber.org/protocol/muc';

describe('s2s: MUC and component traffic between two Cadence servers', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);
  const { start, user } = fx;

  it('a user of b.test joins a room on a.test: occupants\' presence and groupchat both ways', async () => {
    const a = await start('a.test', { s2sBidi: false, components: { 'conference.a.test': { module: 'muc' } } }, { alice: PASS });
    const b = await start('b.test', { s2sBidi: false }, { bob: PASS });
    publish(fx.dns, 'conference.a.test', listenerPort(a, 's2s'));
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const room = 'lobby@conference.a.test';
    await alice.send(xml('presence', { to: `${room}/alice` }, xml('x', { xmlns: NS_MUC })));
    await alice.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/alice`, 15000);
    await alice.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: `${NS_MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));

    await bob.send(xml('presence', { to: `${room}/bob` }, xml('x', { xmlns: NS_MUC })));
    await bob.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/alice` && s.attrs.type === undefined, 15000);
    const self = await bob.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/bob` && s.attrs.type === undefined, 15000);
    const statuses = self.getChild('x', `${NS_MUC}#user`)?.getChildren('status').map((st) => st.attrs.code);
    assert.ok(statuses?.includes('110'), 'self-presence carries status 110');
    await alice.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/bob` && s.attrs.type === undefined, 15000);

    await alice.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'welcome, bob')));
    await bob.expect((s) => s.name === 'message' && s.attrs.type === 'groupchat' && s.attrs.from === `${room}/alice` && s.getChildText('body') === 'welcome, bob', 15000);
    await bob.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'thanks, alice')));
    await alice.expect((s) => s.name === 'message' && s.attrs.type === 'groupchat' && s.attrs.from === `${room}/bob` && s.getChildText('body') === 'thanks, alice', 15000);
    await bob.expect((s) => s.name === 'message' && s.attrs.type === 'groupchat' && s.attrs.from === `${room}/bob` && s.getChildText('body') === 'thanks, alice', 15000);

    await bob.send(xml('presence', { to: `${room}/bob`, type: 'unavailable' }));
    await alice.expect((s) => s.name === 'presence' && s.attrs.from === `${room}/bob` && s.attrs.type === 'unavailable', 15000);
    await a.waitForOutput(/s2s stream conference\.a\.test → b\.test established/);
    await b.waitForOutput(/s2s stream b\.test → conference\.a\.test established/);
  });

  it('an external component of a.test (XEP-0114) exchanges messages with a user of b.test', async () => {
    const a = await start('a.test', {
      modulesEnabled: [...DEFAULTS.modulesEnabled, 's2s', 'component'],
      componentPorts: [0],
      components: { 'gw.a.test': { secret: SECRET } },
    }, {});
    const b = await start('b.test', {}, { bob: PASS });
    publish(fx.dns, 'gw.a.test', listenerPort(a, 's2s'));
    const gw = await RawClient.connect(a.componentPort);
    fx.after(() => gw.close());
    gw.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='gw.a.test'>`);
    const header = await gw.expectHeader();
    gw.write(`<handshake>${createHash('sha1').update(header.id + SECRET).digest('hex')}</handshake>`);
    await gw.expect((el) => el.name === 'handshake');
    const bob = await user(b, 'bob');

    gw.write(`<message from='bot@gw.a.test/x' to='${bob.jid}' type='chat' id='g1'><body>from the gateway</body></message>`);
    await bob.expect((s) => s.name === 'message' && s.attrs.from === 'bot@gw.a.test/x' && s.getChildText('body') === 'from the gateway', 15000);
    await bob.send(xml('message', { to: 'bot@gw.a.test/x', type: 'chat', id: 'g2' }, xml('body', {}, 'to the gateway')));
    const got = await gw.expect((el) => el.name === 'message' && el.attrs.id === 'g2', 15000);
    assert.equal(got.getChildText('body'), 'to the gateway');
    assert.equal(got.attrs.from, bob.jid);
    await a.waitForOutput(/s2s stream gw\.a\.test → b\.test established/);
  });
});
