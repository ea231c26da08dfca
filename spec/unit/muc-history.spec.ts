// MUC engine: discussion history on entering (XEP-0045 §7.2.13–7.2.14): delayed delivery stamps,
// the smallest set meeting maxchars / maxstanzas / seconds / since and muc#maxhistoryfetch.
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import { createRoom, groupchat, harness, join, message, presence, room, to, type Harness } from '../helpers/muc.ts';
import { at } from '../helpers/assert.ts';

const CRONE = 'crone@example.org/desktop';
const HAG = 'hag@example.org/pda';
const COVEN = room('coven');

/** A room with `n` messages, one a minute from 12:00; returns the harness. */
async function roomWithMessages(n: number, config: Record<string, string | boolean> = {}): Promise<Harness> {
  const h = harness();
  await createRoom(h, 'coven', CRONE, 'firstwitch', config);
  for (let i = 1; i <= n; i++) {
    await h.send(groupchat(CRONE, COVEN, `message ${i}`));
    h.clock.now += 60_000;
  }
  return h;
}

async function historyFor(h: Harness, attrs?: Record<string, string>): Promise<Element[]> {
  const out = await h.send(join(HAG, room('coven', 'thirdwitch'), attrs ? { history: attrs } : {}));
  return to(out, HAG).filter((e) => e.name === 'message' && e.getChild('body'));
}

const bodies = (els: Element[]) => els.map((e) => e.getChildText('body'));

describe('MUC: discussion history (§7.2.13, §7.2.14)', () => {
  it('stamps history with delay from the room, the original sender and id, and ofrom in non-anonymous rooms', async () => {
    const h = await roomWithMessages(0, { 'muc#roomconfig_whois': 'anyone' });
    await h.send(groupchat(CRONE, COVEN, 'Thrice the brinded cat hath mew\'d.', 'm1'));
    const m = at(await historyFor(h), 0);
    assert.equal(m.attrs.from, room('coven', 'firstwitch'));
    assert.equal(m.attrs.id, 'm1');
    assert.equal(m.attrs.type, 'groupchat');
    const delay = m.getChild('delay', 'urn:xmpp:delay');
    assert.equal(delay?.attrs.from, COVEN);
    assert.equal(delay?.attrs.stamp, '2026-01-01T12:00:00Z');
    const ofrom = m.getChild('addresses', 'http://jabber.org/protocol/address')?.getChild('address');
    assert.deepEqual(ofrom?.attrs, { type: 'ofrom', jid: CRONE });
    assert.equal(m.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.by, COVEN);
  });

  it('keeps the delay of history an owner brings from a one-to-one chat (§7.9)', async () => {
    const h = await roomWithMessages(0);
    const delay = new Element('delay', { xmlns: 'urn:xmpp:delay', from: CRONE, stamp: '2004-09-29T01:54:37Z' });
    await h.send(message(CRONE, COVEN, { type: 'groupchat', body: 'from the one-to-one chat', children: [delay] }));
    const m = at(await historyFor(h), 0);
    assert.deepEqual(m.getChildren('delay', 'urn:xmpp:delay').map((d) => d.attrs.stamp), ['2004-09-29T01:54:37Z']);
  });

  it('sends at most muc#maxhistoryfetch messages by default, none when it is 0', async () => {
    const h = await roomWithMessages(30);
    assert.deepEqual(bodies(await historyFor(h)), Array.from({ length: 20 }, (_, i) => `message ${i + 11}`));
    const h0 = await roomWithMessages(3, { 'muc#maxhistoryfetch': '0' });
    assert.deepEqual(await historyFor(h0), []);
  });

  it('maxstanzas: the last N, never more than the room allows', async () => {
    const h = await roomWithMessages(30, { 'muc#maxhistoryfetch': '10' });
    assert.deepEqual(bodies(await historyFor(h, { maxstanzas: '3' })), ['message 28', 'message 29', 'message 30']);
    await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable'));
    assert.equal((await historyFor(h, { maxstanzas: '50' })).length, 10);
  });

  it('maxchars counts complete stanzas as sent and never cuts one; 0 means no history', async () => {
    const h = await roomWithMessages(5);
    const all = await historyFor(h, { maxstanzas: '5' });
    const sizes = all.map((e) => e.toString().length);
    await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable'));
    assert.equal(sizes.length, 5);
    const lastThree = sizes.slice(-3).reduce((a, b) => a + b, 0);
    const budget = lastThree - 1; // room for two whole stanzas, not three
    const two = await historyFor(h, { maxchars: String(budget) });
    assert.deepEqual(bodies(two), ['message 4', 'message 5']);
    await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable'));
    const exact = await historyFor(h, { maxchars: String(lastThree) });
    assert.deepEqual(bodies(exact), ['message 3', 'message 4', 'message 5']);
    await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable'));
    assert.deepEqual(await historyFor(h, { maxchars: '0' }), []);
  });

  it('seconds and since select by arrival time; every given limit applies', async () => {
    const h = await roomWithMessages(10); // 12:00 … 12:09, now 12:10
    assert.deepEqual(bodies(await historyFor(h, { seconds: '180' })), ['message 8', 'message 9', 'message 10']);
    await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable'));
    assert.deepEqual(bodies(await historyFor(h, { since: '2026-01-01T12:07:30Z' })), ['message 9', 'message 10']);
    await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable'));
    assert.deepEqual(bodies(await historyFor(h, { since: '1970-01-01T00:00:00Z', seconds: '300', maxstanzas: '2' })), ['message 9', 'message 10']);
    await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable'));
    // Invalid values are ignored (the room limit still applies).
    assert.equal((await historyFor(h, { maxstanzas: 'lots', since: 'yesterday' })).length, 10);
  });

  it('keeps only messages worth replaying: no chat states, no subject changes, no no-store', async () => {
    const h = await roomWithMessages(1);
    const state = message(CRONE, COVEN, { type: 'groupchat', children: [new Element('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })] });
    const relayed = await h.send(state);
    assert.equal(relayed.length, 1, 'chat states are still reflected');
    assert.equal(at(relayed, 0).getChild('stanza-id', 'urn:xmpp:sid:0'), undefined, 'but get no stanza-id and are not archived');
    await h.send(message(CRONE, COVEN, { type: 'groupchat', subject: 'Spells' }));
    await h.send(message(CRONE, COVEN, { type: 'groupchat', body: 'secret', children: [new Element('no-store', { xmlns: 'urn:xmpp:hints' })] }));
    const out = await h.send(join(HAG, room('coven', 'thirdwitch')));
    const msgs = to(out, HAG).filter((e) => e.name === 'message');
    assert.deepEqual(msgs.map((e) => e.getChildText('body') ?? `subject:${e.getChildText('subject')}`), ['message 1', 'subject:Spells']);
    assert.equal(h.archived.length, 1, 'only the one message went to the archive hook');
  });
});
