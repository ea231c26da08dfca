// XML-RPC (the 1999 specification, with the <nil/> extension) carried over XMPP as Jabber-RPC
// (XEP-0009): reading and building methodCall and methodResponse, every XML-RPC type, limits on
// nesting and size, and the fault codes of the "specification for fault code interoperability"
// for malformed input. Values are kept tagged with their XML-RPC type (an int and a double stay
// distinct), with `toJs`/`fromJs` for plain JavaScript values. No I/O: mod_rpc (doc/remote-admin.md)
// wires it to iq stanzas and exported methods.
import { Element } from '@xmpp/xml';

export const NS_RPC = 'jabber:iq:rpc';
/** Apache's extension namespace, under which some libraries send <ex:nil/>. */
const NS_APACHE_EXT = 'http://ws.apache.org/xmlrpc/namespaces/extensions';

export type RpcValue =
  | { type: 'int'; value: number }
  | { type: 'boolean'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'double'; value: number }
  /** dateTime.iso8601: the instant (a value without zone is read as UTC) and the text as sent. */
  | { type: 'dateTime'; value: Date; text: string }
  | { type: 'base64'; value: Uint8Array }
  | { type: 'array'; value: RpcValue[] }
  | { type: 'struct'; value: Map<string, RpcValue> }
  | { type: 'nil' };

export interface MethodCall {
  methodName: string;
  params: RpcValue[];
}

export interface Fault {
  code: number;
  string: string;
}

/** Fault codes of the XML-RPC fault code interoperability specification. */
export const FAULT = {
  parseError: -32700,
  unsupportedEncoding: -32701,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  applicationError: -32500,
  systemError: -32400,
  transportError: -32300,
} as const;

export interface RpcLimits {
  /** Nesting of arrays and structs (default 16). */
  maxDepth: number;
  /** Values in one message, scalars and containers counted (default 10 000). */
  maxValues: number;
  /** Parameters of a call (default 64). */
  maxParams: number;
  /** Characters of a method name (default 256). */
  maxMethodName: number;
  /** Accept and emit <nil/> (an extension; slixmpp sends None as <nil/>). Default true. */
  allowNil: boolean;
}

export const DEFAULT_LIMITS: RpcLimits = { maxDepth: 16, maxValues: 10_000, maxParams: 64, maxMethodName: 256, allowNil: true };

export type Parsed<T> = { ok: true; value: T } | { ok: false; fault: Fault };

class Malformed extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

// ---- reading -----------------------------------------------------------------------------------

/** The element children of `el`; throws when non-whitespace text sits beside them. */
function elementChildren(el: Element, where: string): Element[] {
  const out: Element[] = [];
  for (const c of el.children) {
    if (typeof c === 'string') {
      if (c.trim() !== '') throw new Malformed(FAULT.invalidRequest, `Unexpected text in <${where}>`);
    } else out.push(c as Element);
  }
  return out;
}

function hasElementChild(el: Element): boolean {
  return el.children.some((c) => typeof c !== 'string');
}

function onlyChild(el: Element, name: string, where: string): Element {
  const [only, ...more] = elementChildren(el, where);
  if (only === undefined || more.length > 0 || only.getName() !== name) throw new Malformed(FAULT.invalidRequest, `<${where}> must contain exactly one <${name}>`);
  return only;
}

const INT = /^[+-]?\d+$/;
const DOUBLE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
// The specification's form is 19980717T14:08:55; the extended form and a zone are accepted too.
const DATETIME = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/;

class Reader {
  private count = 0;
  constructor(private readonly limits: RpcLimits) {}

