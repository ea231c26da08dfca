// Service Administration (XEP-0133) as data: nodes, forms and field vars as the XEP gives them,
// admin rights, the checks of submissions, result forms, announcement and message of the day,
// and one command wired through the ad-hoc engine the way mod_admin_adhoc will.
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import { AdhocEngine, CommandError, NS_COMMANDS } from '../../core/util/adhoc.ts';
import {
  ADMIN_COMMANDS, ADMIN_NODES, NS_ADMIN, adminCommand, announcementMessage, countResult, editMotd, editMotdForm, isAdmin, lastLoginResult, listResult,
  motdDue, motdMessage, newMotd, readAccountJids, readAddUser, readChangePassword, readMaxItems, readModules, readText, reloadModulesForm, rosterResult,
  type AdminScope,
} from '../../core/util/admin-commands.ts';
import { form, parseForm, submit, type FormSpec } from '../../core/util/dataforms.ts';

const parseEl = (xml: string) => parse(xml) as unknown as Element;
const values = (o: Record<string, string | string[]>) => new Map(Object.entries(o).map(([k, v]) => [k, [v].flat()]));
const SCOPE: AdminScope = { isLocalHost: (h) => h === 'shakespeare.lit' || h === 'marlowe.lit', administers: (h) => h === 'shakespeare.lit' };

