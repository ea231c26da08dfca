// Typed parameters of exported methods (`module.export(name, fn, { params, command, rpc })`): one
// description of a method's parameters serves the other modules, the admin shell, ad-hoc commands
// (a data form generated from the types, XEP-0004 with XEP-0122 validation) and Jabber-RPC (the
// XML-RPC arguments checked against the same types). This file turns a parameter list into a form
// spec, a submitted form or XML-RPC parameters back into typed arguments, and a method's return
// value into a command result. It is the XMPP counterpart of the Go seed's PluginInfo.Functions
// and co2's x_ methods registry; doc/remote-admin.md has the proposed `module.export` shape.
import { Element } from '@xmpp/xml';
import { result as resultForm, type FieldSpec, type FieldType, type FieldValidation, type FormSpec } from './dataforms.ts';
import { parseDateTime, type RpcValue } from './xmlrpc.ts';
import { prep } from './jid.ts';

/** Parameter types; each maps to one data form field type and one XML-RPC type. */
export type ParamTypeName =
  | 'string' // text-single; XML-RPC string
  | 'text' // text-multi, lines joined with \n; XML-RPC string
  | 'secret' // text-private; XML-RPC string
  | 'integer' // text-single xs:integer (safe integers); XML-RPC int
  | 'number' // text-single xs:double; XML-RPC double or int
  | 'boolean' // boolean; XML-RPC boolean
  | 'jid' // jid-single, prepared (RFC 7622); XML-RPC string
  | 'datetime' // text-single xs:dateTime (XEP-0082); XML-RPC dateTime.iso8601
  | 'enum' // list-single of `values`; XML-RPC string
  | 'string[]' // text-multi, one item per line; XML-RPC array of strings
  | 'jid[]' // jid-multi; XML-RPC array of strings
  | 'enum[]'; // list-multi of `values`; XML-RPC array of strings

export interface ParamSpec {
  /** Identifier of the argument; also the form field's var and the XML-RPC struct key. */
  readonly name: string;
  readonly type: ParamTypeName;
  readonly label?: string;
  readonly description?: string;
  /** Not required; the argument is `default`, or undefined. */
  readonly optional?: boolean;
  readonly default?: string | number | boolean | readonly string[];
  /** enum and enum[]: the allowed values. */
  readonly values?: readonly string[];
  /** integer and number: inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
  /** string, text, secret: a regular expression the whole value must match. */
  readonly pattern?: string;
  /** jid and jid[]: only bare JIDs. */
  readonly bare?: boolean;
}

type Base<T extends ParamTypeName> = T extends 'string' | 'text' | 'secret' | 'jid' | 'enum'
  ? string
  : T extends 'integer' | 'number'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'datetime'
        ? Date
        : string[];

/** The TypeScript type of one argument. */
export type ValueOf<P extends ParamSpec> = P extends { optional: true } ? Base<P['type']> | undefined : Base<P['type']>;
/** The argument tuple of a parameter list declared `as const`. */
export type ArgsOf<P extends readonly ParamSpec[]> = { -readonly [K in keyof P]: P[K] extends ParamSpec ? ValueOf<P[K]> : never };

/** Who may run an exported method as an ad-hoc command. */
export type CommandAccess = 'admin' | 'user' | 'anyone';

/**
 * The third argument of `module.export` as proposed for the module API (doc/remote-admin.md).
 * A plain string stays accepted as the description.
 */
export interface ExportOptions<P extends readonly ParamSpec[] = readonly ParamSpec[]> {
  description?: string;
  params?: P;
  /** Offer the method as an XEP-0050 command; `true` means admins only, node and name derived. */
  command?: boolean | { node?: string; name?: string; access?: CommandAccess };
  /** Offer the method over Jabber-RPC to these JIDs (bare: any resource; full: that resource only). */
  rpc?: { allow: readonly string[] };
}