  value(el: Element, depth: number): RpcValue {
    if (el.getName() !== 'value') throw new Malformed(FAULT.invalidRequest, `Expected <value>, got <${el.getName()}>`);
    if (++this.count > this.limits.maxValues) throw new Malformed(FAULT.invalidRequest, `More than ${this.limits.maxValues} values`);
    const [t, ...more] = hasElementChild(el) ? elementChildren(el, 'value') : [];
    if (t === undefined) return { type: 'string', value: el.getText() }; // an untyped value is a string
    if (more.length > 0) throw new Malformed(FAULT.invalidRequest, '<value> holds more than one value');
    const name = t.getName();
    const text = () => {
      if (hasElementChild(t)) throw new Malformed(FAULT.invalidRequest, `<${name}> must hold text only`);
      return t.getText();
    };
    switch (name) {
      case 'i4':
      case 'int': {
        const s = text().trim();
        const n = INT.test(s) ? Number(s) : NaN;
        if (!Number.isInteger(n) || n < -2147483648 || n > 2147483647) throw new Malformed(FAULT.invalidRequest, `'${s}' is not a four-byte integer`);
        return { type: 'int', value: n };
      }
      case 'boolean': {
        const s = text().trim();
        if (s !== '0' && s !== '1') throw new Malformed(FAULT.invalidRequest, `'${s}' is not a boolean (0 or 1)`);
        return { type: 'boolean', value: s === '1' };
      }
      case 'string':
        return { type: 'string', value: text() };
      case 'double': {
        const s = text().trim();
        const n = DOUBLE.test(s) ? Number(s) : NaN;
        if (!Number.isFinite(n)) throw new Malformed(FAULT.invalidRequest, `'${s}' is not a double`);
        return { type: 'double', value: n };
      }
      case 'dateTime.iso8601': {
        const s = text().trim();
        const d = parseDateTime(s);
        if (!d) throw new Malformed(FAULT.invalidRequest, `'${s}' is not a dateTime.iso8601`);
        return { type: 'dateTime', value: d, text: s };
      }
      case 'base64':
      case 'Base64': { // 'Base64' is in XEP-0009's schema; the XML-RPC specification writes base64
        const s = text().replace(/\s+/g, '');
        if (s.length % 4 !== 0 || !BASE64.test(s)) throw new Malformed(FAULT.invalidRequest, 'Invalid base64');
        return { type: 'base64', value: new Uint8Array(Buffer.from(s, 'base64')) };
      }
      case 'nil': {
        const ns = t.getNS();
        if (!this.limits.allowNil || (ns !== NS_RPC && ns !== NS_APACHE_EXT && ns !== undefined)) throw new Malformed(FAULT.invalidRequest, '<nil/> is not accepted');
        if (t.children.some((c) => typeof c !== 'string' || c.trim() !== '')) throw new Malformed(FAULT.invalidRequest, '<nil/> must be empty');
        return { type: 'nil' };
      }
      case 'array': {
        if (depth >= this.limits.maxDepth) throw new Malformed(FAULT.invalidRequest, `Nesting deeper than ${this.limits.maxDepth}`);
        const data = onlyChild(t, 'data', 'array');
        return { type: 'array', value: elementChildren(data, 'data').map((v) => this.value(v, depth + 1)) };
      }
      case 'struct': {
        if (depth >= this.limits.maxDepth) throw new Malformed(FAULT.invalidRequest, `Nesting deeper than ${this.limits.maxDepth}`);
        const members = new Map<string, RpcValue>();
        for (const m of elementChildren(t, 'struct')) {
          if (m.getName() !== 'member') throw new Malformed(FAULT.invalidRequest, `Unexpected <${m.getName()}> in <struct>`);
          const parts = elementChildren(m, 'member');
          const nameEl = parts.find((p) => p.getName() === 'name');
          const valueEl = parts.find((p) => p.getName() === 'value');
          if (parts.length !== 2 || !nameEl || !valueEl) throw new Malformed(FAULT.invalidRequest, '<member> must hold one <name> and one <value>');
          if (hasElementChild(nameEl)) throw new Malformed(FAULT.invalidRequest, '<name> must hold text only');
          const key = nameEl.getText();
          if (members.has(key)) throw new Malformed(FAULT.invalidRequest, `Member '${key}' appears twice`);
          members.set(key, this.value(valueEl, depth + 1));
        }
        return { type: 'struct', value: members };
      }
      default:
        throw new Malformed(FAULT.invalidRequest, `Unknown type <${name}>`);
    }
  }
}

