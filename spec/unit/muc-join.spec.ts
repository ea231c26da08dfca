// MUC engine (XEP-0045 §7.1–7.7, §7.14, §10.1): creating rooms, entering with every error of
// §7.2.17, the order of events, status codes 100/110/170/201/210/303, presence broadcast per role,
// nick changes compared as RFC 8266 nicknames, leaving, and several sessions under one nick.
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import {
  adminSet, assertError, codes, configure, createRoom, errorOf, groupchat, harness, item, join, message, NS_MUC, only,
  presence, room, selfPresence, to, userX,
} from '../helpers/muc.ts';
import { at } from '../helpers/assert.ts';

const CRONE = 'crone@example.org/desktop';
const WICCA = 'wicca@example.org/laptop';
const HAG = 'hag@example.org/pda';
const HAG2 = 'hag@example.org/phone';
const COVEN = room('coven');

describe('MUC: creating a room (§10.1)', () => {
  it('creates a locked room on the first join, owner with 201 and 110, others kept out until configured', async () => {
    const h = harness();
    const out = await h.send(join(CRONE, room('coven', 'firstwitch'), { id: 'j1' }));
    const self = only(out, CRONE, 'presence');
    assert.equal(self.attrs.from, room('coven', 'firstwitch'));
    assert.equal(self.attrs.id, 'j1', 'self-presence reflects the join id');
    assert.deepEqual(codes(self), [110, 201]);
    assert.equal(item(self).affiliation, 'owner');
    assert.equal(item(self).role, 'moderator');
    // Locked: §7.2.10 item-not-found for anyone else, the room is not listed.
    assertError(await h.send(join(HAG, room('coven', 'thirdwitch'))), HAG, 'item-not-found', 'cancel');
    const locked = await h.send(groupchat(HAG, COVEN, 'hi'));
    assertError(locked, HAG, 'item-not-found');
    // Instant room (§10.1.2): an empty submitted form unlocks it.
    const r = await h.send(configure(CRONE, COVEN));
    assert.equal(at(r, 0).attrs.type, 'result');
    const joined = await h.send(join(HAG, room('coven', 'thirdwitch')));
    assert.deepEqual(codes(selfPresence(joined, HAG)), [110]);
  });

  it('refuses creation with not-allowed when creation is restricted, and service admins may still create', async () => {
    const h = harness({ canCreateRoom: () => false, isServiceAdmin: (j) => j === 'boss@example.org' });
    assertError(await h.send(join(HAG, room('coven', 'thirdwitch'))), HAG, 'not-allowed', 'cancel');
    assert.equal(h.muc.room(COVEN), undefined);
    const out = await h.send(join('boss@example.org/x', room('coven', 'boss')));
    assert.deepEqual(codes(selfPresence(out, 'boss@example.org/x')), [110, 201]);
  });

  it('destroys a room whose owner leaves before configuring it, and one locked past the timeout', async () => {
    const h = harness({ lockTimeoutMs: 60_000 });
    await h.send(join(CRONE, room('coven', 'firstwitch')));
    const out = await h.send(presence(CRONE, room('coven', 'firstwitch'), 'unavailable'));
    const p = only(out, CRONE);
    assert.deepEqual(codes(p), [110]);
    assert.ok(userX(p)?.getChild('destroy'), 'unavailable with <destroy/> (§10.1.3)');
    assert.equal(h.muc.room(COVEN), undefined);
    await h.send(join(CRONE, room('heath', 'firstwitch')));
    assert.deepEqual(await h.muc.sweep(), [], 'not yet expired');
    h.clock.now += 61_000;
    const swept = await h.muc.sweep();
    assert.ok(userX(only(swept, CRONE))?.getChild('destroy'));
    assert.equal(h.muc.room(room('heath')), undefined);
  });

  it('cancelling the initial configuration destroys the room (§10.1.3)', async () => {
    const h = harness();
    await h.send(join(CRONE, room('coven', 'firstwitch')));
    const q = new Element('query', { xmlns: 'http://jabber.org/protocol/muc#owner' });
    q.c('x', { xmlns: 'jabber:x:data', type: 'cancel' });
    const cancel = new Element('iq', { from: CRONE, to: COVEN, type: 'set', id: 'c' });
    cancel.cnode(q);
    const out = await h.send(cancel);
    assert.equal(to(out, CRONE).find((e) => e.name === 'iq')?.attrs.type, 'result');
    assert.ok(to(out, CRONE).some((e) => e.name === 'presence' && userX(e)?.getChild('destroy')));
    assert.equal(h.muc.room(COVEN), undefined);
  });
});

