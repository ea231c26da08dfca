// Data Forms (XEP-0004) with Data Forms Validation (XEP-0122): a form is described once, as a
// typed spec, and then built (`form`, `result`) and read back (`parseForm`, then `readSubmission`,
// which checks a submitted form against the spec). Used by every feature that configures with
// forms: MUC room configuration, PubSub node options, ad-hoc commands, MAM queries, push options.
import { Element } from '@xmpp/xml';

export const NS_DATA = 'jabber:x:data';
export const NS_VALIDATE = 'http://jabber.org/protocol/xdata-validate';

export type FormType = 'form' | 'submit' | 'cancel' | 'result';
export type FieldType =
  | 'boolean' | 'fixed' | 'hidden' | 'jid-multi' | 'jid-single' | 'list-multi' | 'list-single'
  | 'text-multi' | 'text-private' | 'text-single';

/** XEP-0122 validation of a field's values. */
export interface FieldValidation {
  /** An XML Schema datatype (`xs:integer`, `xs:boolean`, …) or a registered one (`pubsub:integer-or-max`). */
  datatype?: string;
  /** Inclusive bounds, for numeric and date datatypes. */
  range?: { min?: string; max?: string };
  /** A regular expression each value must match entirely. */
  regex?: string;
  /** list-* fields: values outside the options are allowed. */
  open?: boolean;
  /** *-multi fields: how many values (XEP-0122 §3.3 list-range). */
  listRange?: { min?: number; max?: number };
}

export interface FieldSpec {
  var: string;
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  /** Values offered in the form (the current setting). */
  values?: readonly string[];
  options?: readonly { label?: string; value: string }[];
  validate?: FieldValidation;
}

export interface FormSpec {
  /** The FORM_TYPE (a hidden field, XEP-0068), when the form has one. */
  formType?: string;
  title?: string;
  instructions?: string | readonly string[];
  fields: readonly FieldSpec[];
}

/** A form as read from XML: fields by var, in document order. */
export interface ParsedForm {
  type: FormType;
  formType: string | undefined;
  title: string | undefined;
  instructions: string[];
  fields: Map<string, ParsedField>;
  /** type='result' forms with several items (XEP-0004 §3.4). */
  reported: ParsedField[] | undefined;
  items: Map<string, ParsedField>[];
}

export interface ParsedField {
  var: string | undefined;
  type: FieldType | undefined;
  label: string | undefined;
  values: string[];
}

const FIELD_TYPES: ReadonlySet<string> = new Set<FieldType>([
  'boolean', 'fixed', 'hidden', 'jid-multi', 'jid-single', 'list-multi', 'list-single', 'text-multi', 'text-private', 'text-single',
]);
const FORM_TYPES: ReadonlySet<string> = new Set<FormType>(['form', 'submit', 'cancel', 'result']);

// ---- building ---------------------------------------------------------------------------------

function fieldElement(spec: FieldSpec, withMeta: boolean): Element {
  const attrs: Record<string, string> = { var: spec.var };
  if (spec.type) attrs.type = spec.type;
  if (withMeta && spec.label) attrs.label = spec.label;
  const el = new Element('field', attrs);
  if (withMeta) {
    if (spec.desc) el.c('desc').t(spec.desc);
    if (spec.required) el.c('required');
    if (spec.validate) el.cnode(validateElement(spec.validate));
  }
  for (const v of spec.values ?? []) el.c('value').t(v);
  if (withMeta) {
    for (const o of spec.options ?? []) {
      const opt = el.c('option', o.label ? { label: o.label } : {});
      opt.c('value').t(o.value);
    }
  }
  return el;
}

function validateElement(v: FieldValidation): Element {
  const el = new Element('validate', { xmlns: NS_VALIDATE, ...(v.datatype ? { datatype: v.datatype } : {}) });
  if (v.range) el.c('range', { ...(v.range.min !== undefined ? { min: v.range.min } : {}), ...(v.range.max !== undefined ? { max: v.range.max } : {}) });
  else if (v.regex !== undefined) el.c('regex').t(v.regex);
  else if (v.open) el.c('open');
  else el.c('basic');
  if (v.listRange) {
    el.c('list-range', {
      ...(v.listRange.min !== undefined ? { min: String(v.listRange.min) } : {}),
      ...(v.listRange.max !== undefined ? { max: String(v.listRange.max) } : {}),
    });
  }
  return el;
}

