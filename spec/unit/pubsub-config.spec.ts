// Node configuration, publish-options preconditions, metadata and subscription options
// (XEP-0060 §6.3, §7.1.5, §8.2, §16.4) as pure functions, and the error elements of §14.
import assert from 'node:assert/strict';
import { parseForm, submit } from '../../core/util/dataforms.ts';
import {
  applyConfigForm, applySubscribeOptions, configWithPreconditions, defaultConfig, effectiveMaxItems, metadataForm, nodeConfigForm,
  readPublishOptions, unmetPrecondition, type ApplyContext,
} from '../../core/util/pubsub/config.ts';
import { errorElement, errors, PubSubError } from '../../core/util/pubsub/errors.ts';
import { nodeOfNotifyFeature, notifyFeature } from '../../core/util/pubsub/ns.ts';
import { StanzaError } from '../../core/util/errors.ts';
import { fieldValue } from '../helpers/pubsub.ts';

const LIMITS = { maxItems: 100, maxPayloadSize: 4096 };
const CTX: ApplyContext = { kind: 'service', limits: LIMITS, accessModels: ['open', 'presence', 'roster', 'whitelist', 'authorize'] };
const PEP: ApplyContext = { ...CTX, kind: 'pep' };
const CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
const OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

function form(formType: string | undefined, values: Record<string, string | string[]>) {
  return parseForm(submit(formType, values))!;
}

function throwsPubSub(f: () => unknown, condition: string, app?: string): void {
  assert.throws(f, (e: unknown) => e instanceof PubSubError && e.condition === condition && e.app === app);
}

describe('pubsub configuration (XEP-0060 §8.2, §16.4.4)', () => {
  it('has the XEP-0163 defaults for PEP and open defaults for a service', () => {
    const pep = defaultConfig('pep', LIMITS);
    assert.equal(pep.access_model, 'presence');
    assert.equal(pep.send_last_published_item, 'on_sub_and_presence');
    assert.equal(pep.deliver_notifications, true);
    assert.equal(pep.deliver_payloads, true);
    assert.equal(pep.persist_items, true);
    assert.equal(pep.max_items, 1);
    const svc = defaultConfig('service', LIMITS);
    assert.equal(svc.access_model, 'open');
    assert.equal(svc.itemreply, 'publisher');
    assert.equal(effectiveMaxItems({ ...svc, max_items: 'max' }, LIMITS), 100);
  });

  it('builds the node_config form with FORM_TYPE, types, current values and the offered access models', () => {
    const x = nodeConfigForm({ ...defaultConfig('service', LIMITS), roster_groups_allowed: ['Friends'] }, { accessModels: ['open', 'whitelist'], rosterGroups: ['Servants'] });
    assert.equal(x.attrs.type, 'form');
    assert.equal(fieldValue(x, 'FORM_TYPE'), CONFIG);
    const am = x.getChildren('field').find((f) => f.attrs.var === 'pubsub#access_model')!;
    assert.equal(am.attrs.type, 'list-single');
    assert.deepEqual(am.getChildren('option').map((o) => o.getChildText('value')), ['open', 'whitelist']);
    const groups = x.getChildren('field').find((f) => f.attrs.var === 'pubsub#roster_groups_allowed')!;
    assert.deepEqual(groups.getChildren('option').map((o) => o.getChildText('value')).sort(), ['Friends', 'Servants']);
    const mi = x.getChildren('field').find((f) => f.attrs.var === 'pubsub#max_items')!;
    assert.equal(mi.getChild('validate', 'http://jabber.org/protocol/xdata-validate')!.attrs.datatype, 'pubsub:integer-or-max');
    assert.equal(x.getChildren('field').find((f) => f.attrs.var === 'pubsub#persist_items')!.attrs.type, 'boolean');
  });

  it('applies a submission: booleans in both spellings, max, lists; untouched fields keep their value', () => {
    const base = defaultConfig('service', LIMITS);
    const next = applyConfigForm(base, form(CONFIG, {
      'pubsub#persist_items': 'false', 'pubsub#max_items': 'max', 'pubsub#roster_groups_allowed': ['A', 'B', 'A'],
      'pubsub#contact': ['Hamlet@Denmark.lit'], 'pubsub#notify_retract': 'true',
    }), CTX);
    assert.equal(next.persist_items, false);
    assert.equal(next.max_items, 'max');
    assert.deepEqual(next.roster_groups_allowed, ['A', 'B']);
    assert.deepEqual(next.contact, ['hamlet@denmark.lit']);
    assert.equal(next.access_model, base.access_model);
    assert.equal(base.persist_items, true, 'the input is not changed');
  });

  it('ignores fields it does not know, and refuses bad values, other FORM_TYPEs and non-submit forms', () => {
    const base = defaultConfig('service', LIMITS);
    assert.deepEqual(applyConfigForm(base, form(CONFIG, { 'x-example#colour': 'blue' }), CTX), base);
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#max_items': '0' }), CTX), 'not-acceptable');
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#max_items': '101' }), CTX), 'not-acceptable');
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#max_payload_size': '5000' }), CTX), 'not-acceptable');
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#send_last_published_item': 'sometimes' }), CTX), 'not-acceptable');
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#contact': 'not@@valid' }), CTX), 'not-acceptable');
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#node_type': 'collection' }), CTX), 'feature-not-implemented', 'unsupported');
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#access_model': 'telepathy' }), CTX), 'not-acceptable', 'unsupported-access-model');
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#access_model': 'roster' }), { ...CTX, accessModels: ['open'] }), 'not-acceptable', 'unsupported-access-model');
    throwsPubSub(() => applyConfigForm(base, form('urn:example', { 'pubsub#title': 'x' }), CTX), 'bad-request');
    throwsPubSub(() => applyConfigForm(base, { ...form(CONFIG, {}), type: 'result' }, CTX), 'bad-request');
    throwsPubSub(() => applyConfigForm(base, form(CONFIG, { 'pubsub#tempsub': '1' }), CTX), 'not-acceptable');
    assert.equal(applyConfigForm(base, form(CONFIG, { 'pubsub#item_expire': 'max' }), CTX).title, '');
  });
});

