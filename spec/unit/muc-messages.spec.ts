// MUC engine: messages to all occupants (XEP-0045 §7.4) with stanza-ids (XEP-0359) and occupant
// ids (XEP-0421), private messages (§7.5), the subject (§8.1), invitations (§7.8.2), iq to
// occupants and self-ping (§17.4, XEP-0410), and message moderation (XEP-0425).
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import {
  adminSet, assertError, codes, configure, createRoom, groupchat, harness, iq, join, message, only, presence, room, selfPresence, to, userX,
} from '../helpers/muc.ts';
import { at } from '../helpers/assert.ts';

const CRONE = 'crone@example.org/desktop';
const WICCA = 'wicca@example.org/laptop';
const HAG = 'hag@example.org/pda';
const COVEN = room('coven');

async function coven(config: Record<string, string | boolean> = {}) {
  const h = harness();
  await createRoom(h, 'coven', CRONE, 'firstwitch', config);
  await h.send(join(WICCA, room('coven', 'secondwitch')));
  await h.send(join(HAG, room('coven', 'thirdwitch')));
  return h;
}

const occupantIdOf = (e: Element) => e.getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id as string | undefined;

describe('MUC: messages to all occupants (§7.4)', () => {
  it('reflects to every occupant from the occupant JID with the client id, one stanza-id by the room and an occupant-id', async () => {
    const h = await coven();
    const forgedSid = new Element('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: 'fake', by: COVEN });
    const otherSid = new Element('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: 'x', by: 'hag@example.org' });
    const forgedOid = new Element('occupant-id', { xmlns: 'urn:xmpp:occupant-id:0', id: 'someone-else' });
    const origin = new Element('origin-id', { xmlns: 'urn:xmpp:sid:0', id: 'o1' });
    const out = await h.send(message(HAG, COVEN, { type: 'groupchat', body: 'Harpier cries', id: 'hysf1v37', children: [forgedSid, otherSid, forgedOid, origin] }));
    assert.deepEqual(out.map((e) => e.attrs.to).sort(), [CRONE, HAG, WICCA].sort());
    for (const m of out) {
      assert.equal(m.attrs.from, room('coven', 'thirdwitch'));
      assert.equal(m.attrs.id, 'hysf1v37');
      assert.equal(m.attrs.type, 'groupchat');
      const sids = m.getChildren('stanza-id', 'urn:xmpp:sid:0');
      assert.deepEqual(sids.map((s) => s.attrs.by).sort(), [COVEN, 'hag@example.org'].sort(), 'ours replaced, others kept');
      assert.notEqual(sids.find((s) => s.attrs.by === COVEN)?.attrs.id, 'fake');
      assert.equal(m.getChildren('occupant-id', 'urn:xmpp:occupant-id:0').length, 1);
      assert.notEqual(occupantIdOf(m), 'someone-else');
      assert.equal(m.getChild('origin-id', 'urn:xmpp:sid:0')?.attrs.id, 'o1', 'origin-id preserved');
    }
    assert.equal(h.archived.length, 1);
    assert.equal(at(h.archived, 0).stanzaId, at(out, 0).getChildren('stanza-id').find((s) => s.attrs.by === COVEN)?.attrs.id);
    assert.equal(at(h.archived, 0).senderJid, HAG);
    // A message without id gets one, the same for every copy.
    const noId = await h.send(groupchat(HAG, COVEN, 'again'));
    assert.equal(new Set(noId.map((m) => m.attrs.id)).size, 1);
    assert.ok(at(noId, 0).attrs.id);
  });

  it('gives each user a stable occupant id per room, different between users and rooms (XEP-0421)', async () => {
    const h = await coven();
    const a = occupantIdOf(at(await h.send(groupchat(HAG, COVEN, 'one')), 0));
    await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable'));
    await h.send(join('hag@example.org/other', room('coven', 'renamed')));
    const b = occupantIdOf(at(await h.send(groupchat('hag@example.org/other', COVEN, 'two')), 0));
    assert.equal(a, b, 'same bare JID, same id, whatever the nick or resource');
    const c = occupantIdOf(at(await h.send(groupchat(WICCA, COVEN, 'three')), 0));
    assert.notEqual(a, c);
    assert.ok(a && a.length <= 128 && !a.includes('hag'));
    await createRoom(h, 'heath', 'hag@example.org/other', 'x');
    const d = occupantIdOf(at(await h.send(groupchat('hag@example.org/other', room('heath'), 'four')), 0));
    assert.notEqual(d, a, 'another room, another id');
  });

  it('refuses visitors (forbidden), non-occupants (not-acceptable) and rooms that do not exist (item-not-found)', async () => {
    const h = await coven({ 'muc#roomconfig_moderatedroom': true });
    assertError(await h.send(groupchat(HAG, COVEN, 'hi')), HAG, 'forbidden', 'auth');
    assertError(await h.send(groupchat('stranger@example.org/x', COVEN, 'hi')), 'stranger@example.org/x', 'not-acceptable');
    assertError(await h.send(groupchat(HAG, room('heath'), 'hi')), HAG, 'item-not-found', 'cancel');
    assertError(await h.send(message(HAG, COVEN, { type: 'chat', body: 'hi' })), HAG, 'bad-request', 'modify');
  });
});

describe('MUC: the subject (§8.1, §7.2.15)', () => {
  it('lets moderators change it, participants only with muc#roomconfig_changesubject, and shows it on entry with delay', async () => {
    const h = await coven({ 'muc#roomconfig_persistentroom': true });
    assertError(await h.send(message(HAG, COVEN, { type: 'groupchat', subject: 'Mine' })), HAG, 'forbidden', 'auth');
    // A participant may not either by default.
    assertError(await h.send(message(WICCA, COVEN, { type: 'groupchat', subject: 'Fire Burn and Cauldron Bubble!' })), WICCA, 'forbidden');
    const ok = await h.send(message(CRONE, COVEN, { type: 'groupchat', subject: 'Fire Burn and Cauldron Bubble!', id: 's1' }));
    assert.equal(ok.length, 3);
    assert.equal(at(ok, 0).attrs.from, room('coven', 'firstwitch'));
    assert.equal(h.stored.get(COVEN)?.subject?.text, 'Fire Burn and Cauldron Bubble!', 'stored before being broadcast');
    h.clock.now += 1000;
    const entered = await h.send(join('hecate@example.org/broom', room('coven', 'hecate')));
    const subject = to(entered, 'hecate@example.org/broom').at(-1)!;
    assert.equal(subject.getChildText('subject'), 'Fire Burn and Cauldron Bubble!');
    assert.equal(subject.attrs.from, room('coven', 'firstwitch'));
    assert.deepEqual(subject.getChild('delay', 'urn:xmpp:delay')?.attrs, { xmlns: 'urn:xmpp:delay', from: COVEN, stamp: '2026-01-01T12:00:00Z' });
    assert.equal(occupantIdOf(subject), occupantIdOf(at(ok, 0)), 'with the setter\'s occupant id (XEP-0421 §4)');
    // A message with subject and body is a message, not a subject change.
    await h.send(message(HAG, COVEN, { type: 'groupchat', subject: 'x', body: 'y' }));
    assert.equal(h.muc.room(COVEN)?.subject?.text, 'Fire Burn and Cauldron Bubble!');
    await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_changesubject': true }));
    assert.equal((await h.send(message(HAG, COVEN, { type: 'groupchat', subject: '' }))).length, 4, 'cleared by a participant');
  });
});

describe('MUC: private messages (§7.5)', () => {
  it('delivers to the occupant\'s real JID from the sender\'s occupant JID with <x xmlns=muc#user/>', async () => {
    const h = await coven();
    const out = await h.send(message(WICCA, room('coven', 'FirstWitch'), { type: 'chat', body: 'I\'ll give thee a wind.', id: 'hgn27af1' }));
    const m = only(out, CRONE);
    assert.equal(m.attrs.from, room('coven', 'secondwitch'));
    assert.equal(m.attrs.id, 'hgn27af1');
    assert.equal(m.attrs.type, 'chat');
    assert.ok(userX(m));
    assertError(await h.send(message(WICCA, room('coven', 'firstwitch'), { type: 'groupchat', body: 'x' })), WICCA, 'bad-request', 'modify');
    assertError(await h.send(message(WICCA, room('coven', 'nobody'), { type: 'chat', body: 'x' })), WICCA, 'item-not-found');
    assertError(await h.send(message('stranger@example.org/x', room('coven', 'firstwitch'), { type: 'chat', body: 'x' })), 'stranger@example.org/x', 'not-acceptable');
  });

  it('follows muc#roomconfig_allowpm', async () => {
    const h = await coven({ 'muc#roomconfig_allowpm': 'moderators' });
    assertError(await h.send(message(HAG, room('coven', 'secondwitch'), { type: 'chat', body: 'x' })), HAG, 'forbidden');
    assert.equal(to(await h.send(message(CRONE, room('coven', 'thirdwitch'), { type: 'chat', body: 'x' })), HAG).length, 1);
    await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_allowpm': 'none' }));
    assertError(await h.send(message(CRONE, room('coven', 'thirdwitch'), { type: 'chat', body: 'x' })), CRONE, 'forbidden');
  });
});

describe('MUC: invitations (§7.8.2, XEP-0249)', () => {
  it('relays a mediated invitation from the room with the inviter, reason, continue and password', async () => {
    const h = await coven({ 'muc#roomconfig_passwordprotectedroom': true, 'muc#roomconfig_roomsecret': 'cauldronburn' });
    const x = new Element('x', { xmlns: 'http://jabber.org/protocol/muc#user' });
    const inv = x.c('invite', { to: 'hecate@example.org' });
    inv.c('reason').t('Hey Hecate, this is the place for all good witches!');
    inv.c('continue', { thread: 'e0ff' });
    x.c('invite', { to: 'bard@example.org' });
    const out = await h.send(message(CRONE, COVEN, { id: 'nzd143v8', children: [x] }));
    const m = only(out, 'hecate@example.org');
    assert.equal(m.attrs.from, COVEN);
    assert.equal(m.attrs.id, 'nzd143v8');
    const i = userX(m)!.getChild('invite')!;
    assert.equal(i.attrs.from, 'crone@example.org');
    assert.equal(i.getChildText('reason'), 'Hey Hecate, this is the place for all good witches!');
    assert.equal(i.getChild('continue')?.attrs.thread, 'e0ff');
    assert.equal(userX(m)!.getChildText('password'), 'cauldronburn');
    assert.ok(only(out, 'bard@example.org'), 'several invitations at once');
    assert.equal(h.muc.room(COVEN)?.affiliationOf('hecate@example.org'), 'none', 'open rooms add nobody to the member list');
  });

  it('in members-only rooms: only admins invite unless muc#roomconfig_allowinvites; the invitee becomes a member', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_membersonly': true });
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'member', jid: 'hag@example.org' }]));
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    const x = () => {
      const el = new Element('x', { xmlns: 'http://jabber.org/protocol/muc#user' });
      el.c('invite', { to: 'hecate@example.org/broom' });
      return el;
    };
    assertError(await h.send(message(HAG, COVEN, { children: [x()] })), HAG, 'forbidden', 'auth');
    await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_allowinvites': true }));
    const out = await h.send(message(HAG, COVEN, { children: [x()] }));
    assert.ok(only(out, 'hecate@example.org/broom'));
    assert.equal(h.muc.room(COVEN)?.affiliationOf('hecate@example.org'), 'member');
    assert.ok(selfPresence(await h.send(join('hecate@example.org/broom', room('coven', 'hecate'))), 'hecate@example.org/broom'));
  });

  it('passes a decline back to the inviter', async () => {
    const h = await coven();
    const x = new Element('x', { xmlns: 'http://jabber.org/protocol/muc#user' });
    x.c('decline', { to: 'crone@example.org' }).c('reason').t('Sorry, I\'m too busy right now.');
    const out = await h.send(message('hecate@example.org/broom', COVEN, { id: 'jk2vs61v', children: [x] }));
    const d = userX(only(out, 'crone@example.org'))!.getChild('decline')!;
    assert.equal(d.attrs.from, 'hecate@example.org');
    assert.equal(d.getChildText('reason'), 'Sorry, I\'m too busy right now.');
  });
});