function formElement(type: FormType, spec: FormSpec, withMeta: boolean): Element {
  const x = new Element('x', { xmlns: NS_DATA, type });
  if (withMeta && spec.title) x.c('title').t(spec.title);
  if (withMeta) for (const line of [spec.instructions ?? []].flat()) x.c('instructions').t(line);
  if (spec.formType !== undefined) x.cnode(fieldElement({ var: 'FORM_TYPE', type: 'hidden', values: [spec.formType] }, false));
  for (const f of spec.fields) x.cnode(fieldElement(f, withMeta));
  return x;
}

/** A form to fill in (type='form'), with labels, descriptions, options and validation. */
export function form(spec: FormSpec): Element {
  return formElement('form', spec, true);
}

/** A result form (type='result'): the fields' values, with labels. */
export function result(spec: FormSpec): Element {
  return formElement('result', spec, true);
}

/** A submitted form (type='submit'): vars and values only (what clients send; also for tests). */
export function submit(formType: string | undefined, values: Record<string, string | readonly string[] | boolean>): Element {
  return formElement('submit', {
    formType,
    fields: Object.entries(values).map(([v, value]) => ({
      var: v,
      values: typeof value === 'boolean' ? [value ? '1' : '0'] : [value].flat(),
    })),
  }, false);
}

/** A multi-item result (XEP-0004 §3.4): reported fields, then one item per row. */
export function table(spec: { title?: string; formType?: string; reported: readonly FieldSpec[]; items: readonly Record<string, string | readonly string[]>[] }): Element {
  const x = new Element('x', { xmlns: NS_DATA, type: 'result' });
  if (spec.title) x.c('title').t(spec.title);
  if (spec.formType !== undefined) x.cnode(fieldElement({ var: 'FORM_TYPE', type: 'hidden', values: [spec.formType] }, false));
  const reported = x.c('reported');
  for (const f of spec.reported) reported.cnode(fieldElement({ ...f, values: [] }, true));
  for (const row of spec.items) {
    const item = x.c('item');
    for (const f of spec.reported) item.cnode(fieldElement({ var: f.var, values: [row[f.var] ?? []].flat() }, false));
  }
  return x;
}

// ---- reading ----------------------------------------------------------------------------------

/** The first data form child of `parent` (optionally the one with the given FORM_TYPE). */
export function findForm(parent: Element, formType?: string): Element | undefined {
  for (const c of parent.getChildren('x', NS_DATA)) {
    if (formType === undefined) return c;
    if (parseForm(c)?.formType === formType) return c;
  }
  return undefined;
}

function parseField(el: Element): ParsedField {
  const type = el.attrs.type as string | undefined;
  return {
    var: el.attrs.var as string | undefined,
    type: type !== undefined && FIELD_TYPES.has(type) ? (type as FieldType) : undefined,
    label: el.attrs.label as string | undefined,
    values: el.getChildren('value').map((v) => v.text()),
  };
}

/** Read a jabber:x:data element; undefined when it is not one or its type is unknown. */
export function parseForm(x: Element): ParsedForm | undefined {
  if (x.name !== 'x' || x.attrs.xmlns !== NS_DATA) return undefined;
  const type = (x.attrs.type as string | undefined) ?? 'form';
  if (!FORM_TYPES.has(type)) return undefined;
  const fields = new Map<string, ParsedField>();
  for (const f of x.getChildren('field')) {
    const pf = parseField(f);
    if (pf.var !== undefined && !fields.has(pf.var)) fields.set(pf.var, pf);
  }
  const reportedEl = x.getChild('reported');
  const items: Map<string, ParsedField>[] = [];
  for (const item of x.getChildren('item')) {
    const row = new Map<string, ParsedField>();
    for (const f of item.getChildren('field')) {
      const pf = parseField(f);
      if (pf.var !== undefined) row.set(pf.var, pf);
    }
    items.push(row);
  }
  const formType = fields.get('FORM_TYPE');
  return {
    type: type as FormType,
    formType: formType?.type === 'hidden' || formType?.type === undefined ? formType?.values[0] : undefined,
    title: x.getChildText('title') ?? undefined,
    instructions: x.getChildren('instructions').map((i) => i.text()),
    fields,
    reported: reportedEl ? reportedEl.getChildren('field').map(parseField) : undefined,
    items,
  };
}