/** A dateTime.iso8601 value as a Date (no zone: UTC); undefined when invalid. */
export function parseDateTime(s: string): Date | undefined {
  const m = DATETIME.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  const month = Number(mo), day = Number(d), hour = Number(h), minute = Number(mi), second = Number(sec);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  let ms = Date.UTC(Number(y), month - 1, day, hour, minute, Math.min(second, 59), frac ? Math.round(Number(frac) * 1000) : 0);
  if (new Date(ms).getUTCDate() !== day) return undefined; // 30 February
  if (zone && zone !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
    if (!z || Number(z[2]) > 23 || Number(z[3]) > 59) return undefined;
    ms -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000;
  }
  return new Date(ms);
}

function paramsOf(el: Element, reader: Reader, max: number): RpcValue[] {
  const out: RpcValue[] = [];
  for (const p of elementChildren(el, 'params')) {
    if (p.getName() !== 'param') throw new Malformed(FAULT.invalidRequest, `Unexpected <${p.getName()}> in <params>`);
    if (out.length >= max) throw new Malformed(FAULT.invalidRequest, `More than ${max} parameters`);
    out.push(reader.value(onlyChild(p, 'value', 'param'), 0));
  }
  return out;
}

const METHOD_NAME = /^[A-Za-z0-9_.:/]+$/;

function guard<T>(fn: () => T): Parsed<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, fault: { code: err.code, string: err.message } };
    throw err;
  }
}

/** Read a `<methodCall/>`; a malformed one gives the fault to answer with. */
export function parseMethodCall(el: Element, limits: Partial<RpcLimits> = {}): Parsed<MethodCall> {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  return guard(() => {
    if (el.getName() !== 'methodCall') throw new Malformed(FAULT.invalidRequest, 'Expected <methodCall>');
    const kids = elementChildren(el, 'methodCall');
    const nameEls = kids.filter((k) => k.getName() === 'methodName');
    const paramsEls = kids.filter((k) => k.getName() === 'params');
    const [nameEl] = nameEls;
    const [paramsEl] = paramsEls;
    if (nameEl === undefined || nameEls.length !== 1 || paramsEls.length > 1 || kids.length !== nameEls.length + paramsEls.length) {
      throw new Malformed(FAULT.invalidRequest, '<methodCall> must hold one <methodName> and at most one <params>');
    }
    if (hasElementChild(nameEl)) throw new Malformed(FAULT.invalidRequest, '<methodName> must hold text only');
    const methodName = nameEl.getText().trim();
    if (methodName.length > lim.maxMethodName || !METHOD_NAME.test(methodName)) {
      throw new Malformed(FAULT.invalidRequest, 'A method name is 1 or more of A-Z a-z 0-9 _ . : /');
    }
    const reader = new Reader(lim);
    return { methodName, params: paramsEl ? paramsOf(paramsEl, reader, lim.maxParams) : [] };
  });
}

export type Response = { kind: 'result'; value: RpcValue } | { kind: 'fault'; fault: Fault };

/** Read a `<methodResponse/>` (for calls Cadence makes, and for tests). */
export function parseMethodResponse(el: Element, limits: Partial<RpcLimits> = {}): Parsed<Response> {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  return guard((): Response => {
    if (el.getName() !== 'methodResponse') throw new Malformed(FAULT.invalidRequest, 'Expected <methodResponse>');
    const [body, ...more] = elementChildren(el, 'methodResponse');
    if (body === undefined || more.length > 0) throw new Malformed(FAULT.invalidRequest, '<methodResponse> must hold one <params> or one <fault>');
    const reader = new Reader(lim);
    if (body.getName() === 'params') {
      const [value, ...others] = paramsOf(body, reader, 1);
      if (value === undefined || others.length > 0) throw new Malformed(FAULT.invalidRequest, 'A response has exactly one parameter');
      return { kind: 'result', value };
    }
    if (body.getName() !== 'fault') throw new Malformed(FAULT.invalidRequest, `Unexpected <${body.getName()}>`);
    const v = reader.value(onlyChild(body, 'value', 'fault'), 0);
    const code = v.type === 'struct' ? v.value.get('faultCode') : undefined;
    const text = v.type === 'struct' ? v.value.get('faultString') : undefined;
    if (v.type !== 'struct' || code?.type !== 'int' || text?.type !== 'string') {
      throw new Malformed(FAULT.invalidRequest, 'A fault is a struct of faultCode (int) and faultString (string)');
    }
    return { kind: 'fault', fault: { code: code.value, string: text.value } };
  });
}

