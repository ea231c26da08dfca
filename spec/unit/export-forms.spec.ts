// Typed parameters of exported methods: the data form generated from them (XEP-0004 fields with
// XEP-0122 validation), submitted forms and XML-RPC parameters turned back into typed arguments,
// return values as command results, and checks of the declaration itself.
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import { form, parseForm, readSubmission, submit } from '../../core/util/dataforms.ts';
import {
  argsFromForm, argsFromRpc, checkExportOptions, formForParams, paramField, resultPayload, rpcSignature,
  type ArgsOf, type ParamSpec,
} from '../../core/util/export-forms.ts';
import { fromJs, type RpcValue } from '../../core/util/xmlrpc.ts';
import { at, must } from '../helpers/assert.ts';

const parseEl = (xml: string) => parse(xml) as unknown as Element;

const KICK = [
  { name: 'user', type: 'jid', label: 'User', bare: true },
  { name: 'reason', type: 'text', optional: true },
  { name: 'minutes', type: 'integer', min: 0, max: 1440, default: 10 },
  { name: 'notify', type: 'boolean', optional: true },
  { name: 'mode', type: 'enum', values: ['kick', 'ban'] },
  { name: 'until', type: 'datetime', optional: true },
  { name: 'also', type: 'jid[]', optional: true },
  { name: 'tags', type: 'string[]', optional: true },
  { name: 'ratio', type: 'number', optional: true, max: 1 },
  { name: 'token', type: 'secret', optional: true, pattern: '[a-f0-9]{4}' },
  { name: 'scopes', type: 'enum[]', values: ['c2s', 's2s'], optional: true },
] as const satisfies readonly ParamSpec[];

/** Compile-time: the argument tuple follows the declaration. */
function kick(...args: ArgsOf<typeof KICK>): string {
  const [user, reason, minutes, notify, mode, until, also, tags, ratio, token, scopes] = args;
  const u: string = user;
  const r: string | undefined = reason;
  const m: number = minutes;
  const n: boolean | undefined = notify;
  const d: Date | undefined = until;
  const a: string[] | undefined = also;
  return [u, r, m, n, mode, d?.toISOString(), a?.join(), tags?.join(), ratio, token, scopes?.join()].join('|');
}

