// The pubsub engine as a generic service component (XEP-0060), through the XML layer the glue
// uses: Hamlet owns nodes at pubsub.shakespeare.lit, Francisco and Bernardo subscribe, Polonius
// is not welcome. Every use case with its error cases, notifications, and persistence.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageManager } from '../../core/storage/manager.ts';
import { NOTIFICATION_ID_PREFIX } from '../../core/util/pubsub/service.ts';
import { fails, fieldValue, harness, NS, ok, publishOptions, submitForm, to, xml, type Harness } from '../helpers/pubsub.ts';

const SVC = 'pubsub.shakespeare.lit';
const HAMLET = 'hamlet@denmark.lit/elsinore';
const FRANCISCO = 'francisco@denmark.lit/barracks';
const BERNARDO = 'bernardo@denmark.lit/watch';
const POLONIUS = 'polonius@denmark.lit/arras';
const CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
const ATOM = "<entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>";

function service(extra: Parameters<typeof harness>[0] extends infer O ? Partial<O> : never = {}): Harness {
  return harness({ jid: SVC, kind: 'service', ...extra });
}

async function create(h: Harness, node = 'princely_musings', config?: Record<string, string | string[]>): Promise<void> {
  const conf = config ? `<configure>${submitForm(CONFIG, config)}</configure>` : '';
  ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><create node='${node}'/>${conf}</pubsub>`));
}

async function subscribe(h: Harness, who: string, node = 'princely_musings', jid = who.split('/')[0]!): Promise<ReturnType<typeof ok>> {
  return ok(await h.request(who, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='${node}' jid='${jid}'/></pubsub>`));
}