describe('service administration (XEP-0133)', () => {
  it('uses the node names of the XEP', () => {
    for (const c of ADMIN_COMMANDS.filter((c) => c.key !== 'reloadModules')) assert.ok(c.node.startsWith(`${NS_ADMIN}#`), c.node);
    assert.equal(ADMIN_NODES.addUser, 'http://jabber.org/protocol/admin#add-user');
    assert.equal(ADMIN_NODES.getUserLastLogin, 'http://jabber.org/protocol/admin#get-user-lastlogin');
    assert.equal(ADMIN_NODES.reenableUser, 'http://jabber.org/protocol/admin#reenable-user');
    assert.equal(ADMIN_NODES.getOnlineUsersList, 'http://jabber.org/protocol/admin#get-online-users-list');
    assert.equal(ADMIN_NODES.getRegisteredUsersNum, 'http://jabber.org/protocol/admin#get-registered-users-num');
    assert.equal(new Set(ADMIN_COMMANDS.map((c) => c.node)).size, ADMIN_COMMANDS.length);
  });

  it('builds the add-user form of §4.1 field for field', () => {
    const x = form(adminCommand('addUser').form as FormSpec);
    const f = parseForm(x)!;
    assert.equal(f.formType, NS_ADMIN);
    assert.equal(f.title, 'Adding a User');
    assert.deepEqual([...f.fields.values()].map((fl) => [fl.var, fl.type, fl.label]), [
      ['FORM_TYPE', 'hidden', undefined],
      ['accountjid', 'jid-single', 'The Jabber ID for the account to be added'],
      ['password', 'text-private', 'The password for this account'],
      ['password-verify', 'text-private', 'Retype password'],
      ['email', 'text-single', 'Email address'],
      ['given_name', 'text-single', 'Given name'],
      ['surname', 'text-single', 'Family name'],
    ]);
    assert.match(x.toString(), /<field var="accountjid" type="jid-single" label="The Jabber ID for the account to be added"><required\/><\/field>/);
  });

  it('gives every command the vars of the XEP, and none to those that complete at once', () => {
    const vars = (key: Parameters<typeof adminCommand>[0]) => adminCommand(key).form?.fields.map((f) => `${f.var}:${f.type}${f.required ? '!' : ''}`);
    for (const key of ['deleteUser', 'disableUser', 'reenableUser', 'endUserSession', 'getUserRoster', 'getUserLastLogin'] as const) assert.deepEqual(vars(key), ['accountjids:jid-multi!'], key);
    assert.deepEqual(vars('changeUserPassword'), ['accountjid:jid-single!', 'password:text-private!']);
    assert.deepEqual(vars('announce'), ['announcement:text-multi!']);
    assert.deepEqual(vars('setMotd'), ['motd:text-multi!']);
    assert.deepEqual(vars('getRegisteredUsersList'), ['max_items:list-single']);
    assert.deepEqual(adminCommand('getOnlineUsersList').form?.fields[0]?.options?.map((o) => o.value), ['25', '50', '75', '100', '150', '200', 'none']);
    for (const key of ['getRegisteredUsersNum', 'getOnlineUsersNum', 'getDisabledUsersNum', 'deleteMotd'] as const) assert.equal(adminCommand(key).form, undefined, key);
    assert.deepEqual(editMotdForm('line 1\nline 2').fields[0]?.values, ['line 1', 'line 2'], '§4.25: the current message in the form');
    assert.deepEqual(reloadModulesForm(['roster', 'disco']).fields[0]?.options, [{ value: 'roster' }, { value: 'disco' }]);
  });

  it('knows admins from the global list and per host, comparing prepared bare JIDs', () => {
    const admins = { global: ['Bard@Shakespeare.lit'], hosts: { 'marlowe.lit': ['chris@marlowe.lit'] } };
    assert.equal(isAdmin(admins, 'bard@shakespeare.lit/globe', 'marlowe.lit'), true);
    assert.equal(isAdmin(admins, 'chris@marlowe.lit/study', 'marlowe.lit'), true);
    assert.equal(isAdmin(admins, 'chris@marlowe.lit/study', 'shakespeare.lit'), false, 'a host admin administers that host only');
    assert.equal(isAdmin(admins, 'juliet@shakespeare.lit/balcony', 'shakespeare.lit'), false);
    assert.equal(isAdmin(admins, 'not a jid@', 'shakespeare.lit'), false);
    assert.equal(isAdmin({ global: [] }, 'bard@shakespeare.lit', 'shakespeare.lit'), false);
  });

  it('reads add-user: a bare JID on a host the requester administers, a password, the same one retyped', () => {
    assert.deepEqual(readAddUser(values({ accountjid: 'Juliet@Shakespeare.lit', password: 'R0m30', 'password-verify': 'R0m30', email: 'juliet@capulet.com', given_name: 'Juliet', surname: 'Capulet' }), SCOPE), {
      ok: true, value: { jid: 'juliet@shakespeare.lit', username: 'juliet', host: 'shakespeare.lit', password: 'R0m30', email: 'juliet@capulet.com', givenName: 'Juliet', surname: 'Capulet' },
    });
    const why = (o: Record<string, string>) => {
      const r = readAddUser(values(o), SCOPE);
      assert.ok(!r.ok, JSON.stringify(o));
      return [r.error.condition, r.error.specific, r.error.text];
    };
    assert.deepEqual(why({ password: 'x' }), ['bad-request', 'bad-payload', 'The Jabber ID is required']);
    assert.deepEqual(why({ accountjid: 'juliet@shakespeare.lit' }), ['bad-request', 'bad-payload', 'A password is required']);
    assert.deepEqual(why({ accountjid: 'juliet@shakespeare.lit', password: 'a', 'password-verify': 'b' }), ['bad-request', 'bad-payload', 'The passwords do not match']);
    assert.deepEqual(why({ accountjid: 'juliet@shakespeare.lit/balcony', password: 'a' }), ['bad-request', 'bad-payload', "'juliet@shakespeare.lit/balcony' must be a bare JID (user@host)"]);
    assert.deepEqual(why({ accountjid: 'shakespeare.lit', password: 'a' }), ['bad-request', 'bad-payload', "'shakespeare.lit' is not an account (user@host)"]);
    assert.deepEqual(why({ accountjid: 'romeo@montague.lit', password: 'a' }), ['bad-request', 'bad-payload', 'montague.lit is not served here']);
    assert.deepEqual(why({ accountjid: 'kit@marlowe.lit', password: 'a' }), ['forbidden', undefined, 'You do not administer marlowe.lit']);
    assert.deepEqual(why({ accountjid: 'a@b@c', password: 'a' }), ['bad-request', 'bad-payload', "'a@b@c' is not a valid JID"]);
  });

  it('reads accountjids (bare; full ones too for end-user-session), change-user-password, max_items, texts, modules', () => {
    const r = readAccountJids(values({ accountjids: ['juliet@shakespeare.lit', 'Juliet@shakespeare.lit', 'romeo@shakespeare.lit'] }), SCOPE);
    assert.deepEqual(r.ok && r.value.map((a) => a.jid), ['juliet@shakespeare.lit', 'romeo@shakespeare.lit']);
    assert.equal(readAccountJids(values({ accountjids: 'juliet@shakespeare.lit/balcony' }), SCOPE).ok, false);
    const full = readAccountJids(values({ accountjids: 'juliet@shakespeare.lit/balcony' }), SCOPE, { allowFull: true });
    assert.deepEqual(full.ok && full.value, [{ jid: 'juliet@shakespeare.lit/balcony', username: 'juliet', host: 'shakespeare.lit', resource: 'balcony' }]);
    assert.equal(readAccountJids(values({ accountjids: [] }), SCOPE).ok, false);
    assert.deepEqual(readChangePassword(values({ accountjid: 'juliet@shakespeare.lit', password: 'V3r0n4' }), SCOPE), { ok: true, value: { jid: 'juliet@shakespeare.lit', username: 'juliet', host: 'shakespeare.lit', password: 'V3r0n4' } });
    assert.equal(readChangePassword(values({ accountjid: 'juliet@shakespeare.lit', password: '' }), SCOPE).ok, false);
    assert.deepEqual(readMaxItems(values({ max_items: '100' })), { ok: true, value: 100 });
    assert.deepEqual(readMaxItems(values({ max_items: 'none' })), { ok: true, value: undefined });
    assert.deepEqual(readMaxItems(values({})), { ok: true, value: undefined });
    assert.equal(readMaxItems(values({ max_items: '-3' })).ok, false);
    assert.deepEqual(readText(values({ announcement: ['Attention! Going down', 'in 2 minutes.'] }), 'announcement'), { ok: true, value: 'Attention! Going down\nin 2 minutes.' });
    assert.equal(readText(values({ motd: ['', ' '] }), 'motd').ok, false);
    assert.deepEqual(readModules(values({ modules: ['roster', 'roster'] }), ['roster', 'disco']), { ok: true, value: ['roster'] });
    assert.equal(readModules(values({ modules: ['nope'] }), ['roster']).ok, false);
  });

  it('builds the result forms: counts, lists truncated to max_items, last login (XEP-0082), roster', () => {
    const count = parseForm(countResult('onlineusersnum', 79))!;
    assert.deepEqual([count.type, count.formType, count.fields.get('onlineusersnum')?.values], ['result', NS_ADMIN, ['79']]);
    const list = parseForm(listResult('registereduserjids', ['a@x', 'b@x', 'c@x'], 2))!;
    assert.deepEqual([list.fields.get('registereduserjids')?.type, list.fields.get('registereduserjids')?.values], ['jid-multi', ['a@x', 'b@x']]);
    const last = parseForm(lastLoginResult('juliet@shakespeare.lit', new Date(Date.UTC(2003, 11, 19, 17, 58, 35, 120))))!;
    assert.deepEqual(last.fields.get('lastlogin')?.values, ['2003-12-19T17:58:35Z']);
    assert.deepEqual(parseForm(lastLoginResult('juliet@shakespeare.lit', undefined))!.fields.get('lastlogin')?.values, []);
    const roster = rosterResult('juliet@shakespeare.lit', [{ jid: 'romeo@example.net', name: 'Romeo', subscription: 'both', groups: ['Friends', 'Lovers'] }, { jid: 'nurse@example.org', subscription: 'none', ask: true, groups: [] }]);
    assert.match(roster.toString(), /<field var="accountjids" type="jid-multi"><value>juliet@shakespeare.lit<\/value><\/field><query xmlns="jabber:iq:roster"><item jid="romeo@example.net" subscription="both" name="Romeo"><group>Friends<\/group><group>Lovers<\/group><\/item><item jid="nurse@example.org" subscription="none" ask="subscribe"\/><\/query><\/x>$/);
  });

  it('sends announcements as headlines and the message of the day once per user until a new one is set', () => {
    assert.equal(announcementMessage('shakespeare.lit', 'juliet@shakespeare.lit/balcony', 'Going down').toString(),
      '<message from="shakespeare.lit" to="juliet@shakespeare.lit/balcony" type="headline"><subject>Announcement</subject><body>Going down</body></message>');
    assert.match(motdMessage('shakespeare.lit', 'juliet@shakespeare.lit/balcony', 'Re-opening').toString(), /<body>Re-opening<\/body>/);
    const now = new Date(Date.UTC(2026, 0, 1));
    const m1 = newMotd('Globe re-opens', now, 'm1');
    assert.deepEqual(m1, { id: 'm1', text: 'Globe re-opens', setAt: '2026-01-01T00:00:00Z' });
    assert.equal(motdDue(m1, undefined), true);
    assert.equal(motdDue(m1, 'm1'), false, 'seen once');
    const fixed = editMotd(m1, 'The Globe re-opens', now, 'm2');
    assert.deepEqual([fixed.id, fixed.text], ['m1', 'The Globe re-opens'], 'a correction is not sent again');
    assert.equal(editMotd(undefined, 'New', now, 'm3').id, 'm3', 'editing when none is set sets one');
    assert.equal(motdDue(newMotd('Another', now, 'm4'), 'm1'), true);
    assert.equal(motdDue(undefined, 'm1'), false, 'deleted');
  });

  it('runs add-user through the ad-hoc engine as mod_admin_adhoc will wire it', async () => {
    const created: string[] = [];
    const admins = { global: ['bard@shakespeare.lit'] };
    const spec = adminCommand('addUser');
    const engine = new AdhocEngine();
    engine.register({
      node: spec.node, name: spec.name,
      allowed: (jid) => isAdmin(admins, jid, 'shakespeare.lit'),
      stages: [{ form: spec.form as FormSpec }],
      run: (ctx) => {
        const r = readAddUser(ctx.values, { isLocalHost: (h) => h === 'shakespeare.lit', administers: (h) => isAdmin(admins, ctx.requester, h) });
        if (!r.ok) throw new CommandError(r.error);
        if (created.includes(r.value.jid)) throw new CommandError({ type: 'cancel', condition: 'conflict', text: 'The account exists' });
        created.push(r.value.jid);
        return { notes: [{ type: 'info', text: `Account ${r.value.jid} created` }] };
      },
    });
    const cmd = (from: string, x = '', sessionid?: string) => ({
      from, to: 'shakespeare.lit',
      command: parseEl(`<command xmlns='${NS_COMMANDS}' node='${spec.node}'${sessionid ? ` sessionid='${sessionid}'` : ''}>${x}</command>`),
    });
    const items = await engine.discoItems('juliet@shakespeare.lit/balcony', 'shakespeare.lit');
    assert.equal(items.getChildren('item').length, 0, 'a non-admin does not see admin commands');
    const denied = await engine.handle(cmd('juliet@shakespeare.lit/balcony'));
    assert.ok(!denied.ok && denied.error.condition === 'forbidden');

    const first = await engine.handle(cmd('bard@shakespeare.lit/globe'));
    assert.ok(first.ok);
    const sessionid = first.payload.attrs.sessionid as string;
    const filled = submit(NS_ADMIN, { accountjid: 'juliet@shakespeare.lit', password: 'R0m30', 'password-verify': 'R0m30' }).toString();
    const done = await engine.handle(cmd('bard@shakespeare.lit/globe', filled, sessionid));
    assert.ok(done.ok && done.status === 'completed');
    assert.deepEqual(created, ['juliet@shakespeare.lit']);
    const again = await engine.handle(cmd('bard@shakespeare.lit/globe'));
    assert.ok(again.ok);
    const conflict = await engine.handle(cmd('bard@shakespeare.lit/globe', filled, again.payload.attrs.sessionid as string));
    assert.ok(!conflict.ok && conflict.error.condition === 'conflict');
  });
});