describe('MUC: entering a room (§7.2)', () => {
  it('sends the others first, then self-presence (110), then history, then the subject (§7.1)', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(WICCA, room('coven', 'secondwitch')));
    await h.send(groupchat(WICCA, COVEN, 'Thrice the brinded cat hath mew\'d.'));
    const out = await h.send(join(HAG, room('coven', 'thirdwitch'), { id: 'n13mt3l' }));
    const mine = to(out, HAG);
    assert.deepEqual(mine.map((e) => `${e.name} ${e.attrs.from}`), [
      `presence ${room('coven', 'firstwitch')}`,
      `presence ${room('coven', 'secondwitch')}`,
      `presence ${room('coven', 'thirdwitch')}`,
      `message ${room('coven', 'secondwitch')}`,
      `message ${COVEN}`,
    ]);
    assert.deepEqual(codes(at(mine, 2)), [110]);
    assert.equal(at(mine, 3).getChildText('body'), 'Thrice the brinded cat hath mew\'d.');
    assert.equal(at(mine, 3).getChild('delay', 'urn:xmpp:delay')?.attrs.from, COVEN);
    const subject = at(mine, 4);
    assert.equal(subject.attrs.type, 'groupchat');
    assert.equal(subject.getChildText('subject'), '', '§7.2.15: an empty subject when none is set');
    assert.equal(subject.getChild('body'), undefined);
    // The existing occupants learn of the newcomer, with role and affiliation.
    for (const jid of [CRONE, WICCA]) {
      const p = only(out, jid, 'presence');
      assert.equal(p.attrs.from, room('coven', 'thirdwitch'));
      assert.deepEqual({ affiliation: item(p).affiliation, role: item(p).role }, { affiliation: 'none', role: 'participant' });
      assert.ok(p.getChild('occupant-id', 'urn:xmpp:occupant-id:0'), 'XEP-0421 on every presence');
    }
  });

  it('shows real JIDs to moderators only in semi-anonymous rooms, to everyone with 100 in non-anonymous ones', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(WICCA, room('coven', 'secondwitch')));
    const out = await h.send(join(HAG, room('coven', 'thirdwitch')));
    assert.equal(item(only(out, CRONE)).jid, HAG, 'the owner (moderator) sees the real JID');
    assert.equal(item(only(out, WICCA)).jid, undefined, 'a participant does not');
    assert.ok(!codes(only(out.filter((e) => e.attrs.from === room('coven', 'thirdwitch')), HAG)).includes(100));

    const h2 = harness();
    await createRoom(h2, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_whois': 'anyone', 'muc#roomconfig_enablelogging': true });
    await h2.send(join(WICCA, room('coven', 'secondwitch')));
    const out2 = await h2.send(join(HAG, room('coven', 'thirdwitch')));
    assert.equal(item(only(out2, WICCA)).jid, HAG);
    const self = only(out2.filter((e) => e.attrs.from === room('coven', 'thirdwitch')), HAG);
    assert.deepEqual(codes(self), [100, 110, 170], 'non-anonymous (100) and publicly logged (170)');
  });

  it('answers each entry error of §7.2.17 with its condition, the <x/> and the room as "by"', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch', {
      'muc#roomconfig_passwordprotectedroom': true, 'muc#roomconfig_roomsecret': 'cauldronburn', 'muc#roomconfig_maxusers': '2',
    });
    // No nickname: jid-malformed.
    const noNick = assertError(await h.send(join(HAG, COVEN)), HAG, 'jid-malformed', 'modify');
    assert.equal(noNick.getChild('error')?.attrs.by, COVEN);
    // Password missing or wrong: not-authorized (auth).
    const noPw = assertError(await h.send(join(HAG, room('coven', 'thirdwitch'))), HAG, 'not-authorized', 'auth');
    assert.ok(noPw.getChild('x', NS_MUC), 'the presence error carries <x xmlns=muc/>');
    assertError(await h.send(join(HAG, room('coven', 'thirdwitch'), { password: 'wrong' })), HAG, 'not-authorized');
    // Nick conflict: another user, compared as RFC 8266 nicknames (case and width folded).
    await h.send(join(WICCA, room('coven', 'Second Witch'), { password: 'cauldronburn' }));
    assertError(await h.send(join(HAG, room('coven', 'SECOND WITCH'), { password: 'cauldronburn' })), HAG, 'conflict', 'cancel');
    assertError(await h.send(join(HAG, room('coven', 'ｓｅｃｏｎｄ ｗｉｔｃｈ'), { password: 'cauldronburn' })), HAG, 'conflict');
    // Max users (2 occupants already): service-unavailable (wait)...
    assertError(await h.send(join(HAG, room('coven', 'thirdwitch'), { password: 'cauldronburn' })), HAG, 'service-unavailable', 'wait');
    // ...but admins and owners still get in (§7.2.9).
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'admin', jid: 'hecate@example.org' }]));
    const admin = await h.send(join('hecate@example.org/broom', room('coven', 'hecate'), { password: 'cauldronburn' }));
    assert.equal(errorOf(only(admin.filter((e) => e.attrs.from === room('coven', 'hecate')), 'hecate@example.org/broom')), undefined);
  });

  it('refuses banned users (forbidden) and non-members of members-only rooms (registration-required)', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_membersonly': true });
    assertError(await h.send(join(HAG, room('coven', 'thirdwitch'))), HAG, 'registration-required', 'auth');
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'member', jid: 'hag@example.org' }]));
    const ok = await h.send(join(HAG, room('coven', 'thirdwitch')));
    assert.equal(item(only(ok.filter((e) => e.attrs.from === room('coven', 'thirdwitch')), HAG)).affiliation, 'member');
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'outcast', jid: 'wicca@example.org' }]));
    assertError(await h.send(join(WICCA, room('coven', 'secondwitch'))), WICCA, 'forbidden', 'auth');
    // A ban of a whole domain (§9.2 matching order) keeps its users out.
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'outcast', jid: 'evil.example' }]));
    assertError(await h.send(join('anyone@evil.example/x', room('coven', 'x'))), 'anyone@evil.example/x', 'forbidden');
  });

  it('refuses a nick reserved by another user (§7.12) but lets its owner take it', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'member', jid: 'hag@example.org', nick: 'thirdwitch' }]));
    assertError(await h.send(join(WICCA, room('coven', 'ThirdWitch'))), WICCA, 'conflict');
    const out = await h.send(join(HAG, room('coven', 'thirdwitch')));
    assert.deepEqual(codes(only(out.filter((e) => e.attrs.from === room('coven', 'thirdwitch')), HAG)), [110]);
  });

  it('enforces the nickname profile: 210 when the nick was changed, jid-malformed when nothing is left', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    const out = await h.send(join(HAG, room('coven', ' third  witch ')));
    const self = only(out.filter((e) => codes(e).includes(110)), HAG);
    assert.equal(self.attrs.from, room('coven', 'third witch'));
    assert.deepEqual(codes(self), [110, 210]);
    assertError(await h.send(join(WICCA, room('coven', '   '))), WICCA, 'jid-malformed');
  });

  it('answers presence without the MUC element from a non-occupant with 110+307+333 (§7.2.18)', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    const out = await h.send(join(HAG, room('coven', 'thirdwitch'), { noX: true }));
    const p = only(out, HAG);
    assert.equal(p.attrs.type, 'unavailable');
    assert.deepEqual(codes(p), [110, 307, 333]);
    assert.equal(h.muc.room(COVEN)?.occupantCount, 1);
    // For a room that does not exist the same, and no room is created.
    const none = await h.send(join(HAG, room('heath', 'x'), { noX: true }));
    assert.deepEqual(codes(only(none, HAG)), [110, 307, 333]);
    assert.equal(h.muc.room(room('heath')), undefined);
  });

  it('resynchronises a joined session that joins again (§7.2.1, §17.3 rule 3)', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    const out = await h.send(join(HAG, room('coven', 'thirdwitch')));
    assert.deepEqual(to(out, HAG).map((e) => e.name), ['presence', 'presence', 'message']);
    assert.deepEqual(codes(at(to(out, HAG), 1)), [110]);
    assert.equal(to(out, CRONE).length, 0, 'unchanged presence is not re-broadcast');
  });
});