describe('exported methods as forms and RPC (export-forms)', () => {
  it('generates one field per parameter, typed, labelled, with options, defaults and XEP-0122 validation', () => {
    const spec = formForParams('Kick a user', KICK, 'Disconnects a user');
    const x = form(spec).toString();
    const f = parseForm(parseEl(x))!;
    assert.equal(f.title, 'Kick a user');
    assert.deepEqual(f.instructions, ['Disconnects a user']);
    assert.deepEqual([...f.fields.values()].map((fl) => [fl.var, fl.type]), [
      ['user', 'jid-single'], ['reason', 'text-multi'], ['minutes', 'text-single'], ['notify', 'boolean'], ['mode', 'list-single'],
      ['until', 'text-single'], ['also', 'jid-multi'], ['tags', 'text-multi'], ['ratio', 'text-single'], ['token', 'text-private'], ['scopes', 'list-multi'],
    ]);
    assert.match(x, /<field var="user" type="jid-single" label="User"><required\/><\/field>/);
    assert.match(x, /<field var="minutes" type="text-single" label="minutes"><validate xmlns="http:\/\/jabber.org\/protocol\/xdata-validate" datatype="xs:integer"><range min="0" max="1440"\/><\/validate><value>10<\/value><\/field>/);
    assert.match(x, /<field var="mode" type="list-single" label="mode"><required\/><option><value>kick<\/value><\/option><option><value>ban<\/value><\/option><\/field>/);
    assert.match(x, /<field var="until" type="text-single" label="until"><validate xmlns="http:\/\/jabber.org\/protocol\/xdata-validate" datatype="xs:dateTime"><basic\/><\/validate><\/field>/);
    assert.match(x, /<field var="tags" type="text-multi" label="tags"><desc>One per line.<\/desc><\/field>/);
    assert.match(x, /<field var="token" type="text-private" label="token"><validate xmlns="http:\/\/jabber.org\/protocol\/xdata-validate" datatype="xs:string"><regex>\[a-f0-9\]\{4\}<\/regex><\/validate><\/field>/);
    assert.equal(paramField({ name: 'pin', type: 'secret', default: '1234' }).values, undefined, 'a secret default is never shown');
  });

  it('turns a submitted form into typed arguments, through the same checks a client would face', () => {
    const spec = formForParams('Kick', KICK);
    const sub = parseForm(submit(undefined, {
      user: 'Juliet@Capulet.lit', reason: ['line one', 'line two'], notify: 'true', mode: 'ban', until: '2026-12-24T18:00:00Z',
      also: ['nurse@capulet.lit'], tags: ['a', '', 'b'], ratio: '0.25', token: 'beef', scopes: ['s2s'],
    }))!;
    const read = readSubmission(sub, spec);
    assert.ok(read.ok);
    const r = argsFromForm(KICK, read.values);
    assert.ok(r.ok);
    assert.deepEqual(r.args, ['juliet@capulet.lit', 'line one\nline two', 10, true, 'ban', new Date('2026-12-24T18:00:00Z'), ['nurse@capulet.lit'], ['a', 'b'], 0.25, 'beef', ['s2s']]);
    assert.equal(kick(...(r.args as ArgsOf<typeof KICK>)).split('|')[0], 'juliet@capulet.lit');
    // XEP-0122 range on the wire, and the same bound again when converting.
    assert.equal(readSubmission(parseForm(submit(undefined, { user: 'a@b', mode: 'kick', minutes: '2000' }))!, spec).ok, false);
  });

  it('fills optional parameters with their default or undefined, and names what is missing or wrong', () => {
    const values = (o: Record<string, string[]>) => new Map(Object.entries(o));
    const min = argsFromForm(KICK, values({ user: ['a@b'], mode: ['kick'] }));
    assert.deepEqual(min, { ok: true, args: ['a@b', undefined, 10, undefined, 'kick', undefined, [], [], undefined, undefined, []] });
    assert.deepEqual(argsFromForm(KICK, values({ mode: ['kick'] })), { ok: false, field: 'user', text: 'User is required' });
    assert.deepEqual(argsFromForm(KICK, values({ user: [''], mode: ['kick'] })), { ok: false, field: 'user', text: 'User is required' }, 'an untouched field is absent');
    const bad = (o: Record<string, string[]>, field: string) => {
      const r = argsFromForm(KICK, values({ user: ['a@b'], mode: ['kick'], ...o }));
      assert.equal(r.ok, false, JSON.stringify(o));
      if (!r.ok) assert.equal(r.field, field);
    };
    bad({ user: ['a@b/res'] }, 'user');
    bad({ user: ['@@'] }, 'user');
    bad({ minutes: ['-1'] }, 'minutes');
    bad({ minutes: ['1.5'] }, 'minutes');
    bad({ minutes: ['9007199254740993'] }, 'minutes');
    bad({ notify: ['yes'] }, 'notify');
    bad({ mode: ['nuke'] }, 'mode');
    bad({ until: ['tomorrow'] }, 'until');
    bad({ also: ['x@y', 'not a jid@'] }, 'also');
    bad({ ratio: ['2'] }, 'ratio');
    bad({ token: ['zzzz'] }, 'token');
    bad({ scopes: ['ftp'] }, 'scopes');
    bad({ mode: ['kick', 'ban'] }, 'mode');
  });

  it('takes XML-RPC parameters positionally or as one struct of named parameters (co2 style), checking XML-RPC types', () => {
    const P = [{ name: 'user', type: 'jid' }, { name: 'minutes', type: 'integer', optional: true }, { name: 'tags', type: 'string[]', optional: true }] as const;
    const s = (value: string): RpcValue => ({ type: 'string', value });
    assert.deepEqual(argsFromRpc(P, [s('A@B'), { type: 'int', value: 5 }]), { ok: true, args: ['a@b', 5, []] });
    assert.deepEqual(argsFromRpc(P, [s('a@b'), { type: 'nil' }, fromJs(['x'])]), { ok: true, args: ['a@b', undefined, ['x']] });
    assert.deepEqual(argsFromRpc(P, [fromJs({ user: 'a@b', minutes: 3 })]), { ok: true, args: ['a@b', 3, []] });
    assert.deepEqual(argsFromRpc(P, [fromJs({ user: 'a@b', extra: 1 })]), { ok: false, field: 'extra', text: 'Unknown parameter extra' });
    assert.deepEqual(argsFromRpc(P, [s('a@b'), s('5')]), { ok: false, field: 'minutes', text: 'minutes: expected int, got string' });
    assert.deepEqual(argsFromRpc(P, [s('a@b'), { type: 'int', value: 1 }, fromJs([1])]), { ok: false, field: 'tags', text: 'tags: array items: expected string, got int' });
    assert.deepEqual(argsFromRpc(P, [s('a@b'), { type: 'int', value: 1 }, fromJs([]), s('x')]), { ok: false, field: undefined, text: 'Expected at most 3 parameters, got 4' });
    assert.deepEqual(argsFromRpc(P, []), { ok: false, field: 'user', text: 'user is required' });
    assert.deepEqual(argsFromRpc([{ name: 'at', type: 'datetime' }], [fromJs(new Date('2026-01-02T03:04:05Z'))]), { ok: true, args: [new Date('2026-01-02T03:04:05Z')] });
    assert.deepEqual(rpcSignature(P), ['undef', 'string', 'int', 'array']);
  });

  it('shows return values as result forms', () => {
    assert.deepEqual(resultPayload(undefined, 'T'), []);
    const shown = (value: unknown, title = 'T') => must(parseForm(at(resultPayload(value, title), 0)), 'a result form');
    const scalar = shown(42, 'Sessions');
    assert.deepEqual([scalar.type, scalar.title, scalar.fields.get('result')?.values], ['result', 'Sessions', ['42']]);
    assert.deepEqual(shown(['a', 'b']).fields.get('result')?.values, ['a', 'b']);
    const obj = shown({ version: '0.1', uptime: 5, hosts: ['a', 'b'] });
    assert.deepEqual([...obj.fields.keys()], ['version', 'uptime', 'hosts']);
    assert.deepEqual(obj.fields.get('hosts')?.values, ['a', 'b']);
    const nested = shown({ a: { b: 1 } });
    assert.deepEqual(nested.fields.get('result')?.values, ['{', '  "a": {', '    "b": 1', '  }', '}']);
    assert.deepEqual(shown(new Date('2026-01-02T03:04:05.678Z')).fields.get('result')?.values, ['2026-01-02T03:04:05.678Z']);
  });

  it('checks declarations: identifiers, unique names, enum values, defaults of the right type, RPC JIDs', () => {
    assert.deepEqual(checkExportOptions('kick', { params: KICK, rpc: { allow: ['ops@example.org'] } }), []);
    const problems = checkExportOptions('kick-user', {
      params: [
        { name: 'a b', type: 'string' }, { name: 'x', type: 'string' }, { name: 'x', type: 'integer', default: 'ten' as unknown as number },
        { name: 'e', type: 'enum' }, { name: 'm', type: 'string', min: 1 }, { name: 'FORM_TYPE', type: 'string' }, { name: 'p', type: 'string', pattern: '(' },
      ],
      rpc: { allow: ['not a jid@'] },
    });
    assert.deepEqual(problems, [
      "method name 'kick-user' must be an identifier (it becomes an XML-RPC method name and a command node)",
      'kick-user(a b): parameter names are identifiers',
      'kick-user(x): duplicate parameter',
      "kick-user(x): default: 'ten' is not an integer",
      'kick-user(e): enum needs values',
      'kick-user(m): min/max only apply to integer and number',
      'kick-user(FORM_TYPE): FORM_TYPE is reserved',
      'kick-user(p): invalid pattern',
      "kick-user: rpc.allow 'not a jid@' is not a valid JID",
    ]);
  });
});
