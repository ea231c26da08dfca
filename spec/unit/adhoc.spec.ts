// Ad-Hoc Commands (XEP-0050 1.3): the command engine — sessions, stages and their actions, prev
// with remembered answers, expiry, the §4.4 errors, disco listing filtered by rights.
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import {
  AdhocEngine, CommandError, NS_COMMANDS, adhocError, adhocErrorReply, adhocResultReply,
  type CommandContext, type CommandDefinition, type CommandRequest, type CommandResult,
} from '../../core/util/adhoc.ts';
import { NS_DATA, parseForm, submit } from '../../core/util/dataforms.ts';
import { CoreError } from '../../core/util/errors.ts';
import { at } from '../helpers/assert.ts';

const parseEl = (xml: string) => parse(xml) as unknown as Element;
const HOST = 'example.org';
const ADMIN = 'admin@example.org/desk';
const USER = 'user@example.org/phone';
const isAdmin = (jid: string) => jid.startsWith('admin@');

/** A `<command/>` request; `form` values become a submitted data form. */
function req(from: string, node: string, opts: { action?: string; sessionid?: string; form?: Record<string, string | string[]>; formType?: string; lang?: string; x?: string } = {}): CommandRequest {
  const attrs = [`xmlns='${NS_COMMANDS}'`, `node='${node}'`];
  if (opts.action) attrs.push(`action='${opts.action}'`);
  if (opts.sessionid !== undefined) attrs.push(`sessionid='${opts.sessionid}'`);
  const x = opts.x ?? (opts.form ? submit(opts.formType, opts.form).toString() : '');
  return { from, to: HOST, ...(opts.lang ? { lang: opts.lang } : {}), command: parseEl(`<command ${attrs.join(' ')}>${x}</command>`) };
}

function ok(r: CommandResult): Element {
  if (!r.ok) assert.fail(`expected a result, got ${JSON.stringify(r.error)}`);
  return r.payload;
}

function err(r: CommandResult) {
  if (r.ok) assert.fail(`expected an error, got ${r.payload.toString()}`);
  return r.error;
}

const formOf = (payload: Element) => parseForm(payload.getChild('x', NS_DATA)!)!;
const actionsOf = (payload: Element) => {
  const a = payload.getChild('actions', NS_COMMANDS);
  return a ? { execute: a.attrs.execute as string, allowed: a.children.map((c) => (c as Element).name) } : undefined;
};

/** A three-stage wizard whose second form depends on the first answer. */
function wizard(seen: CommandContext[] = []): CommandDefinition {
  return {
    node: 'config',
    name: 'Configure Service',
    allowed: isAdmin,
    stages: [
      { form: { title: 'Service', fields: [{ var: 'service', type: 'list-single', required: true, options: [{ value: 'httpd' }, { value: 'jabberd' }] }, { var: 'secret', type: 'text-private' }] } },
      {
        form: (ctx) => ({ title: `Run modes of ${ctx.values.get('service')?.[0]}`, fields: [{ var: 'runlevel', type: 'list-multi', options: [{ value: '3' }, { value: '5' }] }, { var: 'owner', type: 'jid-single' }] }),
        validate: (values) => (values.get('runlevel')?.includes('5') && !values.get('owner')?.length ? 'Run level 5 needs an owner' : undefined),
      },
      { form: { title: 'State', fields: [{ var: 'state', type: 'list-single', required: true, options: [{ value: 'on' }, { value: 'off' }] }] } },
    ],
    run: (ctx) => {
      seen.push(ctx);
      return { notes: [{ type: 'info', text: `Service '${ctx.values.get('service')?.[0]}' has been configured.` }] };
    },
  };
}