async function publish(h: Harness, id?: string, node = 'princely_musings', payload = ATOM, who = HAMLET) {
  return h.request(who, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='${node}'><item${id ? ` id='${id}'` : ''}>${payload}</item></publish></pubsub>`);
}

async function items(h: Harness, who: string, inner = '', node = 'princely_musings', attrs = '') {
  return h.request(who, 'get', `<pubsub xmlns='${NS.pubsub}'><items node='${node}'${attrs}>${inner}</items></pubsub>`);
}

function itemIds(payload: ReturnType<typeof ok>): string[] {
  return payload!.getChild('items')!.getChildren('item').map((i) => i.attrs.id as string);
}

describe('pubsub engine: a service component (XEP-0060)', () => {
  describe('discovery (§5)', () => {
    it('identifies as pubsub/service with the features it implements', async () => {
      const h = service();
      const info = await h.service.discoInfo(FRANCISCO);
      assert.deepEqual(info.identities, [{ category: 'pubsub', type: 'service' }]);
      for (const f of ['publish', 'publish-options', 'create-nodes', 'persistent-items', 'retrieve-items', 'subscribe', 'access-open', 'auto-create', 'rsm', 'meta-data']) {
        assert.ok(info.features.includes(`${NS.pubsub}#${f}`), f);
      }
      assert.ok(info.features.includes(NS.pubsub));
      assert.ok(!info.features.includes(`${NS.pubsub}#filtered-notifications`), 'no PEP features on a component');
    });

    it('advertises exactly the access models it offers (§10)', async () => {
      const access = (h: Harness) => h.service.features().filter((f) => f.startsWith(`${NS.pubsub}#access-`)).map((f) => f.slice(`${NS.pubsub}#access-`.length));
      assert.deepEqual(access(service()), ['authorize', 'open', 'presence', 'roster', 'whitelist']);
      assert.deepEqual(access(service({ accessModels: ['whitelist', 'open'] })), ['open', 'whitelist']);
      // Without a roster to ask, presence and roster are not offered, so not advertised.
      assert.deepEqual(access(service({ relationships: undefined })), ['authorize', 'open', 'whitelist']);
    });

    it('lists nodes, describes a node with pubsub#meta-data, and lists its items by name', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#title': 'Princely Musings (Atom)' });
      ok(await publish(h, 'ae890ac52d0df67ed7cfdf51b644e901'));
      assert.deepEqual(await h.service.discoItems(FRANCISCO), [{ jid: SVC, node: 'princely_musings', name: 'Princely Musings (Atom)' }]);
      const info = await h.service.discoInfo(FRANCISCO, 'princely_musings');
      assert.deepEqual(info.identities, [{ category: 'pubsub', type: 'leaf' }]);
      const meta = info.forms[0]!.toString();
      assert.match(meta, /<value>http:\/\/jabber.org\/protocol\/pubsub#meta-data<\/value>/);
      assert.match(meta, /var="pubsub#owner" type="jid-multi"[^>]*><value>hamlet@denmark.lit<\/value>/);
      assert.match(meta, /var="pubsub#creator"[^>]*><value>hamlet@denmark.lit<\/value>/);
      assert.match(meta, /var="pubsub#title"[^>]*><value>Princely Musings \(Atom\)<\/value>/);
      assert.match(meta, /var="pubsub#creation_date"[^>]*><value>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/value>/);
      assert.deepEqual(await h.service.discoItems(FRANCISCO, 'princely_musings'), [{ jid: SVC, name: 'ae890ac52d0df67ed7cfdf51b644e901' }]);
    });
  });

  describe('creating and configuring nodes (§8.1–§8.3)', () => {
    it('creates a node with the default configuration, and refuses a second one with the same NodeID', async () => {
      const h = service();
      await create(h);
      const r = await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><create node='princely_musings'/></pubsub>`);
      fails(r, 'cancel', 'conflict');
    });

    it('creates an instant node and returns its generated NodeID', async () => {
      const h = service();
      const p = ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><create/></pubsub>`));
      const id = p!.getChild('create')!.attrs.node as string;
      assert.ok(id.length > 8);
      assert.equal((await h.service.discoItems(HAMLET)).length, 1);
    });

    it('creates and configures in one request, and answers the configuration form with the values', async () => {
      const h = service();
      await create(h, 'n', { 'pubsub#access_model': 'whitelist', 'pubsub#max_items': '5', 'pubsub#title': 'T' });
      const p = ok(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><configure node='n'/></pubsub>`));
      const form = p!.getChild('configure')!.getChild('x')!;
      assert.equal(form.attrs.type, 'form');
      const value = (v: string) => fieldValue(form, v);
      assert.equal(value('FORM_TYPE'), CONFIG);
      assert.equal(value('pubsub#access_model'), 'whitelist');
      assert.equal(value('pubsub#max_items'), '5');
      assert.equal(value('pubsub#title'), 'T');
    });

    it('refuses <configure/> with a node attribute after <create/> (bad-request), and an unsupported access model', async () => {
      const h = service({ accessModels: ['open', 'whitelist'] });
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><create node='n'/><configure node='n'/></pubsub>`), 'modify', 'bad-request');
      const r = await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><create node='n'/><configure>${submitForm(CONFIG, { 'pubsub#access_model': 'roster' })}</configure></pubsub>`);
      fails(r, 'modify', 'not-acceptable', 'unsupported-access-model');
      fails(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><configure node='n'/></pubsub>`), 'cancel', 'item-not-found');
    });

    it('refuses node creation to entities the service does not allow (forbidden)', async () => {
      const h = service({ mayCreate: (jid) => jid.endsWith('@denmark.lit') && jid !== 'polonius@denmark.lit' });
      fails(await h.request(POLONIUS, 'set', `<pubsub xmlns='${NS.pubsub}'><create node='spy'/></pubsub>`), 'auth', 'forbidden');
      await create(h);
    });

    it('gives the default configuration (§8.3) and refuses collections', async () => {
      const h = service();
      const p = ok(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><default/></pubsub>`));
      assert.match(p!.toString(), /var="pubsub#access_model" type="list-single"[^>]*><value>open<\/value>/);
      fails(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><default type='collection'/></pubsub>`), 'cancel', 'feature-not-implemented', 'unsupported', 'collections');
    });

    it('lets only owners configure; checks values; a cancelled form changes nothing; notify_config tells subscribers', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#notify_config': '1' });
      await subscribe(h, FRANCISCO);
      const cfg = (fields: Record<string, string>) => `<pubsub xmlns='${NS.owner}'><configure node='princely_musings'>${submitForm(CONFIG, fields)}</configure></pubsub>`;
      fails(await h.request(FRANCISCO, 'set', cfg({ 'pubsub#title': 'mine' })), 'auth', 'forbidden');
      fails(await h.request(HAMLET, 'set', cfg({ 'pubsub#max_items': 'lots' })), 'modify', 'not-acceptable');
      fails(await h.request(HAMLET, 'set', cfg({ 'pubsub#max_items': '100000' })), 'modify', 'not-acceptable');
      fails(await h.request(HAMLET, 'set', cfg({ 'pubsub#deliver_payloads': 'maybe' })), 'modify', 'not-acceptable');
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><configure node='princely_musings'><x xmlns='jabber:x:data' type='cancel'/></configure></pubsub>`));
      h.take();
      ok(await h.request(HAMLET, 'set', cfg({ 'pubsub#title': 'Musings' })));
      const [n] = to(h.take(), 'francisco@denmark.lit');
      const conf = n!.getChild('event', NS.event)!.getChild('configuration')!;
      assert.equal(conf.attrs.node, 'princely_musings');
      assert.match(conf.toString(), /var="pubsub#title"><value>Musings<\/value>/);
      assert.equal(n!.attrs.from, SVC);
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><configure node='princely_musings'/></pubsub>`), 'modify', 'bad-request');
      fails(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><configure/></pubsub>`), 'modify', 'bad-request', 'nodeid-required');
    });

    it('accepts registered fields it does not offer only with the behaviour it has', async () => {
      const h = service();
      await create(h, 'n', { 'pubsub#purge_offline': '0', 'pubsub#presence_based_delivery': 'false' });
      const r = await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><configure node='n'>${submitForm(CONFIG, { 'pubsub#purge_offline': '1' })}</configure></pubsub>`);
      fails(r, 'modify', 'not-acceptable');
    });
  });

  describe('publishing (§7.1)', () => {
    it('publishes, generates an ItemID when none is given, and notifies subscribers with the payload', async () => {
      const h = service();
      await create(h);
      await subscribe(h, FRANCISCO);
      await subscribe(h, BERNARDO);
      h.take();
      const p = ok(await publish(h));
      const id = p!.getChild('publish')!.getChild('item')!.attrs.id as string;
      assert.ok(id.length > 8);
      const sent = h.take();
      assert.equal(sent.length, 2);
      for (const jid of ['francisco@denmark.lit', 'bernardo@denmark.lit']) {
        const [m] = to(sent, jid);
        assert.equal(m!.attrs.type, 'headline');
        assert.ok((m!.attrs.id as string).startsWith(NOTIFICATION_ID_PREFIX), 'notifications carry an id the glue recognises when they bounce (§12.4)');
        const item = m!.getChild('event', NS.event)!.getChild('items')!.getChild('item')!;
        assert.equal(item.attrs.id, id);
        assert.equal(item.attrs.publisher, 'hamlet@denmark.lit', 'itemreply=publisher by default on a component');
        assert.equal(item.getChild('entry', 'http://www.w3.org/2005/Atom')?.getChildText('title'), 'Soliloquy');
      }
    });

    it('republishing an ItemID overwrites the item and makes it the newest', async () => {
      const h = service();
      await create(h);
      ok(await publish(h, 'a'));
      ok(await publish(h, 'b'));
      ok(await publish(h, 'a', 'princely_musings', "<entry xmlns='http://www.w3.org/2005/Atom'><title>Again</title></entry>"));
      const p = ok(await items(h, FRANCISCO));
      assert.deepEqual(itemIds(p), ['b', 'a']);
      assert.match(p!.toString(), /Again/);
    });

    it('keeps max_items, retracting the oldest with notifications (publish_node_full retract-oldest)', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#max_items': '2' });
      await subscribe(h, FRANCISCO);
      for (const id of ['1', '2']) ok(await publish(h, id));
      h.take();
      ok(await publish(h, '3'));
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO))), ['2', '3']);
      const sent = to(h.take(), 'francisco@denmark.lit');
      const retract = sent.find((m) => m.getChild('event', NS.event)!.getChild('items')!.getChild('retract'));
      assert.equal(retract?.getChild('event', NS.event)!.getChild('items')!.getChild('retract')!.attrs.id, '1');
    });

    it("discard-oldest drops silently; reject refuses with conflict + node-full", async () => {
      const h = service();
      await create(h, 'd', { 'pubsub#max_items': '1', 'pubsub#publish_node_full': 'discard-oldest' });
      await subscribe(h, FRANCISCO, 'd');
      ok(await publish(h, '1', 'd'));
      h.take();
      ok(await publish(h, '2', 'd'));
      const sent = h.take();
      assert.equal(sent.length, 1, 'only the new item, no retraction');
      await create(h, 'r', { 'pubsub#max_items': '1', 'pubsub#publish_node_full': 'reject' });
      ok(await publish(h, '1', 'r'));
      fails(await publish(h, '2', 'r'), 'cancel', 'conflict', 'node-full');
      ok(await publish(h, '1', 'r'), 'republishing an existing item is not a new one');
    });

    it('max_items "max" means the service limit', async () => {
      const h = service({ limits: { maxItems: 3 } });
      await create(h, 'n', { 'pubsub#max_items': 'max' });
      for (const id of ['1', '2', '3', '4']) ok(await publish(h, id, 'n'));
      assert.deepEqual(itemIds(ok(await items(h, HAMLET, '', 'n'))), ['2', '3', '4']);
    });

    it('sends notifications without payload when deliver_payloads is off', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#deliver_payloads': '0' });
      await subscribe(h, FRANCISCO);
      h.take();
      ok(await publish(h, 'x'));
      const [m] = h.take();
      const item = m!.getChild('event', NS.event)!.getChild('items')!.getChild('item')!;
      assert.equal(item.attrs.id, 'x');
      assert.equal(item.getChildElements().length, 0);
      assert.match(ok(await items(h, FRANCISCO))!.toString(), /Soliloquy/, 'retrieval still returns the payload');
    });

    it('refuses what the node configuration rules out (§7.1.3.6)', async () => {
      const h = service();
      await create(h);
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='princely_musings'/></pubsub>`), 'modify', 'bad-request', 'item-required');
      fails(await publish(h, 'x', 'princely_musings', ''), 'modify', 'bad-request', 'payload-required');
      fails(await publish(h, 'x', 'princely_musings', `${ATOM}${ATOM}`), 'modify', 'bad-request', 'invalid-payload');
      fails(await publish(h, 'x', 'princely_musings', 'just text'), 'modify', 'bad-request', 'invalid-payload');
      fails(await publish(h, 'x', 'princely_musings', '<entry/>'), 'modify', 'bad-request', 'invalid-payload');
      await create(h, 'doorbell', { 'pubsub#persist_items': '0', 'pubsub#deliver_payloads': '0' });
      fails(await publish(h, 'current', 'doorbell', ''), 'modify', 'bad-request', 'item-forbidden');
      await subscribe(h, FRANCISCO, 'doorbell');
      h.take();
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='doorbell'/></pubsub>`));
      const [ring] = h.take();
      const ev = ring!.getChild('event', NS.event)!.getChild('items')!;
      assert.equal(ev.attrs.node, 'doorbell');
      assert.equal(ev.getChildElements().length, 0, 'a transient notification has an empty <items/>');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='princely_musings'><item>${ATOM}</item><item>${ATOM}</item></publish></pubsub>`), 'modify', 'bad-request');
      await create(h, 'single', { 'pubsub#max_items': '1' });
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='single'><item>${ATOM}</item><item>${ATOM}</item></publish></pubsub>`), 'cancel', 'not-allowed', 'max-items-exceeded');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish><item>${ATOM}</item></publish></pubsub>`), 'modify', 'bad-request', 'nodeid-required');
    });

    it('refuses a payload over max_payload_size (not-acceptable + payload-too-big)', async () => {
      const h = service();
      await create(h, 'small', { 'pubsub#max_payload_size': '64' });
      fails(await publish(h, 'x', 'small', `<blob xmlns='urn:example'>${'a'.repeat(100)}</blob>`), 'modify', 'not-acceptable', 'payload-too-big');
      ok(await publish(h, 'x', 'small', "<blob xmlns='urn:example'>a</blob>"));
    });

    it('lets only publishers publish (forbidden), or subscribers / anyone per publish_model', async () => {
      const h = service();
      await create(h);
      fails(await publish(h, 'x', 'princely_musings', ATOM, FRANCISCO), 'auth', 'forbidden');
      await create(h, 'sub', { 'pubsub#publish_model': 'subscribers' });
      fails(await publish(h, 'x', 'sub', ATOM, FRANCISCO), 'auth', 'forbidden');
      await subscribe(h, FRANCISCO, 'sub');
      ok(await publish(h, 'x', 'sub', ATOM, FRANCISCO));
      await create(h, 'open', { 'pubsub#publish_model': 'open' });
      ok(await publish(h, 'x', 'open', ATOM, BERNARDO));
    });

    it('auto-creates on publish when allowed, and answers item-not-found when not', async () => {
      const h = service();
      ok(await publish(h, 'x', 'fresh'));
      assert.deepEqual((await h.service.discoItems(HAMLET)).map((i) => i.node), ['fresh']);
      const strict = service({ autoCreate: false });
      fails(await publish(strict, 'x', 'fresh'), 'cancel', 'item-not-found');
      assert.ok(!(await strict.service.discoInfo(HAMLET)).features.includes(`${NS.pubsub}#auto-create`));
    });
  });

  describe('publish-options (§7.1.5)', () => {
    it('publishes when the preconditions are met, and refuses with conflict + precondition-not-met when not', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#access_model': 'presence' });
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='princely_musings'><item>${ATOM}</item></publish>${publishOptions({ 'pubsub#access_model': 'presence' })}</pubsub>`));
      const r = await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='princely_musings'><item>${ATOM}</item></publish>${publishOptions({ 'pubsub#access_model': 'open' })}</pubsub>`);
      fails(r, 'cancel', 'conflict', 'precondition-not-met');
    });

    it('compares booleans and max_items by value', async () => {
      const h = service();
      await create(h, 'n', { 'pubsub#max_items': 'max', 'pubsub#persist_items': '1' });
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='n'><item>${ATOM}</item></publish>${publishOptions({ 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max' })}</pubsub>`));
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='n'><item>${ATOM}</item></publish>${publishOptions({ 'pubsub#max_items': '10' })}</pubsub>`), 'cancel', 'conflict', 'precondition-not-met');
    });

    it('rejects unknown fields and a wrong FORM_TYPE', async () => {
      const h = service();
      await create(h);
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='princely_musings'><item>${ATOM}</item></publish>${publishOptions({ 'pubsub#colour': 'blue' })}</pubsub>`), 'modify', 'bad-request');
      const wrong = `<publish-options>${submitForm(CONFIG, { 'pubsub#access_model': 'open' })}</publish-options>`;
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='princely_musings'><item>${ATOM}</item></publish>${wrong}</pubsub>`), 'modify', 'bad-request');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='princely_musings'><item>${ATOM}</item></publish><publish-options/></pubsub>`), 'modify', 'bad-request');
    });

    it('auto-creates a missing node configured by the preconditions', async () => {
      const h = service();
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='new'><item>${ATOM}</item></publish>${publishOptions({ 'pubsub#access_model': 'whitelist', 'pubsub#max_items': '7' })}</pubsub>`));
      const form = ok(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><configure node='new'/></pubsub>`))!.getChild('configure')!.getChild('x')!;
      assert.equal(fieldValue(form, 'pubsub#access_model'), 'whitelist');
      assert.equal(fieldValue(form, 'pubsub#max_items'), '7');
      fails(await items(h, FRANCISCO, '', 'new'), 'cancel', 'not-allowed', 'closed-node');
    });
  });

  describe('retracting (§7.2)', () => {
    it('retracts and notifies when asked or when notify_retract is set', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#notify_retract': '0' });
      await subscribe(h, FRANCISCO);
      for (const id of ['a', 'b']) ok(await publish(h, id));
      h.take();
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='princely_musings'><item id='a'/></retract></pubsub>`));
      assert.equal(h.take().length, 0, 'notify_retract off and no notify attribute');
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='princely_musings' notify='true'><item id='b'/></retract></pubsub>`));
      const [m] = h.take();
      assert.equal(m!.getChild('event', NS.event)!.getChild('items')!.getChild('retract')!.attrs.id, 'b');
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO))), []);
    });

    it('answers the error cases of §7.2.3', async () => {
      const h = service();
      await create(h);
      ok(await publish(h, 'a'));
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><retract><item id='a'/></retract></pubsub>`), 'modify', 'bad-request', 'nodeid-required');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='princely_musings'/></pubsub>`), 'modify', 'bad-request', 'item-required');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='princely_musings'><item/></retract></pubsub>`), 'modify', 'bad-request', 'item-required');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='princely_musings'><item id='zzz'/></retract></pubsub>`), 'cancel', 'item-not-found');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='nope'><item id='a'/></retract></pubsub>`), 'cancel', 'item-not-found');
      fails(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='princely_musings'><item id='a'/></retract></pubsub>`), 'auth', 'forbidden');
      await create(h, 'transient', { 'pubsub#persist_items': '0' });
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='transient'><item id='a'/></retract></pubsub>`), 'cancel', 'feature-not-implemented', 'unsupported', 'persistent-items');
    });

    it('lets a publish-only entity retract only its own items', async () => {
      const h = service();
      await create(h);
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'><affiliation jid='francisco@denmark.lit' affiliation='publish-only'/></affiliations></pubsub>`));
      ok(await publish(h, 'mine', 'princely_musings', ATOM, FRANCISCO));
      ok(await publish(h, 'his', 'princely_musings', ATOM, HAMLET));
      fails(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='princely_musings'><item id='his'/></retract></pubsub>`), 'auth', 'forbidden');
      ok(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='princely_musings'><item id='mine'/></retract></pubsub>`));
      fails(await items(h, FRANCISCO), 'auth', 'forbidden', undefined);
    });
  });

  describe('retrieving items (§6.5)', () => {
    it('returns all items, particular ones, the most recent max_items, and an empty list for unknown ids', async () => {
      const h = service();
      await create(h);
      for (const id of ['1', '2', '3', '4']) ok(await publish(h, id));
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO))), ['1', '2', '3', '4']);
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO, "<item id='4'/><item id='2'/>"))).sort(), ['2', '4']);
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO, '', 'princely_musings', " max_items='2'"))), ['3', '4']);
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO, "<item id='nope'/>"))), []);
      fails(await items(h, FRANCISCO, '', 'princely_musings', " max_items='0'"), 'modify', 'bad-request');
      fails(await items(h, FRANCISCO, '<item/>'), 'modify', 'bad-request', 'item-required');
      fails(await items(h, FRANCISCO, '', 'nope'), 'cancel', 'item-not-found');
    });

    it('pages with Result Set Management (XEP-0059)', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#max_items': '50' });
      for (let i = 1; i <= 7; i++) ok(await publish(h, `i${i}`));
      const page = async (set: string) => ok(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><items node='princely_musings'/><set xmlns='http://jabber.org/protocol/rsm'>${set}</set></pubsub>`))!;
      const p1 = await page('<max>3</max>');
      assert.deepEqual(itemIds(p1), ['i1', 'i2', 'i3']);
      const set1 = p1.getChild('set', 'http://jabber.org/protocol/rsm')!;
      assert.equal(set1.getChildText('count'), '7');
      assert.equal(set1.getChild('first')!.attrs.index, '0');
      assert.equal(set1.getChildText('last'), 'i3');
      const p2 = await page('<max>3</max><after>i3</after>');
      assert.deepEqual(itemIds(p2), ['i4', 'i5', 'i6']);
      assert.equal(p2.getChild('set', 'http://jabber.org/protocol/rsm')!.getChild('first')!.attrs.index, '3');
      assert.deepEqual(itemIds(await page('<max>2</max><before/>')), ['i6', 'i7']);
      assert.deepEqual(itemIds(await page('<max>2</max><before>i3</before>')), ['i1', 'i2']);
      assert.deepEqual(itemIds(await page('<max>2</max><index>5</index>')), ['i6', 'i7']);
      const r = await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><items node='princely_musings'/><set xmlns='http://jabber.org/protocol/rsm'><after>unknown</after></set></pubsub>`);
      fails(r, 'cancel', 'item-not-found');
    });

    it('returns the last item of a transient node', async () => {
      const h = service();
      await create(h, 't', { 'pubsub#persist_items': '0' });
      ok(await publish(h, 'one', 't'));
      ok(await publish(h, 'two', 't'));
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO, '', 't'))), ['two']);
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><purge node='t'/></pubsub>`), 'cancel', 'feature-not-implemented', 'unsupported', 'persistent-items');
    });
  });

  describe('subscribing (§6.1, §6.2)', () => {
    it('subscribes with a SubID, sends the last item with a delay, and answers a repeat with the same subscription', async () => {
      const h = service();
      await create(h);
      ok(await publish(h, 'last'));
      h.take();
      const p = await subscribe(h, FRANCISCO);
      const sub = p!.getChild('subscription')!;
      assert.equal(sub.attrs.node, 'princely_musings');
      assert.equal(sub.attrs.jid, 'francisco@denmark.lit');
      assert.equal(sub.attrs.subscription, 'subscribed');
      assert.ok(sub.attrs.subid);
      const [last] = h.take();
      assert.equal(last!.attrs.to, 'francisco@denmark.lit');
      assert.equal(last!.getChild('event', NS.event)!.getChild('items')!.getChild('item')!.attrs.id, 'last');
      assert.match(last!.getChild('delay', 'urn:xmpp:delay')!.attrs.stamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const again = await subscribe(h, FRANCISCO);
      assert.equal(again!.getChild('subscription')!.attrs.subid, sub.attrs.subid);
    });

    it('answers the subscribe error cases of §6.1.3', async () => {
      const h = service({ maxSubscriptions: 2 });
      await create(h);
      const sub = (who: string, attrs: string) => h.request(who, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe ${attrs}/></pubsub>`);
      fails(await sub(FRANCISCO, "node='princely_musings' jid='bernardo@denmark.lit'"), 'modify', 'bad-request', 'invalid-jid');
      fails(await sub(FRANCISCO, "node='princely_musings' jid='not a jid@@'"), 'modify', 'bad-request', 'invalid-jid');
      fails(await sub(FRANCISCO, "node='princely_musings'"), 'modify', 'bad-request', 'jid-required');
      fails(await sub(FRANCISCO, "jid='francisco@denmark.lit'"), 'modify', 'bad-request', 'nodeid-required');
      fails(await sub(FRANCISCO, "node='nope' jid='francisco@denmark.lit'"), 'cancel', 'item-not-found');
      await create(h, 'wl', { 'pubsub#access_model': 'whitelist' });
      fails(await sub(FRANCISCO, "node='wl' jid='francisco@denmark.lit'"), 'cancel', 'not-allowed', 'closed-node');
      await create(h, 'nosub', { 'pubsub#subscribe': '0' });
      fails(await sub(FRANCISCO, "node='nosub' jid='francisco@denmark.lit'"), 'cancel', 'feature-not-implemented', 'unsupported', 'subscribe');
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'><affiliation jid='polonius@denmark.lit' affiliation='outcast'/></affiliations></pubsub>`));
      fails(await sub(POLONIUS, "node='princely_musings' jid='polonius@denmark.lit'"), 'auth', 'forbidden');
      await create(h, 'a');
      await create(h, 'b');
      await subscribe(h, FRANCISCO, 'a');
      await subscribe(h, FRANCISCO, 'b');
      fails(await sub(FRANCISCO, "node='princely_musings' jid='francisco@denmark.lit'"), 'wait', 'policy-violation', 'too-many-subscriptions');
    });

    it('subscribes a full JID separately from the bare JID', async () => {
      const h = service();
      await create(h);
      await subscribe(h, FRANCISCO, 'princely_musings', FRANCISCO);
      h.take();
      ok(await publish(h, 'x'));
      assert.deepEqual(h.take().map((m) => m.attrs.to), [FRANCISCO]);
    });

    it('unsubscribes, with the errors of §6.2.3', async () => {
      const h = service();
      await create(h);
      const sub = await subscribe(h, FRANCISCO);
      const subid = sub!.getChild('subscription')!.attrs.subid as string;
      const unsub = (who: string, attrs: string) => h.request(who, 'set', `<pubsub xmlns='${NS.pubsub}'><unsubscribe ${attrs}/></pubsub>`);
      fails(await unsub(BERNARDO, "node='princely_musings' jid='francisco@denmark.lit'"), 'auth', 'forbidden');
      fails(await unsub(BERNARDO, "node='princely_musings' jid='bernardo@denmark.lit'"), 'cancel', 'unexpected-request', 'not-subscribed');
      fails(await unsub(FRANCISCO, "node='nope' jid='francisco@denmark.lit'"), 'cancel', 'item-not-found');
      fails(await unsub(FRANCISCO, "node='princely_musings' jid='francisco@denmark.lit' subid='bogus'"), 'modify', 'not-acceptable', 'invalid-subid');
      const p = ok(await unsub(FRANCISCO, `node='princely_musings' jid='francisco@denmark.lit' subid='${subid}'`));
      assert.equal(p!.getChild('subscription')!.attrs.subscription, 'none');
      h.take();
      ok(await publish(h, 'x'));
      assert.equal(h.take().length, 0);
    });

    it('with multi-subscribe, tells subscriptions apart by SubID (subid-required, SHIM headers)', async () => {
      const h = service({ multiSubscribe: true });
      await create(h);
      const a = (await subscribe(h, FRANCISCO))!.getChild('subscription')!.attrs.subid as string;
      const b = (await subscribe(h, FRANCISCO))!.getChild('subscription')!.attrs.subid as string;
      assert.notEqual(a, b);
      h.take();
      ok(await publish(h, 'x'));
      const sent = h.take();
      assert.equal(sent.length, 1, 'one notification per subscribed JID');
      const headers = sent[0]!.getChild('headers', 'http://jabber.org/protocol/shim')!.getChildren('header').map((x) => x.text()).sort();
      assert.deepEqual(headers, [a, b].sort());
      fails(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><unsubscribe node='princely_musings' jid='francisco@denmark.lit'/></pubsub>`), 'modify', 'bad-request', 'subid-required');
      ok(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><unsubscribe node='princely_musings' jid='francisco@denmark.lit' subid='${a}'/></pubsub>`));
    });

    it('lists the entity\'s own subscriptions and affiliations (§5.6, §5.7)', async () => {
      const h = service();
      await create(h, 'n1');
      await create(h, 'n2');
      await subscribe(h, FRANCISCO, 'n1');
      await subscribe(h, FRANCISCO, 'n2', FRANCISCO);
      const p = ok(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><subscriptions/></pubsub>`));
      const subs = p!.getChild('subscriptions')!.getChildren('subscription').map((s) => `${s.attrs.node} ${s.attrs.jid} ${s.attrs.subscription}`);
      assert.deepEqual(subs.sort(), ['n1 francisco@denmark.lit subscribed', `n2 ${FRANCISCO} subscribed`]);
      const only = ok(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><subscriptions node='n2'/></pubsub>`));
      assert.equal(only!.getChild('subscriptions')!.getChildren('subscription').length, 1);
      const none = ok(await h.request(BERNARDO, 'get', `<pubsub xmlns='${NS.pubsub}'><subscriptions/></pubsub>`));
      assert.equal(none!.getChild('subscriptions')!.getChildElements().length, 0);
      const affs = ok(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.pubsub}'><affiliations/></pubsub>`));
      assert.deepEqual(affs!.getChild('affiliations')!.getChildren('affiliation').map((a) => `${a.attrs.node} ${a.attrs.affiliation}`).sort(), ['n1 owner', 'n2 owner']);
    });
  });

  describe('subscription options (§6.3, §6.4)', () => {
    it('gives and takes the options form; pubsub#deliver off stops notifications', async () => {
      const h = service();
      await create(h);
      await subscribe(h, FRANCISCO);
      const p = ok(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><options node='princely_musings' jid='francisco@denmark.lit'/></pubsub>`));
      assert.match(p!.toString(), /<value>http:\/\/jabber.org\/protocol\/pubsub#subscribe_options<\/value>/);
      assert.match(p!.toString(), /var="pubsub#deliver" type="boolean"[^>]*><value>1<\/value>/);
      const form = submitForm('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#deliver': '0', 'pubsub#digest': '0' });
      ok(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><options node='princely_musings' jid='francisco@denmark.lit'>${form}</options></pubsub>`));
      h.take();
      ok(await publish(h, 'x'));
      assert.equal(h.take().length, 0);
    });

    it('answers the options error cases of §6.3.4 and refuses options it does not offer (invalid-options)', async () => {
      const h = service();
      await create(h);
      const get = (who: string, attrs: string) => h.request(who, 'get', `<pubsub xmlns='${NS.pubsub}'><options ${attrs}/></pubsub>`);
      fails(await get(FRANCISCO, "node='princely_musings'"), 'modify', 'bad-request', 'jid-required');
      fails(await get(FRANCISCO, "node='princely_musings' jid='francisco@denmark.lit'"), 'modify', 'unexpected-request', 'not-subscribed');
      fails(await get(FRANCISCO, "node='princely_musings' jid='bernardo@denmark.lit'"), 'auth', 'forbidden');
      fails(await get(FRANCISCO, "node='nope' jid='francisco@denmark.lit'"), 'cancel', 'item-not-found');
      await subscribe(h, FRANCISCO);
      fails(await get(FRANCISCO, "node='princely_musings' jid='francisco@denmark.lit' subid='bogus'"), 'modify', 'not-acceptable', 'invalid-subid');
      const digest = submitForm('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#digest': '1' });
      fails(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><options node='princely_musings' jid='francisco@denmark.lit'>${digest}</options></pubsub>`), 'modify', 'bad-request', 'invalid-options');
    });

    it('subscribes and configures in one request, returning the resulting options', async () => {
      const h = service();
      await create(h);
      const form = submitForm('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#deliver': '1' });
      const p = ok(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='princely_musings' jid='francisco@denmark.lit'/><options>${form}</options></pubsub>`));
      assert.equal(p!.getChild('options')!.getChild('x')!.attrs.type, 'result');
      fails(await h.request(BERNARDO, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='princely_musings' jid='bernardo@denmark.lit'/><options node='princely_musings'>${form}</options></pubsub>`), 'modify', 'bad-request');
    });

    it('gives the default subscription options of the service and of a node', async () => {
      const h = service();
      await create(h);
      assert.match(ok(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><default/></pubsub>`))!.toString(), /pubsub#subscribe_options/);
      assert.match(ok(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><default node='princely_musings'/></pubsub>`))!.toString(), /pubsub#deliver/);
      fails(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><default node='nope'/></pubsub>`), 'cancel', 'item-not-found');
    });
  });

  describe('the authorize access model (§6.1.4, §8.6, §8.7)', () => {
    it('makes requests pending, asks the owner, and approves or denies on the submitted form', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#access_model': 'authorize' });
      ok(await publish(h, 'first'));
      h.take();
      const p = await subscribe(h, FRANCISCO);
      assert.equal(p!.getChild('subscription')!.attrs.subscription, 'pending');
      const [ask] = h.take();
      assert.equal(ask!.attrs.to, 'hamlet@denmark.lit');
      const form = ask!.getChild('x', 'jabber:x:data')!;
      assert.match(form.toString(), /pubsub#subscribe_authorization/);
      assert.match(form.toString(), /var="pubsub#subscriber_jid"[^>]*><value>francisco@denmark.lit<\/value>/);
      fails(await subscribe_(h, FRANCISCO), 'auth', 'not-authorized', 'pending-subscription');
      fails(await items(h, FRANCISCO), 'auth', 'not-authorized', 'not-subscribed');
      assert.deepEqual(await h.service.pendingNodes(HAMLET), ['princely_musings']);
      assert.equal(await h.service.resendPending(HAMLET, 'princely_musings'), 1);
      h.take();

      const subid = form.getChildren('field').find((f) => f.attrs.var === 'pubsub#subid')!.getChildText('value')!;
      const answer = (allow: string, jid: string) => xml(`<message from='${HAMLET}' to='${SVC}'>${submitForm('http://jabber.org/protocol/pubsub#subscribe_authorization', {
        'pubsub#subid': subid, 'pubsub#node': 'princely_musings', 'pubsub#subscriber_jid': jid, 'pubsub#allow': allow,
      })}</message>`);
      const { handlePubSubMessage } = await import('../../core/util/pubsub/protocol.ts');
      await assert.rejects(handlePubSubMessage(h.service, answer('true', 'francisco@denmark.lit'), FRANCISCO), (e: Error & { condition?: string }) => e.condition === 'forbidden');
      assert.equal(await handlePubSubMessage(h.service, answer('true', 'francisco@denmark.lit'), HAMLET), true);
      const sent = to(h.take(), 'francisco@denmark.lit');
      assert.equal(sent[0]!.getChild('event', NS.event)!.getChild('subscription')!.attrs.subscription, 'subscribed');
      assert.equal(sent[1]!.getChild('event', NS.event)!.getChild('items')!.getChild('item')!.attrs.id, 'first', 'the last item follows approval');
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO))), ['first']);

      await subscribe(h, BERNARDO);
      h.take();
      const deny = xml(`<message from='${HAMLET}' to='${SVC}'>${submitForm('http://jabber.org/protocol/pubsub#subscribe_authorization', {
        'pubsub#node': 'princely_musings', 'pubsub#subscriber_jid': 'bernardo@denmark.lit', 'pubsub#allow': 'false',
      })}</message>`);
      await handlePubSubMessage(h.service, deny, HAMLET);
      const [denied] = h.take();
      assert.equal(denied!.attrs.to, 'bernardo@denmark.lit');
      assert.equal(denied!.getChild('event', NS.event)!.getChild('subscription')!.attrs.subscription, 'none');
    });

    it('approves a pending request when the entity becomes publisher, denies it for an outcast (§8.7)', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#access_model': 'authorize' });
      await subscribe(h, FRANCISCO);
      await subscribe(h, POLONIUS);
      h.take();
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'><affiliation jid='francisco@denmark.lit' affiliation='publisher'/><affiliation jid='polonius@denmark.lit' affiliation='outcast'/></affiliations></pubsub>`));
      const sent = h.take();
      assert.equal(to(sent, 'francisco@denmark.lit')[0]!.getChild('event', NS.event)!.getChild('subscription')!.attrs.subscription, 'subscribed');
      assert.equal(to(sent, 'polonius@denmark.lit')[0]!.getChild('event', NS.event)!.getChild('subscription')!.attrs.subscription, 'none');
    });
  });

  describe('owners manage subscriptions (§8.8) and affiliations (§8.9)', () => {
    it('lists subscriptions (not pending ones) and applies a delta, returning failed entries unchanged', async () => {
      const h = service();
      await create(h);
      await subscribe(h, FRANCISCO);
      fails(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.owner}'><subscriptions node='princely_musings'/></pubsub>`), 'auth', 'forbidden');
      fails(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><subscriptions node='nope'/></pubsub>`), 'cancel', 'item-not-found');
      h.take();
      const r = await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><subscriptions node='princely_musings'><subscription jid='francisco@denmark.lit' subscription='none'/><subscription jid='bernardo@denmark.lit' subscription='subscribed'/><subscription jid='polonius@denmark.lit' subscription='unconfigured'/></subscriptions></pubsub>`);
      const err = fails(r, 'modify', 'not-acceptable');
      const failed = r.ok ? [] : r.stanza.getChild('pubsub', NS.owner)!.getChild('subscriptions')!.getChildren('subscription');
      assert.deepEqual(failed.map((s) => `${s.attrs.jid} ${s.attrs.subscription}`), ['polonius@denmark.lit none']);
      assert.ok(err);
      const sent = h.take();
      assert.equal(to(sent, 'francisco@denmark.lit')[0]!.getChild('event', NS.event)!.getChild('subscription')!.attrs.subscription, 'none');
      assert.equal(to(sent, 'bernardo@denmark.lit')[0]!.getChild('event', NS.event)!.getChild('subscription')!.attrs.subscription, 'subscribed');
      const list = ok(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><subscriptions node='princely_musings'/></pubsub>`));
      assert.deepEqual(list!.getChild('subscriptions')!.getChildren('subscription').map((s) => `${s.attrs.jid} ${s.attrs.subscription}`), ['bernardo@denmark.lit subscribed']);
    });

    it('lists affiliations and keeps at least one owner (§8.9.2.4)', async () => {
      const h = service();
      await create(h);
      const r = await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'><affiliation jid='hamlet@denmark.lit' affiliation='none'/><affiliation jid='polonius@denmark.lit' affiliation='outcast'/><affiliation jid='bard@shakespeare.lit' affiliation='publisher'/></affiliations></pubsub>`);
      fails(r, 'modify', 'not-acceptable');
      const failed = r.ok ? [] : r.stanza.getChild('pubsub', NS.owner)!.getChild('affiliations')!.getChildren('affiliation');
      assert.deepEqual(failed.map((a) => `${a.attrs.jid} ${a.attrs.affiliation}`), ['hamlet@denmark.lit owner']);
      const list = ok(await h.request(HAMLET, 'get', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'/></pubsub>`));
      assert.deepEqual(list!.getChild('affiliations')!.getChildren('affiliation').map((a) => `${a.attrs.jid} ${a.attrs.affiliation}`).sort(),
        ['bard@shakespeare.lit publisher', 'hamlet@denmark.lit owner', 'polonius@denmark.lit outcast']);
      ok(await publish(h, 'x', 'princely_musings', ATOM, 'bard@shakespeare.lit/globe'));
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'><affiliation jid='a@b' affiliation='member'/><affiliation jid='a@b' affiliation='none'/></affiliations></pubsub>`), 'modify', 'bad-request');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'><affiliation jid='a@b' affiliation='king'/></affiliations></pubsub>`), 'modify', 'bad-request');
      fails(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'/></pubsub>`), 'auth', 'forbidden');
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'><affiliation jid='bard@shakespeare.lit' affiliation='owner'/></affiliations></pubsub>`));
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='princely_musings'><affiliation jid='hamlet@denmark.lit' affiliation='none'/></affiliations></pubsub>`), 'a second owner lets the first resign');
    });

    it('makes members whitelisted', async () => {
      const h = service();
      await create(h, 'wl', { 'pubsub#access_model': 'whitelist' });
      ok(await publish(h, 'x', 'wl'));
      fails(await items(h, FRANCISCO, '', 'wl'), 'cancel', 'not-allowed', 'closed-node');
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='wl'><affiliation jid='francisco@denmark.lit' affiliation='member'/></affiliations></pubsub>`));
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO, '', 'wl'))), ['x']);
      assert.equal((await subscribe(h, FRANCISCO, 'wl'))!.getChild('subscription')!.attrs.subscription, 'subscribed');
    });
  });

  describe('deleting and purging (§8.4, §8.5)', () => {
    it('deletes a node with a redirect: subscribers (pending ones too) are told, later requests get gone', async () => {
      const h = service();
      await create(h, 'princely_musings', { 'pubsub#access_model': 'authorize' });
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><subscriptions node='princely_musings'><subscription jid='francisco@denmark.lit' subscription='subscribed'/></subscriptions></pubsub>`));
      await subscribe(h, BERNARDO);
      ok(await publish(h, 'x'));
      h.take();
      fails(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.owner}'><delete node='princely_musings'/></pubsub>`), 'auth', 'forbidden');
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><delete node='princely_musings'><redirect uri='xmpp:hamlet@denmark.lit?;node=blog'/></delete></pubsub>`));
      const sent = h.take();
      assert.deepEqual(sent.map((m) => m.attrs.to).sort(), ['bernardo@denmark.lit', 'francisco@denmark.lit']);
      assert.equal(sent[0]!.getChild('event', NS.event)!.getChild('delete')!.getChild('redirect')!.attrs.uri, 'xmpp:hamlet@denmark.lit?;node=blog');
      const gone = fails(await subscribe_(h, FRANCISCO), 'cancel', 'gone');
      assert.equal(gone.getChild('gone')!.text(), 'xmpp:hamlet@denmark.lit?;node=blog');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><delete node='princely_musings'/></pubsub>`), 'cancel', 'gone');
      await create(h);
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO))), [], 'a new node of that name starts empty');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><delete node='nope'/></pubsub>`), 'cancel', 'item-not-found');
    });

    it('purges all items with one notification', async () => {
      const h = service();
      await create(h);
      await subscribe(h, FRANCISCO);
      for (const id of ['1', '2', '3']) ok(await publish(h, id));
      h.take();
      fails(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.owner}'><purge node='princely_musings'/></pubsub>`), 'auth', 'forbidden');
      ok(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.owner}'><purge node='princely_musings'/></pubsub>`));
      const sent = h.take();
      assert.equal(sent.length, 1);
      assert.ok(sent[0]!.getChild('event', NS.event)!.getChild('purge'));
      assert.deepEqual(itemIds(ok(await items(h, FRANCISCO))), []);
    });
  });

  describe('request syntax', () => {
    it('refuses wrong iq types, unknown requests and stray siblings with bad-request', async () => {
      const h = service();
      await create(h);
      fails(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><items node='princely_musings'/></pubsub>`), 'modify', 'bad-request');
      fails(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><subscribe node='princely_musings' jid='francisco@denmark.lit'/></pubsub>`), 'modify', 'bad-request');
      fails(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><frobnicate/></pubsub>`), 'modify', 'bad-request');
      fails(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'/>`), 'modify', 'bad-request');
      fails(await h.request(FRANCISCO, 'get', `<pubsub xmlns='${NS.pubsub}'><items node='princely_musings'/><subscriptions/></pubsub>`), 'modify', 'bad-request');
      fails(await h.request(HAMLET, 'set', `<pubsub xmlns='${NS.pubsub}'><configure node='princely_musings'/></pubsub>`), 'modify', 'bad-request');
    });

    it('echoes the request in error replies and puts the pubsub condition after the defined one', async () => {
      const h = service();
      await create(h);
      const r = await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='princely_musings' jid='bernardo@denmark.lit'/></pubsub>`);
      assert.ok(!r.ok);
      if (!r.ok) {
        assert.equal(r.stanza.attrs.type, 'error');
        assert.equal(r.stanza.attrs.to, FRANCISCO);
        assert.ok(r.stanza.getChild('pubsub', NS.pubsub)?.getChild('subscribe'));
        const names = r.error.getChildElements().map((c) => c.name);
        assert.deepEqual(names, ['bad-request', 'text', 'invalid-jid']);
      }
    });
  });

  describe('durability and housekeeping', () => {
    it('keeps nodes, items, affiliations and subscriptions across a restart (sqlite)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cadence-pubsub-'));
      const sm = new StorageManager({ driver: 'sqlite', dataDir: dir });
      try {
        const driver = { map: (h: string, s: string) => sm.map(h, s), archive: (h: string, s: string) => sm.archive(h, s) };
        const h = harness({ jid: SVC, kind: 'service' }, driver as never);
        await create(h, 'princely_musings', { 'pubsub#max_items': '3', 'pubsub#title': 'Kept' });
        await subscribe(h, FRANCISCO);
        for (const id of ['a', 'b', 'c', 'd']) ok(await publish(h, id));
        h.restart();
        assert.deepEqual(itemIds(ok(await items(h, FRANCISCO))), ['b', 'c', 'd']);
        assert.deepEqual((await h.service.subscriptionsOf(FRANCISCO)).map((s) => s.subscription), ['subscribed']);
        assert.deepEqual(await h.service.discoItems(FRANCISCO), [{ jid: SVC, node: 'princely_musings', name: 'Kept' }]);
        h.take();
        ok(await publish(h, 'e'));
        assert.deepEqual(h.take().map((m) => m.attrs.to).sort(), ['francisco@denmark.lit', 'francisco@denmark.lit'], 'the new item and the retraction of the oldest');
      } finally {
        await sm.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('removes a deleted account: its subscriptions, affiliations, and nodes it alone owned', async () => {
      const h = service();
      await create(h, 'hamlets');
      ok(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.pubsub}'><create node='franciscos'/></pubsub>`));
      ok(await h.request(FRANCISCO, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='franciscos'><affiliation jid='bernardo@denmark.lit' affiliation='owner'/></affiliations></pubsub>`));
      await subscribe(h, FRANCISCO, 'hamlets');
      await subscribe(h, BERNARDO, 'hamlets');
      h.take();
      await h.service.removeEntity('hamlet@denmark.lit');
      assert.deepEqual((await h.service.discoItems(BERNARDO)).map((i) => i.node), ['franciscos']);
      assert.deepEqual(h.take().map((m) => m.attrs.to).sort(), ['bernardo@denmark.lit', 'francisco@denmark.lit'], 'subscribers of the deleted node are told');
      await h.service.removeEntity('francisco@denmark.lit');
      const affs = await h.service.nodeAffiliations(BERNARDO, 'franciscos');
      assert.deepEqual(affs, [{ jid: 'bernardo@denmark.lit', affiliation: 'owner' }]);
    });

    it('ends a subscription whose notification bounced with a cancel error (§12.4)', async () => {
      const h = service();
      await create(h);
      await subscribe(h, FRANCISCO);
      assert.equal(await h.service.notificationBounced('francisco@denmark.lit', 'wait', 'resource-constraint'), 0);
      assert.equal(await h.service.notificationBounced('francisco@denmark.lit', 'cancel', 'item-not-found'), 1);
      assert.deepEqual(await h.service.subscriptionsOf(FRANCISCO), []);
    });

    it('runs concurrent requests one after another without losing writes', async () => {
      const h = service();
      await create(h, 'busy', { 'pubsub#max_items': '100' });
      await Promise.all(Array.from({ length: 20 }, (_, i) => publish(h, `i${i}`, 'busy')));
      await Promise.all(Array.from({ length: 5 }, (_, i) => subscribe(h, `s${i}@denmark.lit/r`, 'busy')));
      assert.equal(itemIds(ok(await items(h, HAMLET, '', 'busy'))).length, 20);
      assert.equal((await h.service.nodeSubscriptions(HAMLET, 'busy')).length, 5);
    });
  });
});

function subscribe_(h: Harness, who: string) {
  return h.request(who, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='princely_musings' jid='${who.split('/')[0]}'/></pubsub>`);
}
