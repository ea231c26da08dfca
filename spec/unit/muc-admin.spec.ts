// MUC engine: the role and affiliation matrix of XEP-0045 §5 as the room enforces it (§8.2–8.5,
// §9.1–9.8, §10.3–10.8), kick and ban flows with their status codes (307, 301, 321, 322), reasons
// and actors, the lists, member registration (§7.10), destroying (§10.9) and voice requests.
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import { submit } from '../../core/util/dataforms.ts';
import { checkAffiliationChange, checkRoleChange, defaultRole, roleAfterAffiliationChange } from '../../modules/mod_muc/roles.ts';
import {
  adminGet, adminSet, assertError, codes, configure, createRoom, errorOf, groupchat, harness, iq, item, join, message, NS_ADMIN, NS_OWNER,
  only, presence, room, selfPresence, to, userX, type Harness,
} from '../helpers/muc.ts';
import { at, must } from '../helpers/assert.ts';

const COVEN = room('coven');
const OWNER = 'owner@example.org/a';
const OWNER2 = 'owner2@example.org/a';
const ADMIN = 'admin@example.org/a';
const ADMIN2 = 'admin2@example.org/a';
const MEMBER = 'member@example.org/a';
const NONE = 'none@example.org/a';
const NONE2 = 'none2@example.org/a';
const bareOf = (j: string) => j.replace(/\/.*$/, '');
const NICK: Record<string, string> = { [OWNER]: 'owner', [OWNER2]: 'owner2', [ADMIN]: 'admin', [ADMIN2]: 'admin2', [MEMBER]: 'member', [NONE]: 'none', [NONE2]: 'none2' };
const nickOf = (j: string) => must(NICK[j], `a nick for ${j}`);

/** A room with an occupant of every affiliation (moderated: unaffiliated users are visitors). */
async function cast(config: Record<string, string | boolean> = {}): Promise<Harness> {
  const h = harness();
  await createRoom(h, 'coven', OWNER, 'owner', config);
  await h.send(adminSet(OWNER, COVEN, [
    { affiliation: 'owner', jid: bareOf(OWNER2) }, { affiliation: 'admin', jid: bareOf(ADMIN) }, { affiliation: 'admin', jid: bareOf(ADMIN2) },
    { affiliation: 'member', jid: bareOf(MEMBER) },
  ]));
  for (const j of [OWNER2, ADMIN, ADMIN2, MEMBER, NONE, NONE2]) await h.send(join(j, room('coven', nickOf(j))));
  return h;
}

const result = (out: Element[], jid: string) => to(out, jid).find((e) => e.name === 'iq');

