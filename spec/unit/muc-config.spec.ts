// MUC engine: room configuration with the muc#roomconfig form (XEP-0045 §10.1–10.2, §16.5.3), the
// change notifications of §10.2.1, disco (§6, muc#roominfo §16.5.4), and durable state: the
// snapshot, restoring rooms after a restart, undoing a change that could not be stored.
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import { parseForm } from '../../core/util/dataforms.ts';
import { MucService } from '../../modules/mod_muc/service.ts';
import { parseSnapshot, type RoomSnapshot } from '../../modules/mod_muc/snapshot.ts';
import {
  adminSet, assertError, codes, configure, createRoom, errorOf, groupchat, harness, HOST, iq, item, join, message, NS_OWNER, only, presence,
  room, ROOMCONFIG, selfPresence, to, userX,
} from '../helpers/muc.ts';
import { at } from '../helpers/assert.ts';

const CRONE = 'crone@example.org/desktop';
const WICCA = 'wicca@example.org/laptop';
const HAG = 'hag@example.org/pda';
const COVEN = room('coven');

const getConfig = (from: string) => iq(from, COVEN, 'get', new Element('query', { xmlns: NS_OWNER }));
const discoInfo = (from: string, to = COVEN) => iq(from, to, 'get', new Element('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
const discoItems = (from: string, to = HOST) => iq(from, to, 'get', new Element('query', { xmlns: 'http://jabber.org/protocol/disco#items' }));

function formValues(out: Element[]): Map<string, string[]> {
  const x = at(out, 0).getChild('query', NS_OWNER)!.getChild('x', 'jabber:x:data')!;
  const f = parseForm(x)!;
  assert.equal(f.formType, ROOMCONFIG);
  return new Map([...f.fields].map(([k, v]) => [k, v.values]));
}

describe('MUC: room configuration (§10.1, §10.2)', () => {
  it('round-trips the muc#roomconfig form: what is submitted is what the next form shows', async () => {
    const h = harness();
    await h.send(join(CRONE, room('coven', 'firstwitch')));
    const initial = formValues(await h.send(getConfig(CRONE)));
    for (const v of ['muc#roomconfig_roomname', 'muc#roomconfig_roomdesc', 'muc#roomconfig_lang', 'muc#roomconfig_persistentroom', 'muc#roomconfig_publicroom',
      'muc#roomconfig_membersonly', 'muc#roomconfig_moderatedroom', 'muc#roomconfig_passwordprotectedroom', 'muc#roomconfig_roomsecret',
      'muc#roomconfig_maxusers', 'muc#roomconfig_whois', 'muc#maxhistoryfetch', 'muc#roomconfig_allowinvites', 'muc#roomconfig_changesubject',
      'muc#roomconfig_allowpm', 'muc#roomconfig_presencebroadcast', 'muc#roomconfig_getmemberlist', 'muc#roomconfig_enablelogging',
      'muc#roomconfig_pubsub', 'muc#roomconfig_roomadmins', 'muc#roomconfig_roomowners']) {
      assert.ok(initial.has(v), `form has ${v}`);
    }
    assert.deepEqual(initial.get('muc#roomconfig_roomowners'), ['crone@example.org']);
    const submitted = {
      'muc#roomconfig_roomname': 'A Dark Cave', 'muc#roomconfig_roomdesc': 'The place for all good witches!', 'muc#roomconfig_lang': 'en',
      'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_publicroom': '0', 'muc#roomconfig_membersonly': '0', 'muc#roomconfig_moderatedroom': '1',
      'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'cauldronburn', 'muc#roomconfig_maxusers': '30',
      'muc#roomconfig_whois': 'anyone', 'muc#maxhistoryfetch': '50', 'muc#roomconfig_allowinvites': '1', 'muc#roomconfig_changesubject': '1',
      'muc#roomconfig_allowpm': 'participants', 'muc#roomconfig_presencebroadcast': ['moderator', 'participant'],
      'muc#roomconfig_getmemberlist': ['moderator'], 'muc#roomconfig_enablelogging': '1', 'muc#roomconfig_pubsub': 'xmpp:pubsub.example.org?;node=coven',
      'muc#roomconfig_roomadmins': ['wicca@example.org', 'hecate@example.org'], 'muc#roomconfig_roomowners': ['crone@example.org'],
      'x-vendor#unknown': 'ignored',
    };
    const r = await h.send(configure(CRONE, COVEN, submitted));
    assert.equal(at(r, 0).attrs.type, 'result', at(r, 0).toString());
    const after = formValues(await h.send(getConfig(CRONE)));
    for (const [k, v] of Object.entries(submitted)) {
      if (k.startsWith('x-vendor')) continue;
      assert.deepEqual(after.get(k), [v].flat(), k);
    }
    assert.equal(h.muc.room(COVEN)?.affiliationOf('hecate@example.org'), 'admin');
    assert.equal(h.muc.room(COVEN)?.locked, false);
  });

  it('refuses non-owners (forbidden) and unacceptable settings (not-acceptable), leaving the room as it was', async () => {
    const h = harness({ maxUsers: 50 });
    await createRoom(h, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_roomname': 'Before' });
    await h.send(join(WICCA, room('coven', 'secondwitch')));
    assertError(await h.send(getConfig(WICCA)), WICCA, 'forbidden', 'auth');
    assertError(await h.send(configure(WICCA, COVEN, { 'muc#roomconfig_roomname': 'x' })), WICCA, 'forbidden');
    const bads: Record<string, string | string[]>[] = [
      { 'muc#roomconfig_passwordprotectedroom': '1' }, // no password
      { 'muc#roomconfig_maxusers': '500' }, // above the service limit
      { 'muc#roomconfig_maxusers': 'none' },
      { 'muc#roomconfig_whois': 'everyone' },
      { 'muc#roomconfig_persistentroom': 'maybe' },
      { 'muc#maxhistoryfetch': '1000' },
      { 'muc#roomconfig_roomadmins': ['not a jid@'] },
    ];
    for (const bad of bads) {
      const e = assertError(await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_roomname': 'After', ...bad })), CRONE, 'not-acceptable', 'modify');
      assert.ok(e.getChild('error')?.getChildText('text'), 'with a text saying why');
    }
    assert.equal(h.muc.room(COVEN)?.config.name, 'Before');
    // Cancelling a later configuration changes nothing (§10.2).
    const q = new Element('query', { xmlns: NS_OWNER });
    q.c('x', { xmlns: 'jabber:x:data', type: 'cancel' });
    assert.equal(at(await h.send(iq(CRONE, COVEN, 'set', q)), 0).attrs.type, 'result');
    assert.ok(h.muc.room(COVEN));
  });

  it('announces privacy changes with 170–173 and others with 104 (§10.2.1)', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    const notice = async (values: Record<string, string>) => {
      const out = await h.send(configure(CRONE, COVEN, values));
      const m = only(out.filter((e) => e.name === 'message'), HAG);
      assert.equal(m.attrs.from, COVEN);
      assert.equal(m.attrs.type, 'groupchat');
      return codes(m);
    };
    assert.deepEqual(await notice({ 'muc#roomconfig_enablelogging': '1' }), [170]);
    assert.deepEqual(await notice({ 'muc#roomconfig_enablelogging': '0' }), [171]);
    const out = await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_whois': 'anyone' }));
    assert.deepEqual(codes(only(out.filter((e) => e.name === 'message'), HAG)), [172]);
    assert.ok(to(out, HAG).some((e) => e.name === 'presence' && item(e).jid === CRONE), 'real JIDs now shown to everyone');
    assert.deepEqual(await notice({ 'muc#roomconfig_whois': 'moderators' }), [173]);
    assert.deepEqual(await notice({ 'muc#roomconfig_roomname': 'Renamed' }), [104]);
    assert.equal((await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_roomname': 'Renamed' }))).length, 1, 'no change, no notice');
  });

  it('applies the owner and admin lists of the form as full lists with presence updates (§10.2)', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(join(WICCA, room('coven', 'secondwitch')));
    const out = await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_roomowners': ['crone@example.org', 'wicca@example.org'] }));
    const p = to(out, CRONE).find((e) => e.name === 'presence')!;
    assert.deepEqual({ a: item(p).affiliation, r: item(p).role }, { a: 'owner', r: 'moderator' });
    const demoted = await h.send(configure(WICCA, COVEN, { 'muc#roomconfig_roomowners': ['wicca@example.org'], 'muc#roomconfig_roomadmins': ['crone@example.org'] }));
    assert.equal(at(demoted, 0).attrs.type, 'result');
    assert.equal(h.muc.room(COVEN)?.affiliationOf('crone@example.org'), 'admin');
    assert.deepEqual(h.muc.room(COVEN)?.listAffiliation('owner'), ['wicca@example.org']);
  });
});

describe('MUC: disco (§6)', () => {
  it('describes the service, lists public unlocked rooms only, and answers for rooms with their type features and muc#roominfo', async () => {
    const h = harness({ name: 'Chatrooms' });
    const svc = at(await h.send(discoInfo(HAG, HOST)), 0).getChild('query')!;
    assert.deepEqual(svc.getChild('identity')?.attrs, { category: 'conference', type: 'text', name: 'Chatrooms' });
    assert.ok(svc.getChildren('feature').some((f) => f.attrs.var === 'http://jabber.org/protocol/muc'));
    await createRoom(h, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_roomname': 'A Dark Cave', 'muc#roomconfig_roomdesc': 'Witches', 'muc#roomconfig_lang': 'en' });
    await createRoom(h, 'hidden', CRONE, 'firstwitch', { 'muc#roomconfig_publicroom': '0', 'muc#roomconfig_membersonly': '1' });
    await h.send(join(CRONE, room('locked', 'firstwitch')));
    const items = at(await h.send(discoItems(HAG)), 0).getChild('query')!.getChildren('item').map((i) => i.attrs);
    assert.deepEqual(items, [{ jid: COVEN, name: 'A Dark Cave' }]);
    const info = at(await h.send(discoInfo(HAG)), 0).getChild('query')!;
    assert.deepEqual(info.getChild('identity')?.attrs, { category: 'conference', type: 'text', name: 'A Dark Cave' });
    const features = info.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['http://jabber.org/protocol/muc', 'http://jabber.org/protocol/muc#stable_id', 'urn:xmpp:occupant-id:0', 'urn:xmpp:sid:0',
      'urn:xmpp:message-moderate:1', 'muc_public', 'muc_temporary', 'muc_open', 'muc_unmoderated', 'muc_semianonymous', 'muc_unsecured']) {
      assert.ok(features.includes(f), f);
    }
    const roominfo = parseForm(info.getChild('x', 'jabber:x:data')!)!;
    assert.equal(roominfo.formType, 'http://jabber.org/protocol/muc#roominfo');
    assert.deepEqual(roominfo.fields.get('muc#roominfo_description')?.values, ['Witches']);
    assert.deepEqual(roominfo.fields.get('muc#roominfo_occupants')?.values, ['1']);
    assert.deepEqual(roominfo.fields.get('muc#roominfo_lang')?.values, ['en']);
    const hidden = at(await h.send(discoInfo(HAG, room('hidden'))), 0).getChild('query')!;
    const hiddenFeatures = hidden.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(hiddenFeatures.includes('muc_hidden') && hiddenFeatures.includes('muc_membersonly'));
    assert.equal(parseForm(hidden.getChild('x', 'jabber:x:data')!)!.fields.has('muc#roominfo_subject'), false, 'no subject leak from a members-only room (§14.4)');
    assertError(await h.send(discoInfo(HAG, room('locked'))), HAG, 'item-not-found');
    assertError(await h.send(discoInfo(HAG, room('nowhere'))), HAG, 'item-not-found');
  });
});

describe('MUC: durable state', () => {
  it('stores a persistent room\'s snapshot on every durable change and rebuilds the room from it after a restart', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch', {
      'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_roomname': 'A Dark Cave', 'muc#roomconfig_moderatedroom': '1', 'muc#roomconfig_membersonly': '1',
    });
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'member', jid: 'hag@example.org', nick: 'thirdwitch' }, { affiliation: 'outcast', jid: 'evil@example.org' }], [undefined, 'spam']));
    await h.send(message(CRONE, COVEN, { type: 'groupchat', subject: 'Spells' }));
    await h.send(join('visitor@example.org/x', room('coven', 'v'))); // refused: members-only
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'member', jid: 'visitor@example.org' }]));
    const before = at(await h.send(groupchat(CRONE, COVEN, 'hello')), 0).getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id;
    const snap = h.stored.get(COVEN)!;
    assert.ok(parseSnapshot(JSON.parse(JSON.stringify(snap))).ok, 'JSON-serialisable and valid');
    assert.equal(snap.config.name, 'A Dark Cave');
    assert.deepEqual(snap.affiliations['hag@example.org'], { affiliation: 'member', nick: 'thirdwitch' });
    assert.deepEqual(snap.affiliations['evil@example.org'], { affiliation: 'outcast', reason: 'spam' });
    assert.equal(snap.subject?.text, 'Spells');
    assert.equal(h.persistCalls.every((c) => c.room === COVEN), true);

    // Restart: a new service from what was stored.
    const h2 = harness();
    const r = h2.muc.restore([...h.stored.values()]);
    assert.deepEqual(r, { restored: [COVEN], skipped: [] });
    const room2 = h2.muc.room(COVEN)!;
    assert.equal(room2.config.name, 'A Dark Cave');
    assertError(await h2.send(join('evil@example.org/x', room('coven', 'e'))), 'evil@example.org/x', 'forbidden');
    assertError(await h2.send(join('stranger@example.org/x', room('coven', 's'))), 'stranger@example.org/x', 'registration-required');
    const back = await h2.send(join(CRONE, room('coven', 'firstwitch')));
    assert.deepEqual(codes(selfPresence(back, CRONE)), [110], 'no 201: the room exists');
    assert.equal(to(back, CRONE).at(-1)?.getChildText('subject'), 'Spells');
    const after = at(await h2.send(groupchat(CRONE, COVEN, 'hello again')), 0).getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id;
    assert.equal(after, before, 'occupant ids survive the restart');
    assertError(await h2.send(join(WICCA, room('coven', 'thirdwitch'))), WICCA, 'registration-required');
    await h2.send(adminSet(CRONE, COVEN, [{ affiliation: 'member', jid: 'wicca@example.org' }]));
    assertError(await h2.send(join(WICCA, room('coven', 'thirdwitch'))), WICCA, 'conflict', 'cancel');
  });

  it('skips stored values that are not valid snapshots instead of failing', () => {
    const h = harness();
    const good: RoomSnapshot = {
      version: 1, jid: room('ok'), created: 0, config: defaults(), affiliations: { 'a@example.org': { affiliation: 'owner' } },
      voice: {}, secret: Buffer.alloc(32, 1).toString('base64'),
    };
    const noOwner = { ...good, jid: room('no-owner'), affiliations: { 'a@example.org': { affiliation: 'member' } } };
    const badConfig = { ...good, jid: room('bad'), config: { ...good.config, maxUsers: 'lots' } };
    const otherHost = { ...good, jid: 'x@elsewhere.example' };
    const r = h.muc.restore([good, noOwner, badConfig, 'garbage', null, otherHost]);
    assert.deepEqual(r.restored, [room('ok')]);
    assert.deepEqual(r.skipped.map((s) => s.index), [1, 2, 3, 4, 5]);
  });

  it('never stores temporary rooms; deletes a room that stops being persistent', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch');
    await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'member', jid: 'hag@example.org' }]));
    assert.equal(h.persistCalls.length, 0);
    await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_persistentroom': '1' }));
    assert.ok(h.stored.has(COVEN));
    await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_persistentroom': '0' }));
    assert.equal(h.stored.has(COVEN), false);
    assert.deepEqual(h.persistCalls.at(-1), { room: COVEN, snapshot: null });
  });

  it('undoes a change that could not be stored and answers internal-server-error, sending nothing else', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_persistentroom': '1' });
    await h.send(join(HAG, room('coven', 'thirdwitch')));
    h.failNextPersist();
    const ban = await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'outcast', jid: 'hag@example.org' }]));
    assert.equal(ban.length, 1);
    assert.deepEqual(errorOf(at(ban, 0)), { type: 'wait', condition: 'internal-server-error' });
    assert.equal(h.muc.room(COVEN)?.affiliationOf('hag@example.org'), 'none');
    assert.equal(h.muc.room(COVEN)?.occupantCount, 2, 'the banned user is still in the room');
    h.failNextPersist();
    const cfg = await h.send(configure(CRONE, COVEN, { 'muc#roomconfig_roomname': 'Lost' }));
    assert.equal(errorOf(at(cfg, 0))?.condition, 'internal-server-error');
    assert.equal(h.muc.room(COVEN)?.config.name, '');
    h.failNextPersist();
    const subj = await h.send(message(CRONE, COVEN, { type: 'groupchat', subject: 'Lost' }));
    assert.deepEqual(subj.map((e) => e.attrs.type), ['error']);
    assert.equal(h.muc.room(COVEN)?.subject, undefined);
    // And then it works.
    assert.equal(at(await h.send(adminSet(CRONE, COVEN, [{ affiliation: 'outcast', jid: 'hag@example.org' }])), 0).attrs.type, 'result');
  });

  it('handles one stanza at a time per room: nothing behind a durable change runs before it is stored', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => { release = r; });
    let n = 0;
    const order: string[] = [];
    const muc = new MucService({ host: HOST, lockRooms: false, defaultConfig: { persistent: true } }, {
      newId: () => `i${++n}`,
      persist: async (_room, snap) => {
        order.push(`persist ${snap?.subject?.text ?? 'room'}`);
        if (snap?.subject) await gate;
      },
    });
    await muc.handle(join(CRONE, room('coven', 'firstwitch')));
    const subject = muc.handle(message(CRONE, COVEN, { type: 'groupchat', subject: 'First' })).then((o) => { order.push('subject sent'); return o; });
    const msg = muc.handle(groupchat(CRONE, COVEN, 'second')).then((o) => { order.push('message sent'); return o; });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['persist room', 'persist First']);
    release();
    await Promise.all([subject, msg]);
    assert.deepEqual(order, ['persist room', 'persist First', 'subject sent', 'message sent']);
  });

  it('on shutdown tells every occupant 110+332 and keeps only persistent rooms', async () => {
    const h = harness();
    await createRoom(h, 'coven', CRONE, 'firstwitch', { 'muc#roomconfig_persistentroom': '1' });
    await createRoom(h, 'heath', HAG, 'thirdwitch');
    const out = h.muc.shutdown();
    assert.deepEqual(out.map((e) => codes(e)), [[110, 332], [110, 332]]);
    assert.ok(out.every((e) => e.attrs.type === 'unavailable' && userX(e)));
    assert.ok(h.muc.room(COVEN));
    assert.equal(h.muc.room(room('heath')), undefined);
    assert.equal(h.muc.room(COVEN)?.occupantCount, 0);
    // Coming back after the restart works as usual.
    assert.ok(selfPresence(await h.send(join(CRONE, room('coven', 'firstwitch'))), CRONE));
    assert.deepEqual(await h.send(presence(HAG, room('heath', 'thirdwitch'), 'unavailable')), []);
  });
});

function defaults() {
  return {
    name: '', description: '', lang: '', persistent: true, public: true, membersOnly: false, moderated: false, passwordProtected: false, password: '',
    maxUsers: null, whois: 'moderators' as const, historyLength: 20, allowInvites: false, changeSubject: false, allowPm: 'anyone' as const,
    presenceBroadcast: ['moderator' as const, 'participant' as const, 'visitor' as const], getMemberList: ['moderator' as const], enableLogging: false, pubsub: '',
  };
}