/** Types a parameter may not default to, and checks on the declaration itself. */
const MULTI: ReadonlySet<ParamTypeName> = new Set(['string[]', 'jid[]', 'enum[]']);
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Problems with an export declaration (empty when fine); the module API refuses the export with them. */
export function checkExportOptions(method: string, opts: ExportOptions): string[] {
  const problems: string[] = [];
  if (!NAME.test(method)) problems.push(`method name '${method}' must be an identifier (it becomes an XML-RPC method name and a command node)`);
  const seen = new Set<string>();
  for (const p of opts.params ?? []) {
    const at = `${method}(${p.name})`;
    if (!NAME.test(p.name)) problems.push(`${at}: parameter names are identifiers`);
    if (p.name === 'FORM_TYPE') problems.push(`${at}: FORM_TYPE is reserved`);
    if (seen.has(p.name)) problems.push(`${at}: duplicate parameter`);
    seen.add(p.name);
    if ((p.type === 'enum' || p.type === 'enum[]') && !p.values?.length) problems.push(`${at}: ${p.type} needs values`);
    if (p.values && p.type !== 'enum' && p.type !== 'enum[]') problems.push(`${at}: values only apply to enum types`);
    if ((p.min !== undefined || p.max !== undefined) && p.type !== 'integer' && p.type !== 'number') problems.push(`${at}: min/max only apply to integer and number`);
    if (p.pattern !== undefined) {
      try {
        new RegExp(p.pattern, 'u');
      } catch {
        problems.push(`${at}: invalid pattern`);
      }
    }
    if (p.default !== undefined) {
      const err = checkArg(p, defaultAsStrings(p));
      if (err.ok === false) problems.push(`${at}: default: ${err.text}`);
    }
  }
  if (opts.rpc) for (const j of opts.rpc.allow) if (prep(j) === null) problems.push(`${method}: rpc.allow '${j}' is not a valid JID`);
  return problems;
}

function defaultAsStrings(p: ParamSpec): string[] {
  const d = p.default;
  if (d === undefined) return [];
  if (typeof d === 'boolean') return [d ? '1' : '0'];
  if (Array.isArray(d)) return [...(d as readonly string[])];
  if (p.type === 'text') return String(d).split('\n');
  return [String(d)];
}

// ---- forms -------------------------------------------------------------------------------------

const FIELD: Record<ParamTypeName, FieldType> = {
  string: 'text-single',
  text: 'text-multi',
  secret: 'text-private',
  integer: 'text-single',
  number: 'text-single',
  boolean: 'boolean',
  jid: 'jid-single',
  datetime: 'text-single',
  enum: 'list-single',
  'string[]': 'text-multi',
  'jid[]': 'jid-multi',
  'enum[]': 'list-multi',
};

function validation(p: ParamSpec): FieldValidation | undefined {
  const range = p.min !== undefined || p.max !== undefined
    ? { ...(p.min !== undefined ? { min: String(p.min) } : {}), ...(p.max !== undefined ? { max: String(p.max) } : {}) }
    : undefined;
  switch (p.type) {
    case 'integer':
      return { datatype: 'xs:integer', ...(range ? { range } : {}) };
    case 'number':
      return { datatype: 'xs:double', ...(range ? { range } : {}) };
    case 'datetime':
      return { datatype: 'xs:dateTime' };
    case 'string':
    case 'secret':
      return p.pattern !== undefined ? { datatype: 'xs:string', regex: p.pattern } : undefined;
    default:
      return undefined;
  }
}

/** The field for one parameter: type from the parameter type, label, description, options, XEP-0122 validation, default as value. */
export function paramField(p: ParamSpec): FieldSpec {
  const desc = p.type === 'string[]' ? [p.description, 'One per line.'].filter(Boolean).join(' ') : p.description;
  const v = validation(p);
  const defaults = defaultAsStrings(p);
  return {
    var: p.name,
    type: FIELD[p.type],
    label: p.label ?? p.name,
    ...(desc ? { desc } : {}),
    ...(p.optional || p.default !== undefined ? {} : { required: true }),
    ...(defaults.length && p.type !== 'secret' ? { values: defaults } : {}),
    ...(p.values ? { options: p.values.map((value) => ({ value })) } : {}),
    ...(v ? { validate: v } : {}),
  };
}

/** The form of an exported method: title, instructions (its description), one field per parameter. */
export function formForParams(title: string, params: readonly ParamSpec[], instructions?: string): FormSpec {
  return { title, ...(instructions ? { instructions } : {}), fields: params.map(paramField) };
}

export type ArgsResult = { ok: true; args: unknown[] } | { ok: false; field: string | undefined; text: string };
type ArgResult = { ok: true; value: unknown } | { ok: false; text: string };

