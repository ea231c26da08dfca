// The pubsub engine as Personal Eventing (XEP-0163): Juliet's account is the service. Romeo
// (friend) and the Nurse (servant) share presence with her; Benvolio does not. Covers auto-create,
// access models, filtered notifications through the interest resolver, the last item on presence,
// publish-options the XEP-0223 way (bookmarks), and OMEMO's needs (XEP-0384).
import assert from 'node:assert/strict';
import { contact, fails, fieldValue, harness, NS, ok, publishOptions, submitForm, to, type Harness } from '../helpers/pubsub.ts';

const JULIET = 'juliet@capulet.lit';
const BALCONY = `${JULIET}/balcony`;
const CHAMBER = `${JULIET}/chamber`;
const ROMEO = 'romeo@montague.lit';
const ORCHARD = `${ROMEO}/orchard`;
const NURSE = 'nurse@capulet.lit';
const NURSE_RES = `${NURSE}/chamber`;
const BENVOLIO = 'benvolio@montague.lit';
const BENVOLIO_RES = `${BENVOLIO}/home`;

const TUNE = 'http://jabber.org/protocol/tune';
const TUNE_ITEM = `<item><tune xmlns='${TUNE}'><artist>Gerald Finzi</artist><title>Introduction (Allegro vigoroso)</title></tune></item>`;
const DEVICES = 'urn:xmpp:omemo:2:devices';
const BUNDLES = 'urn:xmpp:omemo:2:bundles';
const BOOKMARKS = 'urn:xmpp:bookmarks:1';

function pep(): Harness {
  const h = harness({ jid: JULIET, kind: 'pep' });
  h.roster.set(`${JULIET} ${ROMEO}`, contact('both', 'Friends'));
  h.roster.set(`${JULIET} ${NURSE}`, contact('both', 'Servants'));
  return h;
}

