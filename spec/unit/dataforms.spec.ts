// Data Forms (XEP-0004) and Data Forms Validation (XEP-0122): building, parsing, checking submissions.
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import { checkValidation, findForm, form, parseBoolean, parseForm, readSubmission, result, submit, table, type FormSpec } from '../../core/util/dataforms.ts';

const ROOM: FormSpec = {
  formType: 'http://jabber.org/protocol/muc#roomconfig',
  title: 'Room configuration',
  fields: [
    { var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Name', values: ['Lounge'] },
    { var: 'muc#roomconfig_persistentroom', type: 'boolean', values: ['0'] },
    { var: 'muc#roomconfig_maxusers', type: 'list-single', options: [{ value: '10' }, { value: '50' }], validate: { datatype: 'xs:integer', open: true } },
    { var: 'muc#roomconfig_whois', type: 'list-single', options: [{ value: 'moderators' }, { value: 'anyone' }] },
    { var: 'muc#roomconfig_roomadmins', type: 'jid-multi' },
    { var: 'muc#roomconfig_historylength', type: 'text-single', validate: { datatype: 'xs:integer', range: { min: '0', max: '100' } } },
  ],
};

const parseEl = (xml: string) => parse(xml) as unknown as Element;

describe('data forms (XEP-0004, XEP-0122)', () => {
  it('builds a form with FORM_TYPE, labels, options and validation, and reads it back', () => {
    const x = form(ROOM);
    const s = x.toString();
    assert.match(s, /<x xmlns="jabber:x:data" type="form">/);
    assert.match(s, /<field var="FORM_TYPE" type="hidden"><value>http:\/\/jabber.org\/protocol\/muc#roomconfig<\/value><\/field>/);
    assert.match(s, /<validate xmlns="http:\/\/jabber.org\/protocol\/xdata-validate" datatype="xs:integer"><range min="0" max="100"\/><\/validate>/);
    assert.match(s, /<validate xmlns="http:\/\/jabber.org\/protocol\/xdata-validate" datatype="xs:integer"><open\/><\/validate>/);
    const p = parseForm(parseEl(s))!;
    assert.equal(p.type, 'form');
    assert.equal(p.formType, ROOM.formType);
    assert.equal(p.title, 'Room configuration');
    assert.deepEqual(p.fields.get('muc#roomconfig_roomname')?.values, ['Lounge']);
    assert.equal(p.fields.get('muc#roomconfig_persistentroom')?.type, 'boolean');
  });

  it('accepts a valid submission and normalises booleans', () => {
    const sub = parseForm(submit(ROOM.formType, {
      'muc#roomconfig_roomname': 'Kitchen',
      'muc#roomconfig_persistentroom': 'true',
      'muc#roomconfig_maxusers': '25',
      'muc#roomconfig_roomadmins': ['a@example.org', 'b@example.org'],
      'muc#roomconfig_historylength': '20',
    }))!;
    const r = readSubmission(sub, ROOM, { isJid: (j) => j.includes('@') });
    assert.ok(r.ok);
    assert.deepEqual(r.values.get('muc#roomconfig_persistentroom'), ['1']);
    assert.deepEqual(r.values.get('muc#roomconfig_maxusers'), ['25'], 'open list takes a value outside the options');
    assert.equal(r.values.has('FORM_TYPE'), false);
  });

  it('refuses submissions that break the spec, naming the field', () => {
    const bad = (values: Record<string, string | string[]>, field: string) => {
      const r = readSubmission(parseForm(submit(ROOM.formType, values))!, ROOM, { isJid: (j) => j.includes('@') });
      assert.equal(r.ok, false, JSON.stringify(values));
      if (!r.ok) assert.equal(r.field, field);
    };
    bad({ 'muc#roomconfig_persistentroom': 'yes' }, 'muc#roomconfig_persistentroom');
    bad({ 'muc#roomconfig_whois': 'everyone' }, 'muc#roomconfig_whois');
    bad({ 'muc#roomconfig_maxusers': 'many' }, 'muc#roomconfig_maxusers');
    bad({ 'muc#roomconfig_historylength': '101' }, 'muc#roomconfig_historylength');
    bad({ 'muc#roomconfig_roomadmins': ['not a jid'] }, 'muc#roomconfig_roomadmins');
    bad({ 'muc#roomconfig_roomname': ['a', 'b'] }, 'muc#roomconfig_roomname');
    bad({ 'muc#roomconfig_unknown': 'x' }, 'muc#roomconfig_unknown');
    const other = readSubmission(parseForm(submit('urn:other', {}))!, ROOM);
    assert.equal(other.ok, false);
    const notSubmit = readSubmission(parseForm(form(ROOM))!, ROOM);
    assert.equal(notSubmit.ok, false);
  });

  it('enforces required fields', () => {
    const spec: FormSpec = { fields: [{ var: 'accountjid', type: 'jid-single', required: true }, { var: 'note', type: 'text-multi' }] };
    const r = readSubmission(parseForm(submit(undefined, { note: ['hi'] }))!, spec);
    assert.deepEqual(r, { ok: false, field: 'accountjid', text: 'Field accountjid is required' });
  });

  it('checks XEP-0122 datatypes, ranges and regexes', () => {
    assert.equal(checkValidation({ datatype: 'xs:byte' }, '127'), undefined);
    assert.ok(checkValidation({ datatype: 'xs:byte' }, '128'));
    assert.equal(checkValidation({ datatype: 'xs:long' }, '-9223372036854775808'), undefined);
    assert.ok(checkValidation({ datatype: 'xs:integer' }, '1.5'));
    assert.equal(checkValidation({ datatype: 'xs:decimal', range: { min: '0.5' } }, '0.75'), undefined);
    assert.ok(checkValidation({ datatype: 'xs:decimal', range: { min: '0.5' } }, '0.25'));
    assert.equal(checkValidation({ datatype: 'xs:dateTime' }, '2026-12-03T10:00:00Z'), undefined);
    assert.ok(checkValidation({ datatype: 'xs:dateTime' }, 'yesterday'));
    assert.ok(checkValidation({ datatype: 'xs:dateTime', range: { min: '2026-01-01T00:00:00Z' } }, '2025-12-31T23:59:59Z'));
    assert.equal(checkValidation({ datatype: 'pubsub:integer-or-max' }, 'max'), undefined);
    assert.ok(checkValidation({ datatype: 'pubsub:integer-or-max' }, 'lots'));
    assert.equal(checkValidation({ regex: '[a-z]+' }, 'abc'), undefined);
    assert.ok(checkValidation({ regex: '[a-z]+' }, 'abc1'), 'the pattern must match the whole value');
    assert.ok(checkValidation({ datatype: 'xs:language' }, 'en US'));
    assert.equal(parseBoolean('false'), false);
    assert.equal(parseBoolean('2'), undefined);
  });

  it('checks list ranges of multi-value fields', () => {
    const spec: FormSpec = { fields: [{ var: 'jids', type: 'jid-multi', validate: { listRange: { min: 1, max: 2 } } }] };
    assert.equal(readSubmission(parseForm(submit(undefined, { jids: [] }))!, spec).ok, false);
    assert.equal(readSubmission(parseForm(submit(undefined, { jids: ['a@b'] }))!, spec).ok, true);
    assert.equal(readSubmission(parseForm(submit(undefined, { jids: ['a@b', 'c@d', 'e@f'] }))!, spec).ok, false);
  });

  it('builds result forms and multi-item tables, and finds a form by FORM_TYPE', () => {
    const r = parseForm(result({ formType: 'urn:x', fields: [{ var: 'n', values: ['3'] }] }))!;
    assert.equal(r.type, 'result');
    assert.deepEqual(r.fields.get('n')?.values, ['3']);
    const t = parseForm(table({ reported: [{ var: 'jid', label: 'JID' }, { var: 'name' }], items: [{ jid: 'a@b', name: 'A' }, { jid: 'c@d' }] }))!;
    assert.deepEqual(t.reported?.map((f) => f.var), ['jid', 'name']);
    assert.equal(t.items.length, 2);
    assert.deepEqual(t.items[1]!.get('name')?.values, []);
    const query = parseEl(`<query xmlns='urn:q'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:a</value></field></x><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:b</value></field></x></query>`);
    assert.equal(parseForm(findForm(query, 'urn:b')!)?.formType, 'urn:b');
    assert.equal(findForm(query, 'urn:c'), undefined);
    assert.equal(parseForm(parseEl(`<x xmlns='jabber:x:data' type='bogus'/>`)), undefined);
  });
});