describe('MUC: presence in the room (§7.6, §7.7, §7.14)', () => {
  it('broadcasts availability changes, never the client\'s muc payloads or password', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    const forged = new Element('x', { xmlns: 'http://jabber.org/protocol/muc#user' });
    forged.c('item', { affiliation: 'owner', role: 'moderator' });
    const pw = new Element('x', { xmlns: NS_MUC });
    pw.c('password').t('secret');
    const show = new Element('show').t('xa');
    const status = new Element('status').t('gone where the goblins go');
    const out = await h.send(presence(HAG, room('coven', 'thirdwitch'), undefined, [show, status, forged]));
    const p = only(out, CRONE);
    assert.equal(p.getChildText('show'), 'xa');
    assert.equal(p.getChildText('status'), 'gone where the goblins go');
    assert.equal(p.getChildren('x', 'http://jabber.org/protocol/muc#user').length, 1);
    assert.deepEqual({ a: item(p).affiliation, r: item(p).role }, { a: 'none', r: 'participant' });
    assert.deepEqual(codes(only(out, HAG)), [110]);
    // A resync join carrying the password: the password is not reflected.
    const again = await h.send(presence(HAG, room('coven', 'thirdwitch'), undefined, [pw]));
    assert.ok(!again.some((e) => e.toString().includes('secret')));
  });

  it('changes nick with 303 and the new nick, then presence from the new occupant JID (§7.6)', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    const out = await h.send(presence(HAG, room('coven', 'oldhag')));
    const toCrone = to(out, CRONE);
    const gone = at(toCrone, 0);
    const back = at(toCrone, 1);
    assert.equal(gone.attrs.type, 'unavailable');
    assert.equal(gone.attrs.from, room('coven', 'thirdwitch'));
    assert.deepEqual(codes(gone), [303]);
    assert.equal(item(gone).nick, 'oldhag');
    assert.equal(item(gone).role, 'participant', 'the 303 presence keeps the role');
    assert.equal(back.attrs.from, room('coven', 'oldhag'));
    assert.equal(back.attrs.type, undefined);
    const toHag = to(out, HAG);
    const selfGone = at(toHag, 0);
    const selfBack = at(toHag, 1);
    assert.deepEqual(codes(selfGone), [110, 303]);
    assert.deepEqual(codes(selfBack), [110]);
    assert.deepEqual(h.muc.room(COVEN)?.nicks().sort(), ['firstwitch', 'oldhag']);
    // Case-only change is a nick change too; conflicts are refused.
    const cased = await h.send(presence(HAG, room('coven', 'OldHag')));
    assert.equal(item(at(to(cased, CRONE), 0)).nick, 'OldHag');
    assertError(await h.send(presence(HAG, room('coven', 'FIRSTWITCH'))), HAG, 'conflict', 'cancel');
  });

  it('leaves with unavailable self-presence (110, role none); a temporary room goes when empty, a persistent one stays', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    const st = new Element('status').t('bye');
    const out = await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable', [st]));
    const self = only(out, HAG);
    assert.deepEqual(codes(self), [110]);
    assert.equal(item(self).role, 'none');
    const other = only(out, CRONE);
    assert.equal(other.attrs.type, 'unavailable');
    assert.equal(other.getChildText('status'), 'bye', 'custom exit message (§7.14)');
    assert.deepEqual(await h.send(presence(HAG, room('coven', 'thirdwitch'), 'unavailable')), [], '§17.3 rule 5 ignored from non-occupants');
    await h.send(presence(CRONE, room('coven', 'firstwitch'), 'unavailable'));
    assert.equal(h.muc.room(COVEN), undefined, 'temporary room destroyed when the last occupant left');

    await createRoom(h, 'heath', CRONE, 'firstwitch', { 'muc#roomconfig_persistentroom': true });
    await h.send(presence(CRONE, room('heath', 'firstwitch'), 'unavailable'));
    assert.ok(h.muc.room(room('heath')), 'persistent room stays');
  });

  it('removes a session that bounces with a delivery error, telling the others with 333 (§18.1.2 ghosts)', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    const bounce = new Element('message', { from: HAG, to: room('coven', 'firstwitch'), type: 'error' });
    bounce.c('error', { type: 'cancel' }).c('recipient-unavailable', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' });
    const out = await h.send(bounce);
    assert.deepEqual(codes(only(out, CRONE)), [333]);
    assert.equal(h.muc.room(COVEN)?.occupantCount, 1);
  });

  it('answers probes from occupants, ends a session on unavailable to any nick, lets service admins past the password', async () => {
    const h = harness({ isServiceAdmin: (j) => j === 'boss@example.org' });
    await createRoom(h, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_passwordprotectedroom': true, 'muc#roomconfig_roomsecret': 'pw' });
    await h.send(join(HAG, room('coven', 'thirdwitch'), { password: 'pw' }));
    const probe = await h.send(presence(HAG, room('coven', 'firstwitch'), 'probe'));
    assert.equal(only(probe, HAG).attrs.from, room('coven', 'firstwitch'));
    assert.equal(item(only(probe, HAG)).role, 'moderator');
    assert.deepEqual(await h.send(presence('stranger@example.org/x', room('coven', 'firstwitch'), 'probe')), [], 'not for outsiders');
    // The user's server may send the unavailable to a nick used before a change.
    const out = await h.send(presence(HAG, room('coven', 'an-old-nick'), 'unavailable'));
    assert.equal(only(out, HAG).attrs.from, room('coven', 'thirdwitch'));
    assert.equal(h.muc.room(COVEN)?.occupantCount, 1);
    const admin = await h.send(join('boss@example.org/x', room('coven', 'boss')));
    assert.ok(selfPresence(admin, 'boss@example.org/x'));
    assert.equal(item(selfPresence(admin, 'boss@example.org/x')).affiliation, 'owner', 'service admins are owners');
  });

  it('hides the presence of roles outside muc#roomconfig_presencebroadcast', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_presencebroadcast': ['moderator'] });
    const out = await h.send(join(HAG, room('coven', 'thirdwitch')));
    assert.equal(to(out, CRONE).length, 0, 'a participant\'s join is not broadcast');
    assert.ok(to(out, HAG).some((e) => codes(e).includes(110)), 'but it gets its self-presence');
    assert.ok(to(out, HAG).some((e) => e.attrs.from === room('coven', 'firstwitch')), 'and sees the moderator');
    // Made moderator, it becomes visible.
    const promoted = await h.send(adminSet(CRONE, COVEN, [{ nick: 'thirdwitch', role: 'moderator' }]));
    assert.equal(item(only(promoted.filter((e) => e.name === 'presence'), CRONE)).role, 'moderator');
  });
});