describe('MUC: the role and affiliation matrix (§5)', () => {
  it('gives the initial roles of §5.1.2', () => {
    assert.deepEqual(['owner', 'admin', 'member', 'none'].map((a) => defaultRole(a as 'owner', false)), ['moderator', 'moderator', 'participant', 'participant']);
    assert.deepEqual(['owner', 'admin', 'member', 'none'].map((a) => defaultRole(a as 'owner', true)), ['moderator', 'moderator', 'participant', 'visitor']);
    assert.equal(defaultRole('outcast', false), undefined);
    assert.equal(roleAfterAffiliationChange('participant', 'none', 'admin', { moderated: false, membersOnly: false }), 'moderator');
    assert.equal(roleAfterAffiliationChange('moderator', 'admin', 'none', { moderated: true, membersOnly: false }), 'visitor');
    assert.equal(roleAfterAffiliationChange('visitor', 'none', 'member', { moderated: true, membersOnly: false }), 'participant');
    assert.equal(roleAfterAffiliationChange('participant', 'member', 'none', { moderated: false, membersOnly: true }), undefined);
    assert.equal(checkAffiliationChange('admin', 'owner', 'outcast')?.condition, 'not-allowed');
    assert.equal(checkRoleChange({ role: 'participant', affiliation: 'member' }, { role: 'visitor', affiliation: 'none' }, 'participant')?.condition, 'forbidden');
  });

  // [actor, target, new role, expected condition or 'ok'] in a moderated room; `none2` is made a
  // moderator first, so unaffiliated moderators are covered.
  const roleCases: [string, string, string, string][] = [
    [MEMBER, NONE, 'none', 'forbidden'], // a participant is no moderator
    [NONE2, NONE, 'none', 'ok'], // any moderator kicks a visitor
    [NONE2, MEMBER, 'none', 'not-allowed'], // …but not a user with a higher affiliation
    [NONE2, ADMIN, 'none', 'not-allowed'],
    [ADMIN, OWNER, 'none', 'not-allowed'], // owners cannot be kicked by admins
    [ADMIN, ADMIN2, 'none', 'ok'],
    [OWNER2, OWNER, 'none', 'ok'],
    [OWNER, ADMIN, 'visitor', 'not-allowed'], // nobody silences an admin (§8.4)
    [NONE2, NONE, 'participant', 'ok'], // grant voice (§8.3)
    [NONE2, MEMBER, 'visitor', 'not-allowed'],
    [ADMIN, MEMBER, 'visitor', 'ok'],
    [NONE2, NONE, 'moderator', 'forbidden'], // only admins grant moderation (§9.6)
    [ADMIN, MEMBER, 'moderator', 'ok'],
    [ADMIN, OWNER, 'participant', 'not-allowed'], // §9.7: not from an admin or owner
    [OWNER, ADMIN, 'participant', 'not-allowed'],
    [ADMIN, NONE2, 'participant', 'ok'], // revoke moderation of an unaffiliated moderator
  ];
  for (const [actor, target, role, expected] of roleCases) {
    it(`${nickOf(actor)} setting ${nickOf(target)}'s role to ${role}: ${expected}`, async () => {
      const h = await cast({ 'muc#roomconfig_moderatedroom': true });
      await h.send(adminSet(OWNER, COVEN, [{ nick: 'none2', role: 'moderator' }]));
      const out = await h.send(adminSet(actor, COVEN, [{ nick: nickOf(target), role }]));
      const r = result(out, actor)!;
      if (expected === 'ok') {
        assert.equal(r.attrs.type, 'result', r.toString());
        const seen = to(out, OWNER2 === target ? OWNER : OWNER2).find((e) => e.name === 'presence');
        assert.equal(item(seen!).role, role, 'the room sees the new role');
      } else {
        assert.equal(errorOf(r)?.condition, expected, r.toString());
        assert.equal(out.length, 1, 'nothing else happens');
      }
    });
  }

  // [actor, jid, new affiliation, expected]
  const affCases: [string, string, string, string][] = [
    [MEMBER, bareOf(NONE), 'member', 'forbidden'],
    [NONE, bareOf(NONE2), 'outcast', 'forbidden'],
    [ADMIN, bareOf(NONE), 'member', 'ok'],
    [ADMIN, bareOf(MEMBER), 'none', 'ok'],
    [ADMIN, bareOf(MEMBER), 'outcast', 'ok'],
    [ADMIN, bareOf(NONE), 'admin', 'forbidden'], // §10.6 only owners grant admin
    [ADMIN, bareOf(NONE), 'owner', 'forbidden'],
    [ADMIN, bareOf(ADMIN2), 'none', 'not-allowed'],
    [ADMIN, bareOf(OWNER), 'outcast', 'not-allowed'], // §9.1
    [ADMIN, bareOf(ADMIN), 'outcast', 'conflict'], // §9.1 self-ban
    [OWNER, bareOf(OWNER), 'outcast', 'conflict'],
    [OWNER, bareOf(ADMIN), 'member', 'ok'],
    [OWNER, bareOf(OWNER2), 'admin', 'ok'], // §10.4 revoke another owner
    [OWNER, bareOf(OWNER), 'admin', 'ok'], // allowed: another owner remains
    [OWNER, bareOf(NONE), 'owner', 'ok'],
  ];
  for (const [actor, jid, aff, expected] of affCases) {
    it(`${nickOf(actor)} setting ${jid}'s affiliation to ${aff}: ${expected}`, async () => {
      const h = await cast();
      const out = await h.send(adminSet(actor, COVEN, [{ affiliation: aff, jid }]));
      const r = result(out, actor)!;
      if (expected === 'ok') assert.equal(r.attrs.type, 'result', r.toString());
      else assert.equal(errorOf(r)?.condition, expected, r.toString());
    });
  }

  it('refuses to let the last owner give up ownership (§10.4: conflict)', async () => {
    const h = harness();
    await createRoom(h, 'coven', OWNER, 'owner');
    assertError(await h.send(adminSet(OWNER, COVEN, [{ affiliation: 'admin', jid: bareOf(OWNER) }])), OWNER, 'conflict', 'cancel');
    assertError(await h.send(configure(OWNER, COVEN, { 'muc#roomconfig_roomowners': [] })), OWNER, 'not-acceptable');
  });

  it('applies nothing when one item of a set is refused (§9.2), and refuses role and affiliation in one item', async () => {
    const h = await cast();
    const out = await h.send(adminSet(ADMIN, COVEN, [{ affiliation: 'outcast', jid: bareOf(NONE) }, { affiliation: 'outcast', jid: bareOf(OWNER) }]));
    assert.equal(errorOf(result(out, ADMIN)!)?.condition, 'not-allowed');
    assert.equal(h.muc.room(COVEN)?.affiliationOf(bareOf(NONE)), 'none', 'the permitted ban was not applied either');
    assertError(await h.send(adminSet(OWNER, COVEN, [{ nick: 'none', role: 'none', affiliation: 'outcast' }])), OWNER, 'bad-request', 'modify');
  });
});