describe('MUC: iq to occupants (§17.4) and self-ping (XEP-0410)', () => {
  const ping = (from: string, target: string, id = 's2c1') => iq(from, target, 'get', new Element('ping', { xmlns: 'urn:xmpp:ping' }), id);

  it('answers a self-ping itself for a joined session, not-acceptable for anyone not joined', async () => {
    const h = await coven();
    const ok = await h.send(ping(HAG, room('coven', 'thirdwitch')));
    assert.equal(only(ok, HAG).attrs.type, 'result');
    assert.equal(only(ok, HAG).attrs.from, room('coven', 'thirdwitch'));
    assertError(await h.send(ping('hag@example.org/other', room('coven', 'thirdwitch'))), 'hag@example.org/other', 'not-acceptable', 'cancel');
    const info = await h.send(iq(HAG, COVEN, 'get', new Element('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(at(info, 0).getChild('query')!.getChildren('feature').some((f) => f.attrs.var === 'http://jabber.org/protocol/muc#self-ping-optimization'));
  });

  it('forwards iq between occupants under a fresh id and routes the answer back to the asking session', async () => {
    const h = await coven();
    const q = iq(HAG, room('coven', 'secondwitch'), 'get', new Element('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), 'ask1');
    const fwd = at(await h.send(q), 0);
    assert.equal(fwd.attrs.to, WICCA);
    assert.equal(fwd.attrs.from, room('coven', 'thirdwitch'));
    assert.notEqual(fwd.attrs.id, 'ask1');
    const answer = new Element('iq', { from: WICCA, to: room('coven', 'thirdwitch'), type: 'result', id: fwd.attrs.id as string });
    answer.c('query', { xmlns: 'http://jabber.org/protocol/disco#info' });
    const back = at(await h.send(answer), 0);
    assert.deepEqual({ from: back.attrs.from, to: back.attrs.to, id: back.attrs.id, type: back.attrs.type }, { from: room('coven', 'secondwitch'), to: HAG, id: 'ask1', type: 'result' });
    assert.deepEqual(await h.send(answer), [], 'answered once');
    // vCards go to the bare JID (the user's server answers).
    const v = at(await h.send(iq(HAG, room('coven', 'secondwitch'), 'get', new Element('vCard', { xmlns: 'vcard-temp' }))), 0);
    assert.equal(v.attrs.to, 'wicca@example.org');
    // Outsiders: bad-request for disco (§6.6), not-acceptable otherwise.
    assertError(await h.send(iq('stranger@example.org/x', room('coven', 'secondwitch'), 'get', new Element('query', { xmlns: 'http://jabber.org/protocol/disco#info' }))), 'stranger@example.org/x', 'bad-request');
  });
});

describe('MUC: message moderation (XEP-0425)', () => {
  it('retracts a message for a moderator: removed from history, announced in both forms, tombstone requested', async () => {
    const h = await coven();
    const out = await h.send(groupchat(HAG, COVEN, 'DM me for free magic potions!'));
    const sid = at(out, 0).getChildren('stanza-id').find((s) => s.attrs.by === COVEN)!.attrs.id as string;
    const req = new Element('moderate', { xmlns: 'urn:xmpp:message-moderate:1', id: sid });
    req.c('retract', { xmlns: 'urn:xmpp:message-retract:1' });
    req.c('reason').t('Spam');
    assertError(await h.send(iq(WICCA, COVEN, 'set', req)), WICCA, 'forbidden', 'auth');
    const done = await h.send(iq(CRONE, COVEN, 'set', req, 'mod1'));
    assert.equal(to(done, CRONE).find((e) => e.name === 'iq')?.attrs.type, 'result');
    const ann = only(done.filter((e) => e.name === 'message'), HAG);
    assert.equal(ann.attrs.from, COVEN);
    const retract = ann.getChild('retract', 'urn:xmpp:message-retract:1')!;
    assert.equal(retract.attrs.id, sid);
    assert.equal(retract.getChild('moderated', 'urn:xmpp:message-moderate:1')?.attrs.by, room('coven', 'firstwitch'));
    assert.ok(retract.getChild('moderated')?.getChild('occupant-id', 'urn:xmpp:occupant-id:0'));
    assert.equal(retract.getChildText('reason'), 'Spam');
    const legacy = ann.getChild('apply-to', 'urn:xmpp:fasten:0');
    assert.equal(legacy?.attrs.id, sid);
    assert.ok(legacy?.getChild('moderated', 'urn:xmpp:message-moderate:0')?.getChild('retract', 'urn:xmpp:message-retract:0'));
    assert.equal(h.retracted.length, 1);
    const retracted = at(h.retracted, 0);
    assert.deepEqual({ id: retracted.stanzaId, moderated: retracted.moderated, reason: retracted.reason }, { id: sid, moderated: true, reason: 'Spam' });
    assert.equal(h.archived.at(-1)?.stanza.getChild('retract', 'urn:xmpp:message-retract:1')?.attrs.id, sid, 'the announcement is archived');
    const late = await h.send(join('hecate@example.org/broom', room('coven', 'hecate')));
    assert.ok(!late.some((e) => e.getChildText('body') === 'DM me for free magic potions!'), 'not replayed to newcomers');
    assertError(await h.send(iq(CRONE, COVEN, 'set', req, 'mod2')), CRONE, 'item-not-found');
  });

  it('accepts the fastening form of XEP-0425 0.2 and messages only the archive still has', async () => {
    const h = harness({}, () => true);
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    const applyTo = new Element('apply-to', { xmlns: 'urn:xmpp:fasten:0', id: 'archived-only' });
    applyTo.c('moderate', { xmlns: 'urn:xmpp:message-moderate:0' }).c('retract', { xmlns: 'urn:xmpp:message-retract:0' });
    const out = await h.send(iq(CRONE, COVEN, 'set', applyTo));
    assert.equal(to(out, CRONE).find((e) => e.name === 'iq')?.attrs.type, 'result');
    assert.equal(at(h.retracted, 0).stanzaId, 'archived-only');
  });

  it('drops a message its author retracts (XEP-0424) from the history', async () => {
    const h = await coven();
    const sid = at(await h.send(groupchat(HAG, COVEN, 'oops')), 0).getChildren('stanza-id').find((s) => s.attrs.by === COVEN)!.attrs.id as string;
    const other = new Element('retract', { xmlns: 'urn:xmpp:message-retract:1', id: sid });
    await h.send(message(WICCA, COVEN, { type: 'groupchat', body: 'not yours', children: [other] }));
    assert.equal(h.muc.room(COVEN)?.history.find(sid)?.stanzaId, sid, 'someone else cannot');
    const retract = new Element('retract', { xmlns: 'urn:xmpp:message-retract:1', id: sid });
    const out = await h.send(message(HAG, COVEN, { type: 'groupchat', body: '/me retracted a message', id: 'retraction-1', children: [retract] }));
    assert.equal(out.length, 3, 'the retraction is reflected');
    assert.equal(h.muc.room(COVEN)?.history.find(sid), undefined);
    assert.deepEqual({ id: h.retracted.at(-1)?.stanzaId, by: h.retracted.at(-1)?.by, moderated: h.retracted.at(-1)?.moderated }, { id: sid, by: 'hag@example.org', moderated: false });
    // The tombstone names the retraction by its message id (XEP-0424 §"Tombstones").
    assert.equal(h.retracted.at(-1)?.retractionMessageId, 'retraction-1');
    assert.ok(codes(selfPresence(await h.send(join('x@example.org/y', room('coven', 'x'))), 'x@example.org/y')).includes(110));
  });
});