describe('MUC: several sessions under one nick (§7.2.8)', () => {
  it('joins a second resource of the same user into the same occupant; messages reach both; leaving one keeps the occupant', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    const second = await h.send(join(HAG2, room('coven', 'thirdwitch')));
    assert.deepEqual(codes(to(second, HAG2).find((e) => e.attrs.from === room('coven', 'thirdwitch'))!), [110]);
    assert.equal(h.muc.room(COVEN)?.occupantCount, 2);
    const msg = await h.send(groupchat(CRONE, COVEN, 'hello'));
    assert.equal(to(msg, HAG).length, 1);
    assert.equal(to(msg, HAG2).length, 1);
    const pm = await h.send(message(CRONE, room('coven', 'thirdwitch'), { type: 'chat', body: 'psst' }));
    assert.deepEqual(pm.map((e) => e.attrs.to).sort(), [HAG, HAG2].sort(), 'private messages go to every session');
    // Another user asking for the same nick still gets conflict.
    assertError(await h.send(join(WICCA, room('coven', 'thirdwitch'))), WICCA, 'conflict');
    const left = await h.send(presence(HAG2, room('coven', 'thirdwitch'), 'unavailable'));
    assert.equal(only(left, HAG2).attrs.type, 'unavailable');
    assert.ok(!left.some((e) => e.attrs.to === CRONE && e.attrs.type === 'unavailable'), 'the occupant has not left');
    assert.equal(h.muc.room(COVEN)?.occupantCount, 2);
  });
});