describe('MUC: kicking and banning', () => {
  it('kicks (§8.2): 110+307 with actor and reason to the kicked, then the result, then 307 to the others', async () => {
    const h = await cast();
    const out = await h.send(adminSet(ADMIN, COVEN, [{ nick: 'none', role: 'none' }], ['Avaunt, you cullion!']));
    const order = out.map((e) => `${e.name}>${e.attrs.to}`);
    const kicked = only(out, NONE);
    assert.equal(kicked.attrs.type, 'unavailable');
    assert.deepEqual(codes(kicked), [110, 307]);
    const it = userX(kicked)!.getChild('item')!;
    assert.equal(it.getChild('actor')?.attrs.nick, 'admin');
    assert.equal(it.getChildText('reason'), 'Avaunt, you cullion!');
    assert.ok(order.indexOf(`presence>${NONE}`) < order.indexOf(`iq>${ADMIN}`), 'kicked first');
    assert.ok(order.indexOf(`iq>${ADMIN}`) < order.indexOf(`presence>${MEMBER}`), 'then the moderator, then the others');
    assert.deepEqual(codes(only(out, MEMBER)), [307]);
    assert.equal(item(only(out, MEMBER)).role, 'none');
    assert.equal(h.muc.room(COVEN)?.occupantCount, 6);
    // Kicked, not banned: may come back.
    const back = await h.send(join(NONE, room('coven', 'none')));
    assert.deepEqual(codes(selfPresence(back, NONE)), [110]);
  });

  it('bans (§9.1): result, 301 to the banned and the others, reserved nick dropped, reason in the ban list', async () => {
    const h = await cast();
    await h.send(adminSet(OWNER, COVEN, [{ affiliation: 'member', jid: bareOf(NONE), nick: 'none' }]));
    const out = await h.send(adminSet(ADMIN, COVEN, [{ affiliation: 'outcast', jid: bareOf(NONE) }], ['Treason']));
    assert.equal(at(out, 0).name, 'iq');
    assert.equal(at(out, 0).attrs.type, 'result');
    const banned = only(out, NONE);
    assert.deepEqual(codes(banned), [110, 301]);
    assert.equal(item(banned).affiliation, 'outcast');
    assert.equal(userX(banned)?.getChild('item')?.getChildText('reason'), 'Treason');
    assert.deepEqual(codes(only(out, MEMBER)), [301]);
    assert.equal(h.muc.room(COVEN)?.reservedNick(bareOf(NONE)), undefined);
    const list = await h.send(adminGet(ADMIN, COVEN, { affiliation: 'outcast' }));
    const items = at(list, 0).getChild('query', NS_ADMIN)!.getChildren('item');
    assert.equal(items.length, 1);
    assert.deepEqual(at(items, 0).attrs, { affiliation: 'outcast', jid: bareOf(NONE) });
    assert.equal(at(items, 0).getChildText('reason'), 'Treason');
    assertError(await h.send(join(NONE, room('coven', 'none'))), NONE, 'forbidden');
    // Removing the ban (§9.2 delta with affiliation none).
    await h.send(adminSet(ADMIN, COVEN, [{ affiliation: 'none', jid: bareOf(NONE) }]));
    assert.ok(selfPresence(await h.send(join(NONE, room('coven', 'none'))), NONE));
  });

  it('removes a non-member from a members-only room with 321 (§9.4) and non-members when a room becomes members-only with 322', async () => {
    const h = await cast();
    const out = await h.send(configure(OWNER, COVEN, { 'muc#roomconfig_membersonly': true }));
    assert.deepEqual(codes(only(out.filter((e) => e.name === 'presence'), NONE)), [110, 322]);
    assert.ok(to(out, MEMBER).some((e) => e.name === 'presence' && codes(e).includes(322) && e.attrs.from === room('coven', 'none')));
    assert.equal(h.muc.room(COVEN)?.occupantCount, 5);
    const revoked = await h.send(adminSet(ADMIN, COVEN, [{ affiliation: 'none', jid: bareOf(MEMBER) }]));
    const self = only(revoked.filter((e) => e.name === 'presence'), MEMBER);
    assert.equal(self.attrs.type, 'unavailable', 'only the removal, no affiliation update first');
    assert.deepEqual(codes(self), [110, 321]);
  });

  it('announces affiliation changes of occupants with the new role (§9.3, §10.6, §10.7)', async () => {
    const h = await cast({ 'muc#roomconfig_moderatedroom': true });
    const m = await h.send(adminSet(ADMIN, COVEN, [{ affiliation: 'member', jid: bareOf(NONE) }]));
    assert.deepEqual({ a: item(only(m, MEMBER)).affiliation, r: item(only(m, MEMBER)).role }, { a: 'member', r: 'participant' }, 'a visitor made member gets voice');
    const a = await h.send(adminSet(OWNER, COVEN, [{ affiliation: 'admin', jid: bareOf(NONE) }]));
    assert.deepEqual({ a: item(only(a, MEMBER)).affiliation, r: item(only(a, MEMBER)).role }, { a: 'admin', r: 'moderator' });
    const n = await h.send(adminSet(OWNER, COVEN, [{ affiliation: 'none', jid: bareOf(NONE) }]));
    assert.deepEqual({ a: item(only(n, MEMBER)).affiliation, r: item(only(n, MEMBER)).role }, { a: 'none', r: 'visitor' });
  });

  it('invites a user added to the member list of a members-only room (§9.5)', async () => {
    const h = harness();
    await createRoom(h, 'coven', OWNER, 'owner', { 'muc#roomconfig_membersonly': true, 'muc#roomconfig_passwordprotectedroom': true, 'muc#roomconfig_roomsecret': 'pw' });
    const out = await h.send(adminSet(OWNER, COVEN, [{ affiliation: 'member', jid: 'hecate@example.org' }]));
    const inv = only(out, 'hecate@example.org');
    assert.equal(inv.attrs.from, COVEN);
    assert.equal(userX(inv)?.getChild('invite')?.attrs.from, bareOf(OWNER));
    assert.equal(userX(inv)?.getChildText('password'), 'pw');
  });
});