describe('publish-options preconditions (XEP-0060 §7.1.5)', () => {
  it('reads typed preconditions and finds the first unmet one', () => {
    const pre = readPublishOptions(form(OPTIONS, { 'pubsub#persist_items': 'true', 'pubsub#access_model': 'whitelist', 'pubsub#max_items': 'max' }), PEP);
    const config = defaultConfig('pep', LIMITS);
    assert.equal(unmetPrecondition(config, pre, 'pep'), 'pubsub#access_model');
    assert.equal(unmetPrecondition({ ...config, access_model: 'whitelist' }, pre, 'pep'), 'pubsub#max_items');
    assert.equal(unmetPrecondition({ ...config, access_model: 'whitelist', max_items: 'max' }, pre, 'pep'), undefined);
  });

  it('compares list values as sets', () => {
    const pre = readPublishOptions(form(OPTIONS, { 'pubsub#roster_groups_allowed': ['B', 'A'] }), PEP);
    assert.equal(unmetPrecondition({ ...defaultConfig('pep', LIMITS), roster_groups_allowed: ['A', 'B'] }, pre, 'pep'), undefined);
    assert.equal(unmetPrecondition({ ...defaultConfig('pep', LIMITS), roster_groups_allowed: ['A'] }, pre, 'pep'), 'pubsub#roster_groups_allowed');
  });

  it('configures a node created from preconditions, and refuses unknown fields and wrong forms', () => {
    const pre = readPublishOptions(form(OPTIONS, { 'pubsub#access_model': 'open', 'pubsub#max_items': '5' }), PEP);
    const c = configWithPreconditions(defaultConfig('pep', LIMITS), pre, 'pep');
    assert.equal(c.access_model, 'open');
    assert.equal(c.max_items, 5);
    throwsPubSub(() => readPublishOptions(form(OPTIONS, { 'pubsub#whatever': '1' }), PEP), 'bad-request');
    throwsPubSub(() => readPublishOptions(form(CONFIG, { 'pubsub#access_model': 'open' }), PEP), 'bad-request');
    throwsPubSub(() => readPublishOptions(form(undefined, { 'pubsub#access_model': 'open' }), PEP), 'bad-request');
    throwsPubSub(() => readPublishOptions(form(OPTIONS, { 'pubsub#access_model': 'nobody' }), PEP), 'not-acceptable', 'unsupported-access-model');
    throwsPubSub(() => configWithPreconditions(defaultConfig('pep', LIMITS), readPublishOptions(form(OPTIONS, { 'pubsub#presence_based_delivery': '0' }), PEP), 'pep'), 'conflict', 'precondition-not-met');
  });
});