/** A data form boolean (XEP-0004 §3.3: '1'/'true' and '0'/'false'); undefined when invalid. */
export function parseBoolean(v: string | undefined): boolean | undefined {
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

export type SubmissionResult =
  | { ok: true; values: Map<string, string[]> }
  | { ok: false; field: string | undefined; text: string };

/**
 * Check a submitted form against the spec it answers: FORM_TYPE, field types (booleans, JIDs
 * via `isJid`, single-value fields), list options unless open, XEP-0122 datatypes, ranges,
 * regexes and list ranges. Unknown fields are refused unless `allowUnknown`; required fields
 * must be present. Returns the values by var (FORM_TYPE excluded). The caller answers a failure
 * with bad-request (or not-acceptable) and the text.
 */
export function readSubmission(
  x: ParsedForm,
  spec: FormSpec,
  opts: { isJid?: (s: string) => boolean; allowUnknown?: boolean; requireAll?: boolean } = {},
): SubmissionResult {
  if (x.type !== 'submit') return { ok: false, field: undefined, text: `Expected a submitted form, got type '${x.type}'` };
  if (spec.formType !== undefined && x.formType !== undefined && x.formType !== spec.formType) {
    return { ok: false, field: 'FORM_TYPE', text: `Unexpected FORM_TYPE ${x.formType}` };
  }
  const byVar = new Map(spec.fields.map((f) => [f.var, f]));
  const values = new Map<string, string[]>();
  for (const [v, field] of x.fields) {
    if (v === 'FORM_TYPE') continue;
    const fs = byVar.get(v);
    if (!fs) {
      if (opts.allowUnknown) {
        values.set(v, field.values);
        continue;
      }
      return { ok: false, field: v, text: `Unknown field ${v}` };
    }
    const err = checkField(fs, field.values, opts.isJid);
    if (err) return { ok: false, field: v, text: err };
    values.set(v, fs.type === 'boolean' ? [parseBoolean(field.values[0]) ? '1' : '0'] : field.values);
  }
  for (const fs of spec.fields) {
    if ((fs.required || opts.requireAll) && fs.type !== 'fixed' && !values.has(fs.var)) {
      return { ok: false, field: fs.var, text: `Field ${fs.var} is required` };
    }
  }
  return { ok: true, values };
}

function checkField(fs: FieldSpec, values: string[], isJid?: (s: string) => boolean): string | undefined {
  const type = fs.type ?? 'text-single';
  const multi = type === 'jid-multi' || type === 'list-multi' || type === 'text-multi';
  if (!multi && values.length > 1) return `Field ${fs.var} takes one value`;
  if (fs.required && values.length === 0) return `Field ${fs.var} is required`;
  const v = fs.validate;
  if (multi && v?.listRange) {
    const { min, max } = v.listRange;
    if (min !== undefined && values.length < min) return `Field ${fs.var} needs at least ${min} values`;
    if (max !== undefined && values.length > max) return `Field ${fs.var} takes at most ${max} values`;
  }
  for (const value of values) {
    if (type === 'boolean' && parseBoolean(value) === undefined) return `Field ${fs.var} must be a boolean`;
    if ((type === 'jid-single' || type === 'jid-multi') && isJid && !isJid(value)) return `Field ${fs.var}: '${value}' is not a valid JID`;
    if ((type === 'list-single' || type === 'list-multi') && fs.options && !v?.open && !fs.options.some((o) => o.value === value)) {
      return `Field ${fs.var}: '${value}' is not one of the options`;
    }
    const bad = v ? checkValidation(v, value) : undefined;
    if (bad) return `Field ${fs.var}: ${bad}`;
  }
  return undefined;
}

// XML Schema datatypes of the XEP-0122 registry, as value checks (lexical space).
const INTEGER_BOUNDS: Record<string, [bigint, bigint] | undefined> = {
  'xs:byte': [-128n, 127n],
  'xs:short': [-32768n, 32767n],
  'xs:int': [-2147483648n, 2147483647n],
  'xs:long': [-9223372036854775808n, 9223372036854775807n],
  'xs:integer': undefined,
};
const DATETIME = /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const DATE = /^-?\d{4,}-\d{2}-\d{2}(Z|[+-]\d{2}:\d{2})?$/;
const TIME = /^\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
const DOUBLE = /^([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|INF|-INF|NaN)$/;
const LANGUAGE = /^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$/;

/** Check one value against a validation; returns what is wrong, or undefined. */
export function checkValidation(v: FieldValidation, value: string): string | undefined {
  const dt = v.datatype ?? 'xs:string';
  let num: number | bigint | undefined;
  if (dt in INTEGER_BOUNDS) {
    if (!/^[+-]?\d+$/.test(value)) return `'${value}' is not an integer`;
    const n = BigInt(value);
    const b = INTEGER_BOUNDS[dt];
    if (b && (n < b[0] || n > b[1])) return `'${value}' is out of range for ${dt}`;
    num = n;
  } else if (dt === 'pubsub:integer-or-max') {
    if (value !== 'max' && !/^[+-]?\d+$/.test(value)) return `'${value}' is not an integer or 'max'`;
    if (value !== 'max') num = BigInt(value);
  } else if (dt === 'xs:decimal') {
    if (!DECIMAL.test(value)) return `'${value}' is not a decimal`;
    num = Number(value);
  } else if (dt === 'xs:double') {
    if (!DOUBLE.test(value)) return `'${value}' is not a number`;
    num = Number(value.replace('INF', 'Infinity'));
  } else if (dt === 'xs:boolean') {
    if (parseBoolean(value) === undefined) return `'${value}' is not a boolean`;
  } else if (dt === 'xs:dateTime') {
    if (!DATETIME.test(value) || Number.isNaN(Date.parse(value))) return `'${value}' is not a date and time`;
  } else if (dt === 'xs:date') {
    if (!DATE.test(value)) return `'${value}' is not a date`;
  } else if (dt === 'xs:time') {
    if (!TIME.test(value)) return `'${value}' is not a time`;
  } else if (dt === 'xs:language') {
    if (!LANGUAGE.test(value)) return `'${value}' is not a language tag`;
  } else if (dt === 'xs:anyURI') {
    if (/\s/.test(value)) return `'${value}' is not a URI`;
  }
  if (v.range && num !== undefined) {
    const cmp = (bound: string) => (typeof num === 'bigint' && /^[+-]?\d+$/.test(bound) ? Number(num - BigInt(bound)) : Number(num) - Number(bound));
    if (v.range.min !== undefined && cmp(v.range.min) < 0) return `'${value}' is below ${v.range.min}`;
    if (v.range.max !== undefined && cmp(v.range.max) > 0) return `'${value}' is above ${v.range.max}`;
  }
  if (v.range && (dt === 'xs:dateTime' || dt === 'xs:date')) {
    const t = Date.parse(value);
    if (v.range.min !== undefined && t < Date.parse(v.range.min)) return `'${value}' is before ${v.range.min}`;
    if (v.range.max !== undefined && t > Date.parse(v.range.max)) return `'${value}' is after ${v.range.max}`;
  }
  if (v.regex !== undefined) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${v.regex})$`, 'u');
    } catch {
      return 'the form has an invalid pattern';
    }
    if (!re.test(value)) return `'${value}' does not match the expected pattern`;
  }
  return undefined;
}