/** Convert the values of one field to the parameter's type (after the form checks, or on their own). */
function checkArg(p: ParamSpec, values: readonly string[]): ArgResult {
  const single = (): string | undefined => values[0];
  const bad = (text: string): ArgResult => ({ ok: false, text });
  if (MULTI.has(p.type)) {
    const items = values.filter((v) => v !== '');
    if (p.type === 'jid[]') {
      const out: string[] = [];
      for (const j of items) {
        const r = jidArg(p, j);
        if (!r.ok) return r;
        out.push(r.value as string);
      }
      return { ok: true, value: out };
    }
    if (p.type === 'enum[]') {
      const wrong = items.find((v) => !p.values?.includes(v));
      if (wrong !== undefined) return bad(`'${wrong}' is not one of ${p.values?.join(', ')}`);
    }
    return { ok: true, value: [...items] };
  }
  if (values.length > 1 && p.type !== 'text') return bad('takes one value');
  const s = single();
  if (s === undefined) return { ok: true, value: undefined };
  switch (p.type) {
    case 'string':
    case 'secret':
    case 'text': {
      const text = p.type === 'text' ? values.join('\n') : s;
      if (p.pattern !== undefined && !new RegExp(`^(?:${p.pattern})$`, 'u').test(text)) return bad('does not match the expected pattern');
      return { ok: true, value: text };
    }
    case 'integer': {
      const n = /^[+-]?\d+$/.test(s.trim()) ? Number(s.trim()) : NaN;
      if (!Number.isSafeInteger(n)) return bad(`'${s}' is not an integer`);
      return bounded(p, n);
    }
    case 'number': {
      const n = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s.trim()) ? Number(s.trim()) : NaN;
      if (!Number.isFinite(n)) return bad(`'${s}' is not a number`);
      return bounded(p, n);
    }
    case 'boolean':
      if (s === '1' || s === 'true') return { ok: true, value: true };
      if (s === '0' || s === 'false') return { ok: true, value: false };
      return bad(`'${s}' is not a boolean`);
    case 'jid':
      return jidArg(p, s);
    case 'datetime': {
      const d = /^\d{4}-\d{2}-\d{2}T/.test(s) ? parseDateTime(s) : undefined;
      if (!d) return bad(`'${s}' is not a date and time (XEP-0082, e.g. 2026-01-31T12:00:00Z)`);
      return { ok: true, value: d };
    }
    case 'enum':
      if (!p.values?.includes(s)) return bad(`'${s}' is not one of ${p.values?.join(', ')}`);
      return { ok: true, value: s };
    default:
      return bad('unsupported type');
  }
}

function bounded(p: ParamSpec, n: number): ArgResult {
  if (p.min !== undefined && n < p.min) return { ok: false, text: `${n} is below ${p.min}` };
  if (p.max !== undefined && n > p.max) return { ok: false, text: `${n} is above ${p.max}` };
  return { ok: true, value: n };
}

function jidArg(p: ParamSpec, s: string): ArgResult {
  const j = prep(s);
  if (j === null) return { ok: false, text: `'${s}' is not a valid JID` };
  if (p.bare && j.includes('/')) return { ok: false, text: `'${s}' must be a bare JID` };
  return { ok: true, value: j };
}

/** What a source (form, XML-RPC) gives for one parameter: its values as strings, nothing, or what is wrong with it. */
type Given = readonly string[] | undefined | { problem: string };

function argumentsFrom(params: readonly ParamSpec[], get: (p: ParamSpec, index: number) => Given): ArgsResult {
  const args: unknown[] = [];
  for (const [i, p] of params.entries()) {
    const label = p.label ?? p.name;
    const given = get(p, i);
    if (given !== undefined && 'problem' in given) return { ok: false, field: p.name, text: `${label}: ${given.problem}` };
    // An empty field (no value, or only empty ones, as clients send untouched fields) is absent.
    const values = given?.every((v) => v === '') ? undefined : given;
    if (values === undefined) {
      if (p.default !== undefined) {
        args.push((checkArg(p, defaultAsStrings(p)) as { value: unknown }).value);
      } else if (p.optional) {
        args.push(MULTI.has(p.type) ? [] : undefined);
      } else {
        return { ok: false, field: p.name, text: `${label} is required` };
      }
      continue;
    }
    const r = checkArg(p, values);
    if (!r.ok) return { ok: false, field: p.name, text: `${label}: ${r.text}` };
    args.push(r.value);
  }
  return { ok: true, args };
}

/** The arguments from the values of a submitted form (as `readSubmission` returns them), in parameter order. */
export function argsFromForm(params: readonly ParamSpec[], values: ReadonlyMap<string, readonly string[]>): ArgsResult {
  return argumentsFrom(params, (p) => values.get(p.name));
}

// ---- XML-RPC -----------------------------------------------------------------------------------

/**
 * The arguments from XML-RPC parameters. Two conventions are accepted: positional (one XML-RPC
 * parameter per declared parameter, in order; trailing optional ones may be left out, <nil/>
 * stands for a missing one) and named (a single struct whose members are parameter names, as in
 * co2's one-dictionary calls). No parameter type is a struct, so the two cannot be confused.
 */