describe('MUC: lists (§8.5, §9.5, §9.8, §10.5, §10.8)', () => {
  it('gives role lists to moderators with nick, role, affiliation and full JID', async () => {
    const h = await cast();
    const out = await h.send(adminGet(ADMIN, COVEN, { role: 'moderator' }));
    const items = at(out, 0).getChild('query', NS_ADMIN)!.getChildren('item').map((i) => i.attrs);
    assert.deepEqual(items.map((i) => i.nick).sort(), ['admin', 'admin2', 'owner', 'owner2']);
    assert.ok(items.every((i) => i.role === 'moderator' && i.jid?.includes('/') && i.affiliation));
    assertError(await h.send(adminGet(MEMBER, COVEN, { role: 'participant' })), MEMBER, 'forbidden', 'auth');
  });

  it('gives affiliation lists by bare JID with reserved nicks, to whom the room allows', async () => {
    const h = await cast();
    await h.send(adminSet(ADMIN, COVEN, [{ affiliation: 'member', jid: 'hecate@example.org', nick: 'Hecate' }]));
    const members = await h.send(adminGet(ADMIN, COVEN, { affiliation: 'member' }));
    const items = at(members, 0).getChild('query', NS_ADMIN)!.getChildren('item').map((i) => i.attrs);
    assert.deepEqual(items, [{ affiliation: 'member', jid: bareOf(MEMBER) }, { affiliation: 'member', jid: 'hecate@example.org', nick: 'Hecate' }]);
    // Semi-anonymous room: members may not see the member list, nor non-owners the owner list.
    assertError(await h.send(adminGet(MEMBER, COVEN, { affiliation: 'member' })), MEMBER, 'forbidden');
    assertError(await h.send(adminGet(ADMIN, COVEN, { affiliation: 'owner' })), ADMIN, 'forbidden');
    assertError(await h.send(adminGet(MEMBER, COVEN, { affiliation: 'outcast' })), MEMBER, 'forbidden');
    // Non-anonymous room: they may.
    await h.send(configure(OWNER, COVEN, { 'muc#roomconfig_whois': 'anyone' }));
    assert.equal(at(await h.send(adminGet(MEMBER, COVEN, { affiliation: 'member' })), 0).attrs.type, 'result');
    assert.equal(at(await h.send(adminGet(ADMIN, COVEN, { affiliation: 'owner' })), 0).attrs.type, 'result');
    assertError(await h.send(adminGet(OWNER, COVEN, { affiliation: 'none' })), OWNER, 'bad-request');
    // §9.5: an empty nick unsets the reserved nick, the membership stays.
    await h.send(adminSet(ADMIN, COVEN, [{ affiliation: 'member', jid: 'hecate@example.org', nick: '' }]));
    assert.equal(h.muc.room(COVEN)?.reservedNick('hecate@example.org'), undefined);
    assert.equal(h.muc.room(COVEN)?.affiliationOf('hecate@example.org'), 'member');
    // A member may not edit other members' reserved nicks.
    assertError(await h.send(adminSet(MEMBER, COVEN, [{ affiliation: 'member', jid: 'hecate@example.org', nick: 'x' }])), MEMBER, 'forbidden');
  });
});