/**
 * Read the `<query xmlns='jabber:iq:rpc'/>` of a Jabber-RPC request. A query without exactly one
 * methodCall is a transport error (bad-request, XEP-0009 §2); a malformed methodCall is answered
 * with a fault, as application-level errors travel inside the XML-RPC payload.
 */
export function parseRpcRequest(query: Element, limits: Partial<RpcLimits> = {}):
  | { ok: true; call: MethodCall }
  | { ok: false; fault: Fault }
  | { ok: false; badRequest: string } {
  if (query.getName() !== 'query' || query.getNS() !== NS_RPC) return { ok: false, badRequest: 'Expected a jabber:iq:rpc query' };
  let kids: Element[];
  try {
    kids = elementChildren(query, 'query');
  } catch {
    return { ok: false, badRequest: 'Unexpected text in the query' };
  }
  const [call, ...more] = kids;
  if (call === undefined || more.length > 0 || call.getName() !== 'methodCall') return { ok: false, badRequest: 'A request holds exactly one <methodCall>' };
  const r = parseMethodCall(call, limits);
  return r.ok ? { ok: true, call: r.value } : { ok: false, fault: r.fault };
}

// ---- building ----------------------------------------------------------------------------------

/** The lexical form of a double without exponent (the specification has no exponent notation). */
export function formatDouble(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError('XML-RPC has no representation for NaN or infinities');
  if (Object.is(n, -0)) return '-0.0';
  const s = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s.includes('.') ? s : `${s}.0`;
  const [, sign = '', int = '', frac = '', expText = ''] = m;
  const exp = Number(expText);
  const digits = int + frac;
  const point = int.length + exp;
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** dateTime.iso8601 in the specification's form, in UTC: 19980717T14:08:55. */
export function formatDateTime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

class Writer {
  private count = 0;
  constructor(private readonly limits: RpcLimits) {}

  value(v: RpcValue, depth: number): Element {
    if (++this.count > this.limits.maxValues) throw new RangeError(`More than ${this.limits.maxValues} values`);
    const el = new Element('value');
    switch (v.type) {
      case 'int':
        if (!Number.isInteger(v.value) || v.value < -2147483648 || v.value > 2147483647) throw new RangeError(`${v.value} is not a four-byte integer`);
        el.c('int').t(String(v.value));
        break;
      case 'boolean':
        el.c('boolean').t(v.value ? '1' : '0');
        break;
      case 'string':
        el.c('string').t(v.value);
        break;
      case 'double':
        el.c('double').t(formatDouble(v.value));
        break;
      case 'dateTime':
        if (Number.isNaN(v.value.getTime())) throw new RangeError('Invalid date');
        el.c('dateTime.iso8601').t(formatDateTime(v.value));
        break;
      case 'base64':
        el.c('base64').t(Buffer.from(v.value).toString('base64'));
        break;
      case 'nil':
        if (!this.limits.allowNil) throw new RangeError('nil is not allowed');
        el.c('nil');
        break;
      case 'array': {
        if (depth >= this.limits.maxDepth) throw new RangeError(`Nesting deeper than ${this.limits.maxDepth}`);
        const data = el.c('array').c('data');
        for (const item of v.value) data.cnode(this.value(item, depth + 1));
        break;
      }
      case 'struct': {
        if (depth >= this.limits.maxDepth) throw new RangeError(`Nesting deeper than ${this.limits.maxDepth}`);
        const st = el.c('struct');
        for (const [k, item] of v.value) {
          const m = st.c('member');
          m.c('name').t(k);
          m.cnode(this.value(item, depth + 1));
        }
        break;
      }
    }
    return el;
  }
}

/** A `<methodCall/>` (children inherit the jabber:iq:rpc namespace of the enclosing query). */
export function methodCall(methodName: string, params: readonly RpcValue[], limits: Partial<RpcLimits> = {}): Element {
  const w = new Writer({ ...DEFAULT_LIMITS, ...limits });
  const el = new Element('methodCall');
  el.c('methodName').t(methodName);
  const ps = el.c('params');
  for (const p of params) ps.c('param').cnode(w.value(p, 0));
  return el;
}

/** A successful `<methodResponse/>`; throws RangeError when the value breaks the limits (answer with a fault then). */
export function methodResponse(value: RpcValue, limits: Partial<RpcLimits> = {}): Element {
  const w = new Writer({ ...DEFAULT_LIMITS, ...limits });
  const el = new Element('methodResponse');
  el.c('params').c('param').cnode(w.value(value, 0));
  return el;
}

/** A fault `<methodResponse/>`: a struct of faultCode (int) and faultString (string). */
export function faultResponse(fault: Fault): Element {
  const el = new Element('methodResponse');
  const v: RpcValue = {
    type: 'struct',
    value: new Map<string, RpcValue>([
      ['faultCode', { type: 'int', value: Math.trunc(fault.code) | 0 }],
      ['faultString', { type: 'string', value: fault.string }],
    ]),
  };
  el.c('fault').cnode(new Writer(DEFAULT_LIMITS).value(v, 0));
  return el;
}

/** `<query xmlns='jabber:iq:rpc'>` around a methodCall or methodResponse. */
export function rpcQuery(payload: Element): Element {
  const q = new Element('query', { xmlns: NS_RPC });
  q.cnode(payload);
  return q;
}

// ---- JavaScript values -------------------------------------------------------------------------

/** A tagged value as plain JavaScript: numbers, booleans, strings, Date, Uint8Array, arrays, null-prototype objects, null. */
export function toJs(v: RpcValue): unknown {
  switch (v.type) {
    case 'array':
      return v.value.map(toJs);
    case 'struct': {
      const o: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      for (const [k, item] of v.value) o[k] = toJs(item);
      return o;
    }
    case 'nil':
      return null;
    default:
      return v.value;
  }
}

/**
 * A JavaScript value as a tagged value: integers in the four-byte range become int, other
 * numbers double, bigint int when it fits; Date, Uint8Array (Buffer), arrays, Maps and plain
 * objects map to their XML-RPC types; null and undefined to nil. Functions, symbols, NaN and
 * cycles throw TypeError / RangeError.
 */
export function fromJs(x: unknown, limits: Partial<RpcLimits> = {}): RpcValue {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  let count = 0;
  const conv = (v: unknown, depth: number): RpcValue => {
    if (++count > lim.maxValues) throw new RangeError(`More than ${lim.maxValues} values`);
    if (v === null || v === undefined) {
      if (!lim.allowNil) throw new TypeError('null has no XML-RPC representation without <nil/>');
      return { type: 'nil' };
    }
    switch (typeof v) {
      case 'boolean':
        return { type: 'boolean', value: v };
      case 'string':
        return { type: 'string', value: v };
      case 'number':
        if (!Number.isFinite(v)) throw new RangeError(`${v} has no XML-RPC representation`);
        return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? { type: 'int', value: v } : { type: 'double', value: v };
      case 'bigint':
        if (v < -2147483648n || v > 2147483647n) throw new RangeError(`${v} does not fit a four-byte integer`);
        return { type: 'int', value: Number(v) };
      case 'object':
        break;
      default:
        throw new TypeError(`A ${typeof v} has no XML-RPC representation`);
    }
    if (v instanceof Date) return { type: 'dateTime', value: v, text: formatDateTime(v) };
    if (v instanceof Uint8Array) return { type: 'base64', value: v };
    if (depth >= lim.maxDepth) throw new RangeError(`Nesting deeper than ${lim.maxDepth}`);
    if (Array.isArray(v)) return { type: 'array', value: v.map((i) => conv(i, depth + 1)) };
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v as Record<string, unknown>);
    const m = new Map<string, RpcValue>();
    for (const [k, item] of entries) {
      if (typeof k !== 'string') throw new TypeError('Struct member names are strings');
      m.set(k, conv(item, depth + 1));
    }
    return { type: 'struct', value: m };
  };
  return conv(x, 0);
}