export function argsFromRpc(params: readonly ParamSpec[], given: readonly RpcValue[]): ArgsResult {
  const [first] = given;
  if (given.length === 1 && first?.type === 'struct') {
    const unknown = [...first.value.keys()].filter((k) => !params.some((p) => p.name === k));
    if (unknown.length) return { ok: false, field: unknown[0], text: `Unknown parameter ${unknown.join(', ')}` };
    return argumentsFrom(params, (p) => fromRpc(p, first.value.get(p.name)));
  }
  if (given.length > params.length) return { ok: false, field: undefined, text: `Expected at most ${params.length} parameters, got ${given.length}` };
  return argumentsFrom(params, (p, i) => fromRpc(p, given[i]));
}

function fromRpc(p: ParamSpec, v: RpcValue | undefined): Given {
  if (v === undefined || v.type === 'nil') return undefined;
  const r = rpcAsStrings(p, v);
  return typeof r === 'string' ? { problem: r } : r;
}

/** An XML-RPC value as the strings a form field would carry, after checking its XML-RPC type; a string result is the problem. */
function rpcAsStrings(p: ParamSpec, v: RpcValue): string[] | string {
  const want = (t: RpcValue['type']) => `expected ${t}, got ${v.type}`;
  switch (p.type) {
    case 'integer':
      return v.type === 'int' ? [String(v.value)] : want('int');
    case 'number':
      return v.type === 'double' || v.type === 'int' ? [String(v.value)] : want('double');
    case 'boolean':
      return v.type === 'boolean' ? [v.value ? '1' : '0'] : want('boolean');
    case 'datetime':
      return v.type === 'dateTime' ? [v.value.toISOString()] : want('dateTime');
    case 'text':
      return v.type === 'string' ? v.value.split('\n') : want('string');
    case 'string[]':
    case 'jid[]':
    case 'enum[]': {
      if (v.type !== 'array') return want('array');
      const out: string[] = [];
      for (const item of v.value) {
        if (item.type !== 'string') return `array items: expected string, got ${item.type}`;
        out.push(item.value);
      }
      return out;
    }
    default:
      return v.type === 'string' ? [v.value] : want('string');
  }
}

/** XML-RPC type names of a method's parameters (for system.methodSignature), return type first. */
export function rpcSignature(params: readonly ParamSpec[]): string[] {
  const t = (p: ParamSpec) => {
    switch (p.type) {
      case 'integer':
        return 'int';
      case 'number':
        return 'double';
      case 'boolean':
        return 'boolean';
      case 'datetime':
        return 'dateTime.iso8601';
      case 'string[]':
      case 'jid[]':
      case 'enum[]':
        return 'array';
      default:
        return 'string';
    }
  };
  return ['undef', ...params.map(t)];
}

// ---- results -----------------------------------------------------------------------------------

function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString().replace(/\.000Z$/, 'Z');
  return undefined;
}

/**
 * A method's return value as a command result: nothing → no payload (the glue adds a
 * "Done" note); a scalar → a result form with one field `result`; an array of scalars → one
 * text-multi field; an object of scalars and scalar arrays → one field per key; anything else →
 * its JSON, one line per value of a text-multi field.
 */
export function resultPayload(value: unknown, title: string): Element[] {
  if (value === undefined || value === null) return [];
  const one = scalarText(value);
  if (one !== undefined) return [resultForm({ title, fields: [{ var: 'result', type: typeof value === 'boolean' ? 'boolean' : 'text-single', label: 'Result', values: [one] }] })];
  if (Array.isArray(value) && value.every((v) => scalarText(v) !== undefined)) {
    return [resultForm({ title, fields: [{ var: 'result', type: 'text-multi', label: 'Result', values: value.map((v) => scalarText(v) as string) }] })];
  }
  if (typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)) {
    const fields: FieldSpec[] = [];
    let flat = true;
    for (const [k, v] of value instanceof Map ? value.entries() : Object.entries(value)) {
      const s = scalarText(v);
      if (s !== undefined) fields.push({ var: String(k), type: 'text-single', label: String(k), values: [s] });
      else if (Array.isArray(v) && v.every((i) => scalarText(i) !== undefined)) fields.push({ var: String(k), type: 'text-multi', label: String(k), values: v.map((i) => scalarText(i) as string) });
      else flat = false;
    }
    if (flat) return [resultForm({ title, fields })];
  }
  let json: string;
  try {
    json = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v), 2) ?? '';
  } catch {
    json = String(value);
  }
  return [resultForm({ title, fields: [{ var: 'result', type: 'text-multi', label: 'Result', values: json.split('\n') }] })];
}