function publish(h: Harness, node: string, item: string, options = '', from = BALCONY) {
  return h.request(from, 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='${node}'>${item}</publish>${options}</pubsub>`);
}

function items(h: Harness, from: string, node: string, inner = '') {
  return h.request(from, 'get', `<pubsub xmlns='${NS.pubsub}'><items node='${node}'>${inner}</items></pubsub>`);
}

function configure(h: Harness, node: string, fields: Record<string, string | string[]>) {
  return h.request(BALCONY, 'set', `<pubsub xmlns='${NS.owner}'><configure node='${node}'>${submitForm('http://jabber.org/protocol/pubsub#node_config', fields)}</configure></pubsub>`);
}

describe('pubsub engine: personal eventing (XEP-0163)', () => {
  it('identifies the account as pubsub/pep with the PEP features (§9)', async () => {
    const h = pep();
    const info = await h.service.discoInfo(ROMEO);
    assert.deepEqual(info.identities, [{ category: 'pubsub', type: 'pep' }]);
    for (const f of ['access-open', 'access-presence', 'access-roster', 'access-whitelist', 'access-authorize', 'auto-create', 'auto-subscribe', 'filtered-notifications', 'last-published', 'publish-options', 'persistent-items']) {
      assert.ok(info.features.includes(`${NS.pubsub}#${f}`), f);
    }
    assert.ok(!info.features.includes(`${NS.pubsub}#publisher-affiliation`), 'one publisher per node');
  });

  describe('publishing and notifications (§3, §4)', () => {
    it('auto-creates the node with the PEP defaults and notifies interested resources of the account and of contacts', async () => {
      const h = pep();
      h.interest.set(TUNE, [BALCONY, CHAMBER, ORCHARD]);
      const p = ok(await publish(h, TUNE, TUNE_ITEM));
      const id = p!.getChild('publish')!.getChild('item')!.attrs.id;
      const sent = h.take();
      assert.deepEqual(sent.map((m) => m.attrs.to).sort(), [BALCONY, CHAMBER, ORCHARD].sort());
      for (const m of sent) {
        assert.equal(m.attrs.from, JULIET, 'notifications come from the bare JID (§4.3.1)');
        assert.equal(m.attrs.type, 'headline');
        const item = m.getChild('event', NS.event)!.getChild('items')!.getChild('item')!;
        assert.equal(item.attrs.id, id);
        assert.equal(item.attrs.publisher, undefined);
        assert.equal(item.getChild('tune', TUNE)!.getChildText('artist'), 'Gerald Finzi');
        assert.equal(m.getChild('addresses', 'http://jabber.org/protocol/address')!.getChild('address')!.attrs.jid, BALCONY, 'replyto the publishing resource');
      }
      const form = ok(await h.request(BALCONY, 'get', `<pubsub xmlns='${NS.owner}'><configure node='${TUNE}'/></pubsub>`))!.getChild('configure')!.getChild('x')!;
      assert.equal(fieldValue(form, 'pubsub#access_model'), 'presence');
      assert.equal(fieldValue(form, 'pubsub#send_last_published_item'), 'on_sub_and_presence');
      assert.equal(fieldValue(form, 'pubsub#deliver_notifications'), '1');
      assert.equal(fieldValue(form, 'pubsub#max_items'), '1');
    });

    it('sends nothing to resources that do not ask for the node with +notify, and nothing to non-contacts of a presence node', async () => {
      const h = pep();
      h.interest.set(TUNE, [ORCHARD, BENVOLIO_RES]);
      ok(await publish(h, TUNE, TUNE_ITEM));
      assert.deepEqual(h.take().map((m) => m.attrs.to), [ORCHARD]);
    });

    it('keeps one item by default and the latest one wins', async () => {
      const h = pep();
      ok(await publish(h, TUNE, `<item id='a'><tune xmlns='${TUNE}'/></item>`));
      ok(await publish(h, TUNE, `<item id='b'><tune xmlns='${TUNE}'/></item>`));
      const p = ok(await items(h, ORCHARD, TUNE));
      assert.deepEqual(p!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['b']);
    });

    it('lets only the account create and publish', async () => {
      const h = pep();
      fails(await publish(h, TUNE, TUNE_ITEM, '', ORCHARD), 'auth', 'forbidden');
      ok(await publish(h, TUNE, TUNE_ITEM));
      fails(await publish(h, TUNE, TUNE_ITEM, '', ORCHARD), 'auth', 'forbidden');
      fails(await h.request(ORCHARD, 'set', `<pubsub xmlns='${NS.pubsub}'><create node='mine'/></pubsub>`), 'auth', 'forbidden');
    });

    it('does not notify a contact the account blocks (§4.3.3)', async () => {
      const h = pep();
      h.interest.set(TUNE, [ORCHARD, NURSE_RES]);
      h.blocked.add(`${JULIET} ${ROMEO}`);
      ok(await publish(h, TUNE, TUNE_ITEM));
      assert.deepEqual(h.take().map((m) => m.attrs.to), [NURSE_RES]);
    });

    it('sends one notification per interested resource of a bare-JID subscriber, or one to the bare JID without presence (§4.3.2)', async () => {
      const h = pep();
      ok(await publish(h, TUNE, TUNE_ITEM));
      ok(await h.request(ORCHARD, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='${TUNE}' jid='${ROMEO}'/></pubsub>`));
      h.take();
      h.interest.set(TUNE, [ORCHARD, `${ROMEO}/home`]);
      ok(await publish(h, TUNE, TUNE_ITEM));
      assert.deepEqual(h.take().map((m) => m.attrs.to).sort(), [`${ROMEO}/home`, ORCHARD]);
      h.interest.set(TUNE, []);
      ok(await publish(h, TUNE, TUNE_ITEM));
      assert.deepEqual(h.take().map((m) => m.attrs.to), [ROMEO]);
    });

    it('retracts with notifications to interested resources, and deletes nodes with a notification', async () => {
      const h = pep();
      h.interest.set(TUNE, [ORCHARD]);
      ok(await publish(h, TUNE, `<item id='t1'><tune xmlns='${TUNE}'/></item>`));
      h.take();
      ok(await h.request(BALCONY, 'set', `<pubsub xmlns='${NS.pubsub}'><retract node='${TUNE}' notify='1'><item id='t1'/></retract></pubsub>`));
      assert.equal(to(h.take(), ORCHARD)[0]!.getChild('event', NS.event)!.getChild('items')!.getChild('retract')!.attrs.id, 't1');
      ok(await h.request(BALCONY, 'set', `<pubsub xmlns='${NS.owner}'><delete node='${TUNE}'/></pubsub>`));
      assert.equal(to(h.take(), ORCHARD)[0]!.getChild('event', NS.event)!.getChild('delete')!.attrs.node, TUNE);
      fails(await items(h, BALCONY, TUNE), 'cancel', 'item-not-found');
    });
  });

  describe('access models (§4, XEP-0060 §4.5)', () => {
    it('presence (default): contacts with a subscription may retrieve and subscribe; others get presence-subscription-required', async () => {
      const h = pep();
      ok(await publish(h, TUNE, TUNE_ITEM));
      ok(await items(h, ORCHARD, TUNE));
      fails(await items(h, BENVOLIO_RES, TUNE), 'auth', 'not-authorized', 'presence-subscription-required');
      fails(await h.request(BENVOLIO_RES, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='${TUNE}' jid='${BENVOLIO}'/></pubsub>`), 'auth', 'not-authorized', 'presence-subscription-required');
      h.roster.set(`${JULIET} ${BENVOLIO}`, contact('to'));
      fails(await items(h, BENVOLIO_RES, TUNE), 'auth', 'not-authorized', 'presence-subscription-required', );
      h.roster.set(`${JULIET} ${BENVOLIO}`, contact('from'));
      ok(await items(h, BENVOLIO_RES, TUNE));
    });

    it('roster: only contacts in the allowed groups; the form offers the account\'s groups', async () => {
      const h = pep();
      ok(await publish(h, 'http://jabber.org/protocol/geoloc', `<item><geoloc xmlns='http://jabber.org/protocol/geoloc'><locality>Verona</locality></geoloc></item>`));
      ok(await configure(h, 'http://jabber.org/protocol/geoloc', { 'pubsub#access_model': 'roster', 'pubsub#roster_groups_allowed': 'Friends' }));
      ok(await items(h, ORCHARD, 'http://jabber.org/protocol/geoloc'));
      fails(await items(h, NURSE_RES, 'http://jabber.org/protocol/geoloc'), 'auth', 'not-authorized', 'not-in-roster-group');
      const form = ok(await h.request(BALCONY, 'get', `<pubsub xmlns='${NS.owner}'><configure node='http://jabber.org/protocol/geoloc'/></pubsub>`))!.toString();
      assert.match(form, /<option><value>Friends<\/value><\/option>/);
      assert.match(form, /<option><value>Servants<\/value><\/option>/);
      h.interest.set('http://jabber.org/protocol/geoloc', [ORCHARD, NURSE_RES]);
      h.take();
      ok(await publish(h, 'http://jabber.org/protocol/geoloc', `<item><geoloc xmlns='http://jabber.org/protocol/geoloc'/></item>`));
      assert.deepEqual(h.take().map((m) => m.attrs.to), [ORCHARD], 'XEP-0060 §9.2: the nurse is not in the group');
    });

    it('whitelist: only the account and members', async () => {
      const h = pep();
      ok(await publish(h, 'private', `<item><data xmlns='urn:example'/></item>`, publishOptions({ 'pubsub#access_model': 'whitelist' })));
      fails(await items(h, ORCHARD, 'private'), 'cancel', 'not-allowed', 'closed-node');
      ok(await items(h, CHAMBER, 'private'));
      ok(await h.request(BALCONY, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='private'><affiliation jid='${ROMEO}' affiliation='member'/></affiliations></pubsub>`));
      ok(await items(h, ORCHARD, 'private'));
      fails(await h.request(BALCONY, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='private'><affiliation jid='${NURSE}' affiliation='publisher'/></affiliations></pubsub>`), 'cancel', 'feature-not-implemented', 'unsupported', 'publisher-affiliation');
      const affs = ok(await h.request(BALCONY, 'get', `<pubsub xmlns='${NS.owner}'><affiliations node='private'/></pubsub>`));
      assert.deepEqual(affs!.getChild('affiliations')!.getChildren('affiliation').map((a) => `${a.attrs.jid} ${a.attrs.affiliation}`), [`${JULIET} owner`, `${ROMEO} member`]);
      const r = await h.request(BALCONY, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='private'><affiliation jid='${JULIET}' affiliation='none'/></affiliations></pubsub>`);
      fails(r, 'modify', 'not-acceptable');
    });

    it('open: anyone, including entities that only sent directed presence', async () => {
      const h = pep();
      ok(await publish(h, 'open-node', `<item><data xmlns='urn:example'/></item>`, publishOptions({ 'pubsub#access_model': 'open' })));
      ok(await items(h, BENVOLIO_RES, 'open-node'));
      h.interest.set('open-node', [BENVOLIO_RES]);
      h.take();
      ok(await publish(h, 'open-node', `<item><data xmlns='urn:example'/></item>`));
      const [m] = h.take();
      assert.equal(m!.attrs.to, BENVOLIO_RES);
      assert.equal(m!.getChild('addresses', 'http://jabber.org/protocol/address'), undefined, 'no replyto to an entity without a presence subscription');
    });

    it('lists in disco#items only the nodes the requester may see (§9.2)', async () => {
      const h = pep();
      ok(await publish(h, TUNE, TUNE_ITEM));
      ok(await publish(h, 'open-node', `<item><data xmlns='urn:example'/></item>`, publishOptions({ 'pubsub#access_model': 'open' })));
      ok(await publish(h, 'private', `<item><data xmlns='urn:example'/></item>`, publishOptions({ 'pubsub#access_model': 'whitelist' })));
      const nodes = async (who: string) => (await h.service.discoItems(who)).map((i) => i.node).sort();
      assert.deepEqual(await nodes(BALCONY), ['http://jabber.org/protocol/tune', 'open-node', 'private']);
      assert.deepEqual(await nodes(ORCHARD), ['http://jabber.org/protocol/tune', 'open-node']);
      assert.deepEqual(await nodes(BENVOLIO_RES), ['open-node']);
      await assert.rejects(h.service.discoInfo(BENVOLIO_RES, 'private'), (e: Error & { condition?: string }) => e.condition === 'item-not-found');
    });

    it('cancels subscriptions that lose access when the roster changes (§8.1)', async () => {
      const h = pep();
      ok(await publish(h, TUNE, TUNE_ITEM));
      ok(await h.request(NURSE_RES, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='${TUNE}' jid='${NURSE}'/></pubsub>`));
      h.take();
      await h.service.relationshipChanged(NURSE);
      assert.equal(h.take().length, 0, 'still a contact');
      h.roster.delete(`${JULIET} ${NURSE}`);
      await h.service.relationshipChanged(NURSE);
      const [m] = h.take();
      assert.equal(m!.attrs.to, NURSE);
      assert.equal(m!.getChild('event', NS.event)!.getChild('subscription')!.attrs.subscription, 'none');
      assert.deepEqual(await h.service.subscriptionsOf(NURSE_RES), []);
    });
  });

  describe('the last published item on presence (§4.3.3, §4.3.4)', () => {
    it('goes to a newly available interested resource, delayed, once per call the glue makes', async () => {
      const h = pep();
      ok(await publish(h, TUNE, `<item id='now'><tune xmlns='${TUNE}'><title>Song</title></tune></item>`));
      h.take();
      assert.equal(await h.service.sendLastItems(`${ROMEO}/home`, [TUNE]), 1);
      const [m] = h.take();
      assert.equal(m!.attrs.to, `${ROMEO}/home`);
      assert.equal(m!.attrs.from, JULIET);
      assert.equal(m!.getChild('event', NS.event)!.getChild('items')!.getChild('item')!.attrs.id, 'now');
      assert.ok(m!.getChild('delay', 'urn:xmpp:delay'));
      assert.equal(await h.service.sendLastItems(`${JULIET}/phone`, [TUNE]), 1, "the account's own new resource too");
      h.take();
      assert.equal(await h.service.sendLastItems(BENVOLIO_RES, [TUNE]), 0, 'not a contact');
      assert.equal(await h.service.sendLastItems(`${ROMEO}/home`, ['http://jabber.org/protocol/mood']), 0, 'not interested in this node');
      h.blocked.add(`${JULIET} ${ROMEO}`);
      assert.equal(await h.service.sendLastItems(`${ROMEO}/home`, [TUNE]), 0, 'blocked');
      assert.equal(h.take().length, 0);
    });

    it('is not sent for nodes configured otherwise (send_last_published_item never / on_sub)', async () => {
      const h = pep();
      ok(await publish(h, TUNE, TUNE_ITEM));
      ok(await configure(h, TUNE, { 'pubsub#send_last_published_item': 'on_sub' }));
      assert.equal(await h.service.sendLastItems(ORCHARD, [TUNE]), 0);
    });

    it('goes to a new explicit subscriber at subscription time', async () => {
      const h = pep();
      ok(await publish(h, TUNE, TUNE_ITEM));
      h.take();
      h.interest.set(TUNE, [ORCHARD]);
      ok(await h.request(ORCHARD, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='${TUNE}' jid='${ROMEO}'/></pubsub>`));
      const [m] = h.take();
      assert.equal(m!.attrs.to, ORCHARD, 'a bare-JID subscriber is reached at its interested resource');
      assert.ok(m!.getChild('delay', 'urn:xmpp:delay'));
    });
  });

  describe('publish-options the XEP-0223 way', () => {
    const options = publishOptions({
      'pubsub#persist_items': 'true',
      'pubsub#max_items': 'max',
      'pubsub#send_last_published_item': 'never',
      'pubsub#access_model': 'whitelist',
    });
    const bookmark = (room: string, name: string) =>
      `<item id='${room}'><conference xmlns='${BOOKMARKS}' name='${name}' autojoin='true'><nick>JC</nick></conference></item>`;

    it('stores bookmarks privately (XEP-0402): only the account reads them and only its resources are notified', async () => {
      const h = pep();
      h.interest.set(BOOKMARKS, [BALCONY, CHAMBER, ORCHARD]);
      ok(await publish(h, BOOKMARKS, bookmark('theplay@conference.shakespeare.lit', "The Play's the Thing"), options));
      ok(await publish(h, BOOKMARKS, bookmark('orchard@conference.shakespeare.lit', 'The Orchard'), options));
      assert.deepEqual([...new Set(h.take().map((m) => m.attrs.to))].sort(), [BALCONY, CHAMBER]);
      const p = ok(await items(h, CHAMBER, BOOKMARKS));
      assert.deepEqual(p!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['theplay@conference.shakespeare.lit', 'orchard@conference.shakespeare.lit']);
      fails(await items(h, ORCHARD, BOOKMARKS), 'cancel', 'not-allowed', 'closed-node');
      assert.equal(await h.service.sendLastItems(`${JULIET}/new`, [BOOKMARKS]), 0, 'send_last_published_item never');
    });

    it('refuses a publish whose preconditions the existing node does not meet, and keeps the node as it was', async () => {
      const h = pep();
      ok(await publish(h, BOOKMARKS, bookmark('a@conference.shakespeare.lit', 'A'), options));
      const r = await publish(h, BOOKMARKS, bookmark('b@conference.shakespeare.lit', 'B'), publishOptions({ 'pubsub#access_model': 'presence' }));
      fails(r, 'cancel', 'conflict', 'precondition-not-met');
      const p = ok(await items(h, CHAMBER, BOOKMARKS));
      assert.deepEqual(p!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['a@conference.shakespeare.lit']);
      ok(await configure(h, BOOKMARKS, { 'pubsub#access_model': 'presence' }), 'what clients do next: reconfigure…');
      ok(await publish(h, BOOKMARKS, bookmark('b@conference.shakespeare.lit', 'B'), publishOptions({ 'pubsub#access_model': 'presence' })), '…and publish again');
    });

    it('refuses a publish-option the node cannot meet at creation (a fixed behaviour)', async () => {
      const h = pep();
      fails(await publish(h, 'n', `<item><x xmlns='urn:example'/></item>`, publishOptions({ 'pubsub#purge_offline': '1' })), 'cancel', 'conflict', 'precondition-not-met');
      ok(await publish(h, 'n', `<item><x xmlns='urn:example'/></item>`, publishOptions({ 'pubsub#presence_based_delivery': '1' })));
    });
  });

  describe('OMEMO (XEP-0384 §5.3, §7)', () => {
    const devicelist = `<item id='current'><devices xmlns='urn:xmpp:omemo:2'><device id='12345'/><device id='4223'/></devices></item>`;
    const bundle = (id: string) => `<item id='${id}'><bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>c3Br</spk><spks>c2ln</spks><ik>aWs=</ik><prekeys><pk id='1'>cGsx</pk></prekeys></bundle></item>`;

    it('publishes the device list and bundles with access_model open; a stranger fetches them; contacts with +notify get the device list', async () => {
      const h = pep();
      h.interest.set(DEVICES, [ORCHARD, CHAMBER]);
      ok(await publish(h, DEVICES, devicelist, publishOptions({ 'pubsub#access_model': 'open' })));
      const sent = h.take();
      assert.deepEqual(sent.map((m) => m.attrs.to).sort(), [CHAMBER, ORCHARD].sort());
      const ev = to(sent, ORCHARD)[0]!.getChild('event', NS.event)!.getChild('items')!;
      assert.equal(ev.attrs.node, DEVICES);
      assert.deepEqual(ev.getChild('item')!.getChild('devices', 'urn:xmpp:omemo:2')!.getChildren('device').map((d) => d.attrs.id), ['12345', '4223']);

      ok(await publish(h, BUNDLES, bundle('12345'), publishOptions({ 'pubsub#max_items': 'max', 'pubsub#access_model': 'open' })));
      ok(await publish(h, BUNDLES, bundle('4223'), publishOptions({ 'pubsub#max_items': 'max', 'pubsub#access_model': 'open' })));

      // Benvolio has no presence subscription at all.
      const devices = ok(await items(h, BENVOLIO_RES, DEVICES));
      assert.equal(devices!.getChild('items')!.getChild('item')!.attrs.id, 'current');
      const b = ok(await items(h, BENVOLIO_RES, BUNDLES, "<item id='4223'/>"));
      const got = b!.getChild('items')!.getChildren('item');
      assert.deepEqual(got.map((i) => i.attrs.id), ['4223']);
      assert.equal(got[0]!.getChild('bundle', 'urn:xmpp:omemo:2')!.getChildText('ik'), 'aWs=');
      const all = ok(await items(h, BENVOLIO_RES, BUNDLES));
      assert.deepEqual(all!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['12345', '4223'], 'max_items max keeps every bundle');
      assert.deepEqual((await h.service.discoItems(BENVOLIO_RES)).map((i) => i.node).sort(), [BUNDLES, DEVICES]);
    });

    it('lets a stranger subscribe to the device list and notifies it at its bare JID', async () => {
      const h = pep();
      ok(await publish(h, DEVICES, devicelist, publishOptions({ 'pubsub#access_model': 'open' })));
      h.take();
      const p = ok(await h.request(BENVOLIO_RES, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='${DEVICES}' jid='${BENVOLIO}'/></pubsub>`));
      assert.equal(p!.getChild('subscription')!.attrs.subscription, 'subscribed');
      assert.deepEqual(h.take().map((m) => m.attrs.to), [BENVOLIO], 'the last item on subscription');
      ok(await publish(h, DEVICES, devicelist));
      assert.deepEqual(h.take().map((m) => m.attrs.to), [BENVOLIO]);
    });

    it('keeps the node open when later publishes come without publish-options, and refuses a mismatching precondition', async () => {
      const h = pep();
      ok(await publish(h, DEVICES, devicelist, publishOptions({ 'pubsub#access_model': 'open' })));
      ok(await publish(h, DEVICES, devicelist));
      ok(await items(h, BENVOLIO_RES, DEVICES));
      fails(await publish(h, BUNDLES, bundle('1')).then(async () => publish(h, BUNDLES, bundle('2'), publishOptions({ 'pubsub#max_items': 'max' }))),
        'cancel', 'conflict', 'precondition-not-met');
    });
  });

  describe('account deletion', () => {
    it('clear() removes every node and item of the account', async () => {
      const h = pep();
      ok(await publish(h, TUNE, TUNE_ITEM));
      ok(await publish(h, DEVICES, `<item id='current'><devices xmlns='urn:xmpp:omemo:2'/></item>`));
      await h.service.clear();
      h.restart();
      assert.deepEqual(await h.service.discoItems(BALCONY), []);
      fails(await items(h, BALCONY, TUNE), 'cancel', 'item-not-found');
    });

    it('removeEntity() drops a deleted contact\'s subscriptions and affiliations from the account\'s nodes', async () => {
      const h = pep();
      ok(await publish(h, 'private', `<item><data xmlns='urn:example'/></item>`, publishOptions({ 'pubsub#access_model': 'whitelist' })));
      ok(await h.request(BALCONY, 'set', `<pubsub xmlns='${NS.owner}'><affiliations node='private'><affiliation jid='${ROMEO}' affiliation='member'/></affiliations></pubsub>`));
      ok(await h.request(ORCHARD, 'set', `<pubsub xmlns='${NS.pubsub}'><subscribe node='private' jid='${ROMEO}'/></pubsub>`));
      await h.service.removeEntity(ROMEO);
      assert.deepEqual(await h.service.nodeAffiliations(BALCONY, 'private'), [{ jid: JULIET, affiliation: 'owner' }]);
      assert.deepEqual(await h.service.subscriptionsOf(ORCHARD), []);
    });
  });
});