describe('ad-hoc commands (XEP-0050)', () => {
  it('lists by disco#items only the commands the requester may run, each as an item of the responder', async () => {
    const engine = new AdhocEngine();
    engine.register(wizard());
    engine.register({ node: 'ping', name: 'Ping', allowed: () => true, stages: [], run: () => ({}) });
    const forAdmin = await engine.discoItems(ADMIN, HOST);
    assert.equal(forAdmin.attrs.node, NS_COMMANDS);
    assert.deepEqual(forAdmin.getChildren('item').map((i) => [i.attrs.jid, i.attrs.node, i.attrs.name]), [[HOST, 'config', 'Configure Service'], [HOST, 'ping', 'Ping']]);
    const forUser = await engine.discoItems(USER, HOST);
    assert.deepEqual(forUser.getChildren('item').map((i) => i.attrs.node), ['ping']);
  });

  it('describes a command node by disco#info, forbidden to those who may not run it (§2.2)', async () => {
    const engine = new AdhocEngine();
    engine.register(wizard());
    const info = await engine.discoInfo('config', ADMIN);
    assert.ok(info?.ok);
    const q = info.query;
    assert.deepEqual(q.getChildren('identity').map((i) => [i.attrs.category, i.attrs.type, i.attrs.name]), [['automation', 'command-node', 'Configure Service']]);
    assert.deepEqual(q.getChildren('feature').map((f) => f.attrs.var), [NS_COMMANDS, NS_DATA]);
    assert.deepEqual(await engine.discoInfo('config', USER), { ok: false, error: { type: 'cancel', condition: 'forbidden' } });
    assert.equal(await engine.discoInfo('nope', ADMIN), undefined);
    const list = await engine.discoInfo(NS_COMMANDS, USER);
    assert.ok(list?.ok);
    assert.equal(list.query.getChild('identity')?.attrs.type, 'command-list');
  });

  it('completes a command without stages at once, with a sessionid, notes and payload', async () => {
    const engine = new AdhocEngine();
    engine.register({
      node: 'list', name: 'List', allowed: () => true, stages: [],
      run: () => ({ notes: [{ type: 'warn', text: 'Only two' }], payload: [parseEl(`<x xmlns='${NS_DATA}' type='result'><field var='n'><value>2</value></field></x>`)] }),
    });
    const r = await engine.handle(req(USER, 'list'));
    const p = ok(r);
    assert.equal(r.ok && r.status, 'completed');
    assert.equal(p.attrs.status, 'completed');
    assert.equal(p.attrs.node, 'list');
    assert.ok(p.attrs.sessionid);
    assert.equal(p.attrs['xml:lang'], 'en');
    assert.equal(p.getChild('actions'), undefined, 'no actions once completed');
    assert.equal(p.getChild('note')?.attrs.type, 'warn');
    assert.equal(p.getChild('note')?.getText(), 'Only two');
    assert.equal(formOf(p).fields.get('n')?.values[0], '2');
    assert.equal(engine.openSessions, 0);
  });

  it('walks a multi-stage session: actions per stage, prev shows the answers given, complete runs with all values', async () => {
    const seen: CommandContext[] = [];
    const engine = new AdhocEngine();
    engine.register(wizard(seen));
    const s1 = ok(await engine.handle(req(ADMIN, 'config', { action: 'execute' })));
    const sessionid = s1.attrs.sessionid as string;
    assert.equal(s1.attrs.status, 'executing');
    assert.deepEqual(actionsOf(s1), { execute: 'next', allowed: ['next'] });
    assert.equal(formOf(s1).type, 'form');

    const s2 = ok(await engine.handle(req(ADMIN, 'config', { sessionid, form: { service: 'httpd', secret: 'hunter2' } })));
    assert.equal(s2.attrs.sessionid, sessionid, 'the sessionid is maintained');
    assert.deepEqual(actionsOf(s2), { execute: 'next', allowed: ['prev', 'next'] });
    assert.equal(formOf(s2).title, 'Run modes of httpd', 'a later form can depend on earlier answers');

    const back = ok(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'prev' })));
    assert.deepEqual(actionsOf(back), { execute: 'next', allowed: ['next'] });
    const remembered = formOf(back);
    assert.deepEqual(remembered.fields.get('service')?.values, ['httpd'], 'prev shows the value the user had given');
    assert.deepEqual(remembered.fields.get('secret')?.values, [], 'a text-private answer is never sent back');

    ok(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'next', form: { service: 'jabberd' } })));
    const s3 = ok(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'next', form: { runlevel: ['3'] } })));
    assert.deepEqual(actionsOf(s3), { execute: 'complete', allowed: ['prev', 'complete'] });
    const back2 = ok(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'prev' })));
    assert.deepEqual(formOf(back2).fields.get('runlevel')?.values, ['3']);
    assert.equal(formOf(back2).title, 'Run modes of jabberd');
    ok(await engine.handle(req(ADMIN, 'config', { sessionid, form: { runlevel: ['3'] } })));

    const done = ok(await engine.handle(req(ADMIN, 'config', { sessionid, form: { state: 'on' } })));
    assert.equal(done.attrs.status, 'completed');
    assert.equal(done.getChild('note')?.getText(), "Service 'jabberd' has been configured.");
    assert.equal(seen.length, 1);
    const ran = at(seen, 0);
    assert.deepEqual(ran.stages.map((m) => Object.fromEntries(m)), [{ service: ['jabberd'] }, { runlevel: ['3'] }, { state: ['on'] }]);
    assert.equal(ran.requester, ADMIN);
    assert.equal(ran.sessionid, sessionid);
  });

  it('refuses actions a stage does not offer with bad-action, unknown ones with malformed-action', async () => {
    const engine = new AdhocEngine();
    engine.register(wizard());
    const sessionid = ok(await engine.handle(req(ADMIN, 'config'))).attrs.sessionid as string;
    assert.deepEqual(err(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'prev' }))), { ...adhocError('bad-action'), text: "Action 'prev' is not allowed at this stage" });
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'complete', form: { service: 'httpd' } }))).specific, 'bad-action');
    const e = err(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'jump' })));
    assert.deepEqual([e.type, e.condition, e.specific], ['modify', 'bad-request', 'malformed-action']);
    ok(await engine.handle(req(ADMIN, 'config', { sessionid, form: { service: 'httpd' } })));
    ok(await engine.handle(req(ADMIN, 'config', { sessionid, form: {} })));
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'next', form: { state: 'on' } }))).specific, 'bad-action', 'no next after the last stage');
  });

  it('lets a completeEarly stage finish the session and skips the later stages', async () => {
    const seen: CommandContext[] = [];
    const engine = new AdhocEngine();
    engine.register({
      node: 'early', name: 'Early', allowed: () => true,
      stages: [{ form: { fields: [{ var: 'a' }] }, completeEarly: true }, { form: { fields: [{ var: 'b' }] } }],
      run: (ctx) => (seen.push(ctx), {}),
    });
    const first = ok(await engine.handle(req(USER, 'early')));
    assert.deepEqual(actionsOf(first), { execute: 'next', allowed: ['next', 'complete'] });
    ok(await engine.handle(req(USER, 'early', { sessionid: first.attrs.sessionid as string, action: 'complete', form: { a: '1' } })));
    assert.deepEqual(at(seen, 0).stages.map((m) => Object.fromEntries(m)), [{ a: ['1'] }]);
  });

  it('answers unknown, foreign and missing sessionids with bad-sessionid, ended ones with session-expired', async () => {
    let t = 0;
    const engine = new AdhocEngine({ now: () => t, sessionTtlMs: 1000 });
    engine.register(wizard());
    engine.register({ node: 'other', name: 'Other', allowed: () => true, stages: [{ form: { fields: [] } }], run: () => ({}) });
    const sessionid = ok(await engine.handle(req(ADMIN, 'config'))).attrs.sessionid as string;

    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid: 'never-issued' }))).specific, 'bad-sessionid');
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid: '' }))).specific, 'bad-sessionid');
    assert.equal(err(await engine.handle(req('admin@example.org/laptop', 'config', { sessionid }))).specific, 'bad-sessionid', 'sessions belong to one requester');
    assert.equal(err(await engine.handle(req(ADMIN, 'other', { sessionid }))).specific, 'bad-sessionid', 'and to one node');
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { action: 'next' }))).specific, 'bad-sessionid', 'a continuing action needs a sessionid');
    ok(await engine.handle(req(ADMIN, 'config', { sessionid, form: { service: 'httpd' } })));

    const canceled = ok(await engine.handle(req(ADMIN, 'config', { sessionid, action: 'cancel' })));
    assert.deepEqual([canceled.attrs.status, canceled.attrs.sessionid, canceled.children.length], ['canceled', sessionid, 0]);
    const expired = err(await engine.handle(req(ADMIN, 'config', { sessionid, form: { service: 'httpd' } })));
    assert.deepEqual([expired.type, expired.condition, expired.specific], ['cancel', 'not-allowed', 'session-expired']);

    const idle = ok(await engine.handle(req(ADMIN, 'config'))).attrs.sessionid as string;
    t = 999;
    ok(await engine.handle(req(ADMIN, 'config', { sessionid: idle, form: { service: 'httpd' } })));
    t = 1998;
    ok(await engine.handle(req(ADMIN, 'config', { sessionid: idle, action: 'prev' }))); // activity keeps a session alive
    t = 2998;
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid: idle, form: { service: 'httpd' } }))).specific, 'session-expired');
    assert.equal(engine.openSessions, 0);
  });

  it('refuses a submission that breaks the form with bad-payload and keeps the session for a correction', async () => {
    const engine = new AdhocEngine();
    engine.register(wizard());
    const sessionid = ok(await engine.handle(req(ADMIN, 'config'))).attrs.sessionid as string;
    const missing = err(await engine.handle(req(ADMIN, 'config', { sessionid, form: { secret: 'x' } })));
    assert.deepEqual([missing.condition, missing.specific, missing.text], ['bad-request', 'bad-payload', 'Field service is required']);
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid, form: { service: 'gopher' } }))).specific, 'bad-payload');
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid }))).specific, 'bad-payload', 'no form at all is an empty submission');
    const formNotSubmit = `<x xmlns='${NS_DATA}' type='form'><field var='service'><value>httpd</value></field></x>`;
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid, x: formNotSubmit }))).specific, 'bad-payload');
    // §3.5: a form of type cancel is read as a submission.
    const asCancel = `<x xmlns='${NS_DATA}' type='cancel'><field var='service'><value>httpd</value></field></x>`;
    const s2 = ok(await engine.handle(req(ADMIN, 'config', { sessionid, x: asCancel })));
    assert.equal(formOf(s2).title, 'Run modes of httpd');
    const check = err(await engine.handle(req(ADMIN, 'config', { sessionid, form: { runlevel: ['5'] } })));
    assert.deepEqual([check.specific, check.text], ['bad-payload', 'Run level 5 needs an owner'], "a stage's own check");
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid, form: { runlevel: ['5'], owner: 'not a jid@' } }))).specific, 'bad-payload', 'JIDs are prepared');
    ok(await engine.handle(req(ADMIN, 'config', { sessionid, form: { runlevel: ['5'], owner: 'Ops@Example.org' } })));
  });

  it('checks rights at every step: forbidden for others, and once rights are withdrawn', async () => {
    let admins = new Set([ADMIN]);
    const engine = new AdhocEngine();
    engine.register({ ...wizard(), allowed: (j) => admins.has(j) });
    engine.register({ node: 'broken', name: 'Broken', allowed: () => { throw new Error('directory down'); }, stages: [], run: () => ({}) });
    assert.deepEqual(err(await engine.handle(req(USER, 'config'))), { type: 'cancel', condition: 'forbidden' });
    assert.equal(err(await engine.handle(req(ADMIN, 'broken'))).condition, 'forbidden', 'a failing rights check never grants');
    assert.equal(err(await engine.handle(req(ADMIN, 'nope'))).condition, 'item-not-found');
    const sessionid = ok(await engine.handle(req(ADMIN, 'config'))).attrs.sessionid as string;
    admins = new Set();
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid, form: { service: 'httpd' } }))).condition, 'forbidden');
  });

  it('keeps to the first language of a session, falls back to English, or refuses with bad-locale', async () => {
    const engine = new AdhocEngine({ locales: ['en', 'de'] });
    engine.register(wizard());
    const de = ok(await engine.handle(req(ADMIN, 'config', { lang: 'de-AT' })));
    assert.equal(de.attrs['xml:lang'], 'de');
    const next = ok(await engine.handle(req(ADMIN, 'config', { sessionid: de.attrs.sessionid as string, lang: 'fr', form: { service: 'httpd' } })));
    assert.equal(next.attrs['xml:lang'], 'de', 'the first language applies to the whole session');
    assert.equal(ok(await engine.handle(req(ADMIN, 'config', { lang: 'fr' }))).attrs['xml:lang'], 'en');
    const onCommand = req(ADMIN, 'config');
    onCommand.command.attrs['xml:lang'] = 'de';
    assert.equal(ok(await engine.handle(onCommand)).attrs['xml:lang'], 'de', 'xml:lang on <command/> counts too');

    const strict = new AdhocEngine({ locales: ['en'], fallbackLocale: null });
    strict.register(wizard());
    const e = err(await strict.handle(req(ADMIN, 'config', { lang: 'fr-CA' })));
    assert.deepEqual([e.type, e.condition, e.specific], ['modify', 'bad-request', 'bad-locale']);
    assert.equal(ok(await strict.handle(req(ADMIN, 'config', { lang: 'en-US' }))).attrs['xml:lang'], 'en');
  });

  it('limits open sessions per requester (not-allowed) and in total (resource-constraint)', async () => {
    const engine = new AdhocEngine({ maxSessionsPerRequester: 2, maxSessions: 3 });
    engine.register(wizard());
    ok(await engine.handle(req(ADMIN, 'config')));
    ok(await engine.handle(req(ADMIN, 'config')));
    assert.equal(err(await engine.handle(req(ADMIN, 'config'))).condition, 'not-allowed');
    ok(await engine.handle(req('admin@example.org/other', 'config')));
    assert.equal(err(await engine.handle(req('admin@example.org/third', 'config'))).condition, 'resource-constraint');
  });

  it('turns errors of command code into replies: modify keeps the session, others end it, exceptions are internal', async () => {
    let mode: 'conflict' | 'modify' | 'boom' | 'fine' = 'conflict';
    const engine = new AdhocEngine();
    engine.register({
      node: 'add', name: 'Add', allowed: () => true,
      stages: [{ form: { fields: [{ var: 'name', required: true }] } }],
      run: () => {
        if (mode === 'conflict') throw new CommandError({ type: 'cancel', condition: 'conflict', text: 'exists' });
        if (mode === 'modify') throw new CommandError(adhocError('bad-payload', 'try another'));
        if (mode === 'boom') throw new Error('disk full');
        return { notes: [{ type: 'error', text: 'completed, but failed' }] };
      },
    });
    let sessionid = ok(await engine.handle(req(USER, 'add'))).attrs.sessionid as string;
    assert.deepEqual(err(await engine.handle(req(USER, 'add', { sessionid, form: { name: 'a' } }))), { type: 'cancel', condition: 'conflict', text: 'exists' });
    assert.equal(err(await engine.handle(req(USER, 'add', { sessionid, form: { name: 'a' } }))).specific, 'session-expired');

    mode = 'modify';
    sessionid = ok(await engine.handle(req(USER, 'add'))).attrs.sessionid as string;
    assert.equal(err(await engine.handle(req(USER, 'add', { sessionid, form: { name: 'a' } }))).text, 'try another');
    mode = 'fine';
    const done = ok(await engine.handle(req(USER, 'add', { sessionid, form: { name: 'b' } })));
    assert.deepEqual([done.attrs.status, done.getChild('note')?.attrs.type], ['completed', 'error'], '§3.6: a failed completion carries an error note');

    mode = 'boom';
    sessionid = ok(await engine.handle(req(USER, 'add'))).attrs.sessionid as string;
    const r = await engine.handle(req(USER, 'add', { sessionid, form: { name: 'a' } }));
    assert.ok(!r.ok && r.error.condition === 'internal-server-error' && r.cause instanceof Error);
    assert.equal(engine.openSessions, 0);
  });

  it('answers a request on a session whose previous step still runs with unexpected-request', async () => {
    let release: () => void = () => {};
    const engine = new AdhocEngine();
    engine.register({
      node: 'slow', name: 'Slow', allowed: () => true,
      stages: [{ form: { fields: [{ var: 'a' }] } }],
      run: () => new Promise((resolve) => { release = () => resolve({}); }),
    });
    const sessionid = ok(await engine.handle(req(USER, 'slow'))).attrs.sessionid as string;
    const first = engine.handle(req(USER, 'slow', { sessionid, form: { a: '1' } }));
    const second = await engine.handle(req(USER, 'slow', { sessionid, form: { a: '2' } }));
    assert.deepEqual([err(second).type, err(second).condition], ['wait', 'unexpected-request']);
    release();
    assert.equal(ok(await first).attrs.status, 'completed');
  });

  it('builds the iq replies: the §4.4 error with its specific condition, and results', () => {
    const iq = parseEl(`<iq type='set' from='${ADMIN}' to='${HOST}' id='exec1'><command xmlns='${NS_COMMANDS}' node='list' action='execute' xml:lang='fr-ca'/></iq>`);
    const e = adhocErrorReply(iq, adhocError('bad-locale', 'Not available'));
    assert.equal(e.attrs.type, 'error');
    assert.equal(e.attrs.to, ADMIN);
    assert.equal(e.attrs.id, 'exec1');
    assert.equal(e.getChild('command', NS_COMMANDS)?.attrs.node, 'list');
    const error = e.getChild('error')!;
    assert.equal(error.attrs.type, 'modify');
    assert.ok(error.getChild('bad-request', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    assert.equal(error.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas'), 'Not available');
    assert.ok(error.getChild('bad-locale', NS_COMMANDS));
    const plain = adhocErrorReply(iq, { type: 'cancel', condition: 'forbidden' }).getChild('error')!;
    assert.equal(plain.children.length, 1, 'forbidden has no specific condition');
    const payload = parseEl(`<command xmlns='${NS_COMMANDS}' node='list' status='completed'/>`);
    const r = adhocResultReply(iq, payload);
    assert.deepEqual([r.attrs.type, r.attrs.id, r.getChild('command')?.attrs.status], ['result', 'exec1', 'completed']);
  });

  it('keeps nodes unique and ends the sessions of a command removed (module unloaded)', async () => {
    const engine = new AdhocEngine();
    const remove = engine.register(wizard());
    assert.throws(() => engine.register(wizard()), (e: unknown) => e instanceof CoreError && e.code === 'MODULE_INVALID');
    const sessionid = ok(await engine.handle(req(ADMIN, 'config'))).attrs.sessionid as string;
    remove();
    assert.equal(engine.openSessions, 0);
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid }))).condition, 'item-not-found');
    engine.register(wizard());
    assert.equal(err(await engine.handle(req(ADMIN, 'config', { sessionid, form: { service: 'httpd' } }))).specific, 'session-expired');
  });

  it('refuses a request that is not a command or has no node with bad-request', async () => {
    const engine = new AdhocEngine();
    const noNode = await engine.handle({ from: USER, to: HOST, command: parseEl(`<command xmlns='${NS_COMMANDS}'/>`) });
    assert.equal(err(noNode).condition, 'bad-request');
    const wrongNs = await engine.handle({ from: USER, to: HOST, command: parseEl(`<command xmlns='urn:other' node='x'/>`) });
    assert.equal(err(wrongNs).condition, 'bad-request');
  });
});