describe('node metadata and subscription options (XEP-0060 §5.4, §6.3)', () => {
  it('describes a node with the pubsub#meta-data fields', () => {
    const x = metadataForm({
      config: { ...defaultConfig('service', LIMITS), title: 'T', type: 'urn:example' },
      creator: 'hamlet@denmark.lit', created: Date.UTC(2003, 6, 29, 22, 56, 10), owners: ['hamlet@denmark.lit'], publishers: ['bard@shakespeare.lit'], subscribers: 1066,
    });
    assert.equal(x.attrs.type, 'result');
    assert.equal(fieldValue(x, 'FORM_TYPE'), 'http://jabber.org/protocol/pubsub#meta-data');
    assert.equal(fieldValue(x, 'pubsub#creation_date'), '2003-07-29T22:56:10Z');
    assert.equal(fieldValue(x, 'pubsub#num_subscribers'), '1066');
    assert.equal(fieldValue(x, 'pubsub#publisher'), 'bard@shakespeare.lit');
    assert.equal(fieldValue(x, 'pubsub#type'), 'urn:example');
  });

  it('applies pubsub#deliver and refuses options it does not offer', () => {
    const sub = 'http://jabber.org/protocol/pubsub#subscribe_options';
    assert.deepEqual(applySubscribeOptions({ deliver: true }, form(sub, { 'pubsub#deliver': 'false', 'pubsub#include_body': '0' })), { deliver: false });
    throwsPubSub(() => applySubscribeOptions({ deliver: true }, form(sub, { 'pubsub#show-values': ['away'] })), 'bad-request', 'invalid-options');
    throwsPubSub(() => applySubscribeOptions({ deliver: true }, form(sub, { 'pubsub#deliver': 'perhaps' })), 'bad-request', 'invalid-options');
  });
});

describe('pubsub errors and names (XEP-0060 §14, §16.2)', () => {
  it('are StanzaErrors whose element carries the application condition after the text', () => {
    const e = errors.unsupported('purge-nodes', 'No purging');
    assert.ok(e instanceof StanzaError);
    const el = errorElement(e);
    assert.equal(el.attrs.type, 'cancel');
    assert.deepEqual(el.getChildElements().map((c) => c.name), ['feature-not-implemented', 'text', 'unsupported']);
    assert.equal(el.getChild('unsupported')!.attrs.feature, 'purge-nodes');
    assert.equal(el.getChild('unsupported')!.attrs.xmlns, 'http://jabber.org/protocol/pubsub#errors');
    const gone = errorElement(errors.gone('xmpp:hamlet@denmark.lit?;node=blog'));
    assert.equal(gone.getChild('gone')!.text(), 'xmpp:hamlet@denmark.lit?;node=blog');
  });

  it('spells +notify features both ways (XEP-0060 §9.2)', () => {
    assert.equal(notifyFeature('urn:xmpp:omemo:2:devices'), 'urn:xmpp:omemo:2:devices+notify');
    assert.equal(nodeOfNotifyFeature('http://jabber.org/protocol/tune+notify'), 'http://jabber.org/protocol/tune');
    assert.equal(nodeOfNotifyFeature('http://jabber.org/protocol/tune'), undefined);
    assert.equal(nodeOfNotifyFeature('+notify'), undefined);
  });
});