describe('MUC: registration (§7.10) and reserved nicks (§7.12)', () => {
  const register = (from: string, fields?: Record<string, string>) => {
    const q = new Element('query', { xmlns: 'jabber:iq:register' });
    if (fields) q.cnode(submit('http://jabber.org/protocol/muc#register', fields));
    return iq(from, COVEN, fields ? 'set' : 'get', q);
  };
  const roomUser = (from: string) => iq(from, COVEN, 'get', new Element('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'x-roomuser-item' }));

  it('registers a user as a member with a reserved nick, which others then cannot take', async () => {
    const h = harness();
    await createRoom(h, 'coven', OWNER, 'owner');
    const formOut = await h.send(register(NONE));
    const f = at(formOut, 0).getChild('query', 'jabber:iq:register')!.getChild('x', 'jabber:x:data')!;
    assert.ok(f.getChildren('field').some((fl) => fl.attrs.var === 'muc#register_roomnick' && fl.getChild('required')));
    assertError(await h.send(iq(NONE, COVEN, 'set', new Element('query', { xmlns: 'jabber:iq:register' }))), NONE, 'bad-request');
    assert.equal(at(await h.send(register(NONE, { 'muc#register_roomnick': 'thirdwitch' })), 0).attrs.type, 'result');
    assert.equal(h.muc.room(COVEN)?.affiliationOf(bareOf(NONE)), 'member');
    const again = await h.send(register(NONE));
    const q = at(again, 0).getChild('query', 'jabber:iq:register')!;
    assert.ok(q.getChild('registered'));
    assert.equal(q.getChildText('username'), 'thirdwitch');
    const nick = await h.send(roomUser(NONE));
    assert.equal(at(nick, 0).getChild('query')?.getChild('identity')?.attrs.name, 'thirdwitch');
    assert.equal(at(await h.send(roomUser(MEMBER)), 0).getChild('query')?.children.length, 0, 'no reserved nick: empty result');
    assertError(await h.send(register(MEMBER, { 'muc#register_roomnick': 'ThirdWitch' })), MEMBER, 'conflict', 'cancel');
    assertError(await h.send(join(MEMBER, room('coven', 'thirdwitch'))), MEMBER, 'conflict');
  });

  it('refuses registration with members-only rooms and banned users (not-allowed), and with rooms that do not exist (item-not-found)', async () => {
    const h = harness();
    await createRoom(h, 'coven', OWNER, 'owner', { 'muc#roomconfig_membersonly': true });
    assertError(await h.send(register(NONE)), NONE, 'not-allowed', 'cancel');
    assertError(await h.send(iq(NONE, room('heath'), 'get', new Element('query', { xmlns: 'jabber:iq:register' }))), NONE, 'item-not-found');
  });
});

describe('MUC: destroying a room (§10.9)', () => {
  it('tells every occupant with <destroy/> (alternate venue, reason, password), answers the owner, forgets the stored room', async () => {
    const h = await cast({ 'muc#roomconfig_persistentroom': true });
    assert.ok(h.stored.has(COVEN));
    const q = new Element('query', { xmlns: NS_OWNER });
    const d = q.c('destroy', { jid: room('heath') });
    d.c('reason').t('Macbeth doth come.');
    d.c('password').t('cauldronburn');
    assertError(await h.send(iq(ADMIN, COVEN, 'set', q)), ADMIN, 'forbidden', 'auth');
    const out = await h.send(iq(OWNER, COVEN, 'set', q));
    assert.equal(result(out, OWNER)?.attrs.type, 'result');
    for (const j of [OWNER, OWNER2, ADMIN, ADMIN2, MEMBER, NONE, NONE2]) {
      const p = only(out.filter((e) => e.name === 'presence'), j);
      assert.equal(p.attrs.type, 'unavailable');
      assert.deepEqual({ a: item(p).affiliation, r: item(p).role }, { a: 'none', r: 'none' });
      const destroy = userX(p)?.getChild('destroy');
      assert.equal(destroy?.attrs.jid, room('heath'));
      assert.equal(destroy?.getChildText('reason'), 'Macbeth doth come.');
    }
    assert.equal(h.muc.room(COVEN), undefined);
    assert.equal(h.stored.has(COVEN), false);
    assert.deepEqual(h.persistCalls.at(-1), { room: COVEN, snapshot: null });
  });
});

describe('MUC: voice requests (§7.13, §8.6)', () => {
  it('sends a visitor\'s request to the moderators and grants voice when one approves', async () => {
    const h = await cast({ 'muc#roomconfig_moderatedroom': true });
    assertError(await h.send(groupchat(NONE, COVEN, 'may I?')), NONE, 'forbidden', 'auth');
    const req = message(NONE, COVEN, { children: [submit('http://jabber.org/protocol/muc#request', { 'muc#role': 'participant' })] });
    const out = await h.send(req);
    const forms = out.filter((e) => e.getChild('x', 'jabber:x:data'));
    assert.deepEqual(forms.map((e) => e.attrs.to).sort(), [ADMIN, ADMIN2, OWNER, OWNER2].sort());
    const fields = at(forms, 0).getChild('x', 'jabber:x:data')!.getChildren('field');
    assert.equal(fields.find((f) => f.attrs.var === 'muc#roomnick')?.getChildText('value'), 'none');
    const approve = message(ADMIN, COVEN, { children: [submit('http://jabber.org/protocol/muc#request', {
      'muc#role': 'participant', 'muc#roomnick': 'none', 'muc#request_allow': 'true',
    })] });
    const granted = await h.send(approve);
    assert.equal(item(only(granted, MEMBER)).role, 'participant');
    assert.equal(to(await h.send(groupchat(NONE, COVEN, 'thank you')), MEMBER).length, 1);
    // The voice given in a moderated room is remembered across visits (§5.1).
    await h.send(presence(NONE, room('coven', 'none'), 'unavailable'));
    assert.equal(item(selfPresence(await h.send(join(NONE, room('coven', 'none'))), NONE)).role, 'participant');
  });
});
