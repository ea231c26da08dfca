// Privileged entities (XEP-0356 0.4.1) and namespace delegation (XEP-0355, admin mode): grants,
// advertisements, the check of each stanza a component sends, what it is sent, and iqs in flight.
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import {
  ClientDelegations, Delegations, NS_DELEGATION, clientDelegationForm, parseClientDelegationAnswer, parseClientDelegationRequest, NS_FORWARD, NS_PRIVILEGE, PresenceRelay, PrivilegedIqs,
  checkComponentStanza, checkDelegationConfig, checkPrivilegeConfig, delegationAdvertisement, delegationDiscoNode,
  effectiveGrant, matchDelegation, nestDiscoInfo, presenceFor, privilegeAdvertisement, rosterPushFor, type DelegationConfig, type PrivilegeDecision,
} from '../../core/util/privilege.ts';
import { at } from '../helpers/assert.ts';

const parseEl = (xml: string) => parse(xml) as unknown as Element;
const HOST = 'capulet.lit';
const PUBSUB = 'pubsub.capulet.lit';

const FULL = effectiveGrant({ roster: 'both', message: 'outgoing', presence: 'roster', iq: { 'http://jabber.org/protocol/pubsub': 'set', 'urn:xmpp:mam:2': 'get' } });
const READ_ONLY = effectiveGrant({ roster: 'get' });
const NOTHING = effectiveGrant(undefined);

function refused(d: PrivilegeDecision, condition = 'forbidden'): string {
  if (d.kind !== 'refuse') assert.fail(`expected a refusal, got ${d.kind}`);
  assert.equal(d.error.condition, condition);
  return d.error.text;
}

describe('privileged entities (XEP-0356) and namespace delegation (XEP-0355)', () => {
  describe('configuration', () => {
    it('accepts sound grants and names every contradiction', () => {
      assert.deepEqual(checkPrivilegeConfig({ [PUBSUB]: { roster: 'both', rosterPush: false, message: 'outgoing', presence: 'roster', iq: { 'urn:xmpp:mam:2': 'get' } } }), []);
      assert.deepEqual(checkPrivilegeConfig({
        'juliet@capulet.lit': {},
        [PUBSUB]: { roster: 'set', rosterPush: true, presence: 'roster', message: 'all' as never, iq: { [NS_PRIVILEGE]: 'both', 'urn:x': 'maybe' as never } },
      }), [
        "privilegedEntities['juliet@capulet.lit']: the key must be a component's domain",
        "privilegedEntities['pubsub.capulet.lit'].message: one of none, outgoing",
        "privilegedEntities['pubsub.capulet.lit'].rosterPush: roster pushes need roster get or both",
        "privilegedEntities['pubsub.capulet.lit'].presence: 'roster' needs roster get or both",
        `privilegedEntities['pubsub.capulet.lit'].iq['${NS_PRIVILEGE}']: privileges themselves cannot be granted`,
        "privilegedEntities['pubsub.capulet.lit'].iq['urn:x']: one of none, get, set, both",
      ]);
      assert.deepEqual(checkDelegationConfig({ 'urn:xmpp:mam:2': { jid: PUBSUB, filtering: ['node'] } }), []);
      assert.deepEqual(checkDelegationConfig({ [NS_DELEGATION]: { jid: PUBSUB }, 'urn:y': { jid: 'a@b', filtering: ['no good'] } }), [
        `delegations['${NS_DELEGATION}']: ${NS_DELEGATION} cannot be delegated`,
        "delegations['urn:y'].jid: the managing component's domain",
        "delegations['urn:y'].filtering: 'no good' is not an attribute name",
      ]);
    });

    it('applies the defaults: nothing unless configured, roster pushes with read access only', () => {
      assert.deepEqual({ ...NOTHING, iq: [...NOTHING.iq] }, { roster: 'none', rosterPush: false, message: 'none', presence: 'none', iq: [] });
      assert.equal(READ_ONLY.rosterPush, true);
      assert.equal(effectiveGrant({ roster: 'set' }).rosterPush, false);
      assert.equal(effectiveGrant({ roster: 'both', rosterPush: false }).rosterPush, false);
      assert.deepEqual([...effectiveGrant({ iq: { 'urn:a': 'none', 'urn:b': 'get' } }).iq], [['urn:b', 'get']]);
    });
  });

  it('advertises the grants to the component as §4.2 and §7.5 show', () => {
    const m = privilegeAdvertisement(HOST, PUBSUB, FULL, '54321');
    assert.equal(m.toString(), `<message from="${HOST}" to="${PUBSUB}" id="54321"><privilege xmlns="${NS_PRIVILEGE}">`
      + '<perm access="roster" type="both" push="true"/><perm access="message" type="outgoing"/><perm access="presence" type="roster"/>'
      + '<perm access="iq"><namespace ns="http://jabber.org/protocol/pubsub" type="set"/><namespace ns="urn:xmpp:mam:2" type="get"/></perm></privilege></message>');
    const none = privilegeAdvertisement(HOST, PUBSUB, NOTHING, '1').toString();
    assert.match(none, /<perm access="roster" type="none"\/><perm access="message" type="none"\/><perm access="presence" type="none"\/><\/privilege>/);
    const cfg: DelegationConfig = { 'urn:xmpp:mam:2': { jid: PUBSUB, filtering: ['node'] }, 'http://jabber.org/protocol/pubsub': { jid: PUBSUB }, 'urn:other': { jid: 'other.capulet.lit' } };
    assert.equal(delegationAdvertisement(HOST, PUBSUB, cfg, '12345')?.toString(), `<message from="${HOST}" to="${PUBSUB}" id="12345"><delegation xmlns="${NS_DELEGATION}">`
      + '<delegated namespace="urn:xmpp:mam:2"><attribute name="node"/></delegated><delegated namespace="http://jabber.org/protocol/pubsub"/></delegation></message>');
    assert.equal(delegationAdvertisement(HOST, 'nobody.capulet.lit', cfg), undefined);
    assert.equal(delegationDiscoNode('http://jabber.org/protocol/pubsub'), 'urn:xmpp:delegation:2::http://jabber.org/protocol/pubsub');
    assert.equal(delegationDiscoNode('http://jabber.org/protocol/pubsub', true), 'urn:xmpp:delegation:2:bare:http://jabber.org/protocol/pubsub');
  });

  describe('roster access (§4)', () => {
    const rosterIq = (type: string, to = 'juliet@capulet.lit') => parseEl(`<iq from='${PUBSUB}' to='${to}' type='${type}' id='roster1'><query xmlns='jabber:iq:roster'/></iq>`);

    it('lets a component get or set a managed entity roster as its grant says, forbidden otherwise', () => {
      assert.deepEqual(checkComponentStanza(rosterIq('get'), READ_ONLY, HOST), { kind: 'roster', managed: 'juliet@capulet.lit', op: 'get' });
      assert.deepEqual(checkComponentStanza(rosterIq('get', 'Juliet@Capulet.lit'), READ_ONLY, HOST), { kind: 'roster', managed: 'juliet@capulet.lit', op: 'get' });
      assert.match(refused(checkComponentStanza(rosterIq('set'), READ_ONLY, HOST)), /No roster set privilege/);
      assert.match(refused(checkComponentStanza(rosterIq('get'), NOTHING, HOST)), /No roster get privilege/);
      assert.deepEqual(checkComponentStanza(rosterIq('set'), FULL, HOST), { kind: 'roster', managed: 'juliet@capulet.lit', op: 'set' });
      assert.deepEqual(checkComponentStanza(rosterIq('get', 'juliet@capulet.lit/balcony'), READ_ONLY, HOST), { kind: 'none' }, 'a full JID is an ordinary iq');
      assert.deepEqual(checkComponentStanza(rosterIq('get', 'romeo@montague.lit'), FULL, HOST), { kind: 'none' }, 'another host is not managed here');
      assert.deepEqual(checkComponentStanza(rosterIq('result'), FULL, HOST), { kind: 'none' });
    });

    it('pushes roster changes to a component with read access, from the managed bare JID (§4.4)', () => {
      const item = parseEl("<item jid='nurse@example.com'/>");
      const push = rosterPushFor(READ_ONLY, 'juliet@capulet.lit', PUBSUB, item, 'roster_push_1');
      assert.equal(push?.toString(), `<iq type="set" from="juliet@capulet.lit" to="${PUBSUB}" id="roster_push_1"><query xmlns="jabber:iq:roster"><item jid="nurse@example.com"/></query></iq>`);
      assert.equal(rosterPushFor(effectiveGrant({ roster: 'set' }), 'juliet@capulet.lit', PUBSUB, item), undefined);
      assert.equal(rosterPushFor(effectiveGrant({ roster: 'get', rosterPush: false }), 'juliet@capulet.lit', PUBSUB, item), undefined);
    });
  });

  describe('messages on behalf of the server (§5)', () => {
    const wrapped = (inner: string, to = HOST) => parseEl(`<message from='${PUBSUB}' to='${to}' id='notif1'><privilege xmlns='${NS_PRIVILEGE}'><forwarded xmlns='${NS_FORWARD}'>${inner}</forwarded></privilege></message>`);
    const event = "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='http://jabber.org/protocol/tune'/></event>";

    it('unwraps a forwarded message from a bare JID of the server when message access is outgoing', () => {
      const d = checkComponentStanza(wrapped(`<message from='juliet@capulet.lit' id='foo' to='romeo@montague.lit/orchard' xmlns='jabber:client'>${event}</message>`), FULL, HOST);
      assert.equal(d.kind, 'message');
      assert.equal(d.kind === 'message' && d.message.toString(), `<message from="juliet@capulet.lit" id="foo" to="romeo@montague.lit/orchard">${event.replace(/'/g, '"')}</message>`);
      const fromServer = checkComponentStanza(wrapped(`<message from='${HOST}' to='romeo@montague.lit'><body>hi</body></message>`), FULL, HOST);
      assert.equal(fromServer.kind, 'message', 'the server itself (slixmpp leaves the inner namespace to inheritance)');
    });

    it('refuses with forbidden: no grant, a full JID, a foreign JID, a non-client namespace', () => {
      const msg = (from: string, ns = 'jabber:client') => wrapped(`<message xmlns='${ns}' from='${from}' to='romeo@montague.lit'><body>x</body></message>`);
      assert.match(refused(checkComponentStanza(msg('juliet@capulet.lit'), READ_ONLY, HOST)), /No message privilege/);
      assert.match(refused(checkComponentStanza(msg('juliet@capulet.lit/balcony'), FULL, HOST)), /bare JID/);
      assert.match(refused(checkComponentStanza(msg('romeo@montague.lit'), FULL, HOST)), /bare JID/);
      assert.match(refused(checkComponentStanza(msg(PUBSUB), FULL, HOST)), /bare JID/, 'not even as the component');
      assert.match(refused(checkComponentStanza(msg('juliet@capulet.lit', 'urn:evil'), FULL, HOST)), /jabber:client/);
      refused(checkComponentStanza(wrapped(`<message from='juliet@capulet.lit'/>`), FULL, HOST), 'jid-malformed');
      refused(checkComponentStanza(wrapped(''), FULL, HOST), 'bad-request');
      assert.deepEqual(checkComponentStanza(msg('juliet@capulet.lit'), FULL, 'montague.lit'), { kind: 'none' }, 'only a message to the host is a privileged one');
    });
  });

  describe('iqs on behalf of users (§6)', () => {
    const PUBSUB_NS = 'http://jabber.org/protocol/pubsub';
    const priv = (outer: { type?: string; to?: string }, inner: string) =>
      parseEl(`<iq from='${PUBSUB}' to='${outer.to ?? 'juliet@capulet.lit'}' type='${outer.type ?? 'set'}' id='priv_iq_1'><privileged_iq xmlns='${NS_PRIVILEGE}'>${inner}</privileged_iq></iq>`);
    const subscribe = `<pubsub xmlns='${PUBSUB_NS}'><subscribe node='urn:xmpp:microblog:0' jid='juliet@capulet.lit'/></pubsub>`;
    const good = `<iq xmlns='jabber:client' type='set' to='romeo@montaigu.lit' id='sub_1'>${subscribe}</iq>`;

    it('accepts the example of §6.3 and sends the encapsulated iq from the managed bare JID', () => {
      const d = checkComponentStanza(priv({}, good), FULL, HOST);
      assert.equal(d.kind, 'iq');
      if (d.kind !== 'iq') return;
      assert.equal(d.managed, 'juliet@capulet.lit');
      assert.equal(d.iq.attrs.from, 'juliet@capulet.lit');
      assert.equal(d.iq.attrs.xmlns, undefined);
    });

    it('refuses each §6.3 condition with forbidden', () => {
      assert.match(refused(checkComponentStanza(priv({}, good.replace("xmlns='jabber:client' ", '')), FULL, HOST)), /jabber:client/);
      assert.match(refused(checkComponentStanza(priv({ type: 'get' }, good), FULL, HOST)), /type of the top-level/);
      assert.match(refused(checkComponentStanza(priv({}, good.replace("type='set'", "type='set' from='nurse@capulet.lit'")), FULL, HOST)), /from must be/);
      assert.match(refused(checkComponentStanza(priv({ type: 'get' }, good.replace("type='set'", "type='get'")), FULL, HOST)), /No iq get privilege/);
      assert.match(refused(checkComponentStanza(priv({}, good.replace(PUBSUB_NS, 'urn:xmpp:blocking')), FULL, HOST)), /No iq set privilege for urn:xmpp:blocking/);
      assert.match(refused(checkComponentStanza(priv({}, good), READ_ONLY, HOST)), /No iq set privilege/);
      assert.match(refused(checkComponentStanza(priv({}, `${good}${good}`), FULL, HOST)), /one iq/);
      assert.match(refused(checkComponentStanza(priv({ to: 'juliet@capulet.lit/balcony' }, good), FULL, HOST)), /bare JID of a managed entity/);
      assert.match(refused(checkComponentStanza(priv({ to: HOST }, good), FULL, HOST)), /bare JID of a managed entity/);
      assert.match(refused(checkComponentStanza(priv({ to: 'romeo@montague.lit' }, good), FULL, HOST)), /bare JID of a managed entity/);
      assert.equal(checkComponentStanza(priv({}, good.replace("type='set'", "type='set' from='Juliet@capulet.lit'")), FULL, HOST).kind, 'iq', 'its own bare JID is fine');
    });

    it('tracks the iq in flight under an id of its own and forwards the response inside <privilege/>', () => {
      let now = 0;
      const inFlight = new PrivilegedIqs({ now: () => now, timeoutMs: 1000, newId: () => 'srv1' });
      const outer = priv({}, good);
      const d = checkComponentStanza(outer, FULL, HOST) as Extract<PrivilegeDecision, { kind: 'iq' }>;
      const sent = inFlight.send(PUBSUB, outer, d);
      assert.ok(sent.ok);
      assert.equal(sent.stanza.toString(), `<iq type="set" to="romeo@montaigu.lit" id="srv1" from="juliet@capulet.lit">${subscribe.replace(/'/g, '"')}</iq>`);
      const spoof = parseEl(`<iq type='result' from='mallory@evil.lit' to='juliet@capulet.lit' id='srv1'/>`);
      assert.equal(inFlight.response(spoof), undefined, 'an answer from elsewhere is not the response');
      const resp = parseEl(`<iq type='result' from='romeo@montaigu.lit' to='juliet@capulet.lit' id='srv1'><pubsub xmlns='${PUBSUB_NS}'><subscription node='urn:xmpp:microblog:0' jid='juliet@capulet.lit' subscription='subscribed'/></pubsub></iq>`);
      const back = inFlight.response(resp);
      assert.ok(back);
      assert.deepEqual([back.attrs.type, back.attrs.from, back.attrs.to, back.attrs.id], ['result', 'juliet@capulet.lit', PUBSUB, 'priv_iq_1']);
      const fwd = back.getChild('privilege', NS_PRIVILEGE)?.getChild('forwarded', NS_FORWARD)?.getChild('iq');
      assert.deepEqual([fwd?.attrs.id, fwd?.attrs.xmlns, fwd?.attrs.from], ['sub_1', 'jabber:client', 'romeo@montaigu.lit'], "the component's id restored");
      assert.equal(inFlight.response(resp), undefined, 'answered once');

      inFlight.send(PUBSUB, outer, d);
      now = 1000;
      const timedOut = inFlight.expire();
      assert.equal(timedOut.length, 1);
      assert.match(at(timedOut, 0).toString(), /<iq type="error" from="juliet@capulet.lit" to="pubsub.capulet.lit" id="priv_iq_1"><error type="wait"><remote-server-timeout/);
      inFlight.send(PUBSUB, outer, d);
      inFlight.forget(PUBSUB);
      assert.equal(inFlight.size, 0);
      const full = new PrivilegedIqs({ max: 0 });
      const r = full.send(PUBSUB, outer, d);
      assert.ok(!r.ok && r.error.condition === 'resource-constraint');
    });
  });

  describe('presence (§7)', () => {
    it('copies initial and unavailable presence only, by the presence access', () => {
      const avail = parseEl(`<presence from='juliet@capulet.lit/balcony' id='presence1' xml:lang='en'><show>chat</show></presence>`);
      const copy = presenceFor(effectiveGrant({ presence: 'managed_entity' }), avail, 'managed-entity', PUBSUB);
      assert.equal(copy?.toString(), `<presence from="juliet@capulet.lit/balcony" id="presence1" xml:lang="en" to="${PUBSUB}"><show>chat</show></presence>`);
      assert.equal(presenceFor(effectiveGrant({ presence: 'managed_entity' }), avail, 'roster-contact', PUBSUB), undefined, 'contacts need roster presence');
      assert.ok(presenceFor(FULL, avail, 'roster-contact', PUBSUB), 'roster presence implies managed entity presence and adds contacts');
      assert.ok(presenceFor(FULL, avail, 'managed-entity', PUBSUB));
      assert.equal(presenceFor(FULL, parseEl("<presence from='a@b/c' type='subscribe'/>"), 'managed-entity', PUBSUB), undefined);
      assert.ok(presenceFor(FULL, parseEl("<presence from='a@b/c' type='unavailable'/>"), 'managed-entity', PUBSUB));
      assert.equal(presenceFor(NOTHING, avail, 'managed-entity', PUBSUB), undefined);
    });

    it('sends each presence once to a component (business rule 2)', () => {
      const relay = new PresenceRelay();
      const p = (xml: string) => parseEl(xml);
      assert.equal(relay.offer(p(`<presence from='romeo@montague.lit/orchard' to='${PUBSUB}'/>`)), true);
      assert.equal(relay.offer(p(`<presence from='romeo@montague.lit/orchard' to='${PUBSUB}'/>`)), false, 'seen through a second roster');
      assert.equal(relay.offer(p(`<presence from='romeo@montague.lit/orchard' to='${PUBSUB}'><show>away</show></presence>`)), true, 'a change is sent');
      assert.equal(relay.offer(p(`<presence from='romeo@montague.lit/orchard' to='${PUBSUB}' type='unavailable'/>`)), true);
      assert.equal(relay.offer(p(`<presence from='romeo@montague.lit/orchard' to='${PUBSUB}' type='unavailable'/>`)), false);
      relay.offer(p(`<presence from='romeo@montague.lit/orchard' to='${PUBSUB}'/>`));
      relay.reset();
      assert.equal(relay.offer(p(`<presence from='romeo@montague.lit/orchard' to='${PUBSUB}'/>`)), true, 'after a reconnection, everything again (rule 1)');
    });

    it("sends a contact's presence once though it reached several users with their own 'to' and id (rule 2)", () => {
      const relay = new PresenceRelay();
      const copy = (id: string) => presenceFor(FULL, parseEl(`<presence xmlns='jabber:client' from='romeo@montague.lit/orchard' to='juliet@capulet.lit' id='${id}'><status>hi</status></presence>`), 'roster-contact', PUBSUB)!;
      assert.equal(relay.offer(copy('a')), true);
      assert.equal(relay.offer(copy('b')), false);
    });
  });

  describe('namespace delegation, client mode (XEP-0355 §5)', () => {
    const request = (inner: string, from = 'pubsub.montaigu.lit') => parseEl(`<iq from='${from}' to='${HOST}' type='get' id='delegation1'><query xmlns='${NS_DELEGATION}' to='juliet@capulet.lit'>${inner}</query></iq>`);

    it('reads the §5.1 request and refuses the delegation namespace itself (rule 5), users of the server, foreign users', () => {
      assert.deepEqual(parseClientDelegationRequest(request(`<delegate namespace='http://jabber.org/protocol/pubsub'/>`), HOST), { managing: 'pubsub.montaigu.lit', user: 'juliet@capulet.lit', namespaces: ['http://jabber.org/protocol/pubsub'] });
      const cond = (r: ReturnType<typeof parseClientDelegationRequest>) => ('condition' in r ? r.condition : 'ok');
      assert.equal(cond(parseClientDelegationRequest(request(`<delegate namespace='${NS_DELEGATION}'/>`), HOST)), 'forbidden');
      assert.equal(cond(parseClientDelegationRequest(request(''), HOST)), 'bad-request');
      assert.equal(cond(parseClientDelegationRequest(request(`<delegate namespace='urn:x'/>`, 'nurse@capulet.lit/x'), HOST)), 'not-allowed');
      assert.equal(cond(parseClientDelegationRequest(request(`<delegate namespace='urn:x'/>`), 'montague.lit')), 'bad-request');
    });

    it('asks with a form defaulting to 0 and grants only what the user allowed, for the session that allowed it', () => {
      const engine = new ClientDelegations({ newId: () => '5439123' });
      const req = { managing: 'pubsub.montaigu.lit', user: 'juliet@capulet.lit', namespaces: ['urn:a', 'urn:b'] };
      const challenge = engine.ask(req)!;
      const form = clientDelegationForm(HOST, 'juliet@capulet.lit/balcony', req, challenge);
      const fields = form.getChild('x', 'jabber:x:data')!.getChildren('field');
      assert.deepEqual(fields.map((f) => [f.attrs.var, f.getChildText('value')]), [['FORM_TYPE', NS_DELEGATION], ['challenge', '5439123'], ['urn:a', '0'], ['urn:b', '0']]);
      // §5.1's example answer: an empty FORM_TYPE.
      const submitted = parseClientDelegationAnswer(parseEl(`<message from='juliet@capulet.lit/balcony' to='${HOST}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value></value></field><field var='challenge'><value>5439123</value></field><field var='urn:a'><value>1</value></field><field var='urn:b'><value>0</value></field><field var='urn:c'><value>1</value></field></x></message>`))!;
      assert.equal(engine.answer('romeo@montague.lit/orchard', submitted.challenge, submitted.allowed), undefined, "not the user's");
      assert.deepEqual(engine.answer('juliet@capulet.lit/balcony', submitted.challenge, submitted.allowed)?.granted, ['urn:a']);
      assert.equal(engine.answer('juliet@capulet.lit/balcony', submitted.challenge, submitted.allowed), undefined, 'a challenge is used once');
      const iq = (attrs: string) => parseEl(`<iq type='get' id='q' ${attrs}><query xmlns='urn:a'/></iq>`);
      assert.deepEqual(engine.match(iq(`from='juliet@capulet.lit/balcony'`), HOST), { namespace: 'urn:a', component: 'pubsub.montaigu.lit' });
      assert.deepEqual(engine.match(iq(`from='romeo@montague.lit/orchard' to='juliet@capulet.lit'`), HOST), { namespace: 'urn:a', component: 'pubsub.montaigu.lit' });
      assert.equal(engine.match(iq(`from='romeo@montague.lit/orchard' to='${HOST}'`), HOST), undefined, "romeo's own request to the server");
      assert.equal(engine.match(iq(`from='romeo@montague.lit/orchard' to='juliet@capulet.lit/balcony'`), HOST), undefined, 'a full JID');
      assert.equal(engine.match(iq(`from='pubsub.montaigu.lit' to='juliet@capulet.lit'`), HOST), undefined, 'the managing entity itself');
      assert.deepEqual(engine.sessionEnded('juliet@capulet.lit/other'), []);
      assert.deepEqual(engine.sessionEnded('juliet@capulet.lit/balcony'), [{ managing: 'pubsub.montaigu.lit', user: 'juliet@capulet.lit' }]);
      assert.equal(engine.match(iq(`from='juliet@capulet.lit/balcony'`), HOST), undefined);
    });

    it('leaves forms that are not its own (another FORM_TYPE, e.g. a CAPTCHA)', () => {
      assert.equal(parseClientDelegationAnswer(parseEl(`<message><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:captcha</value></field><field var='challenge'><value>1</value></field></x></message>`)), undefined);
    });
  });

  describe('disco nesting (XEP-0355 §7.2)', () => {
    const server = () => parseEl(`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im'/><feature var='urn:xmpp:delegation:2'/><feature var='http://jabber.org/protocol/pubsub'/><feature var='http://jabber.org/protocol/pubsub#auto-create'/><feature var='http://jabber.org/protocol/pubsubx'/></query>`);
    const vars = (q: Element) => q.getChildren('feature').map((f) => f.attrs.var as string);

    it("replaces the server's features of the namespace with the managing entity's (§7.2.1 example)", () => {
      const q = server();
      const theirs = parseEl(`<query xmlns='http://jabber.org/protocol/disco#info' node='${delegationDiscoNode('http://jabber.org/protocol/pubsub')}'><feature var='http://jabber.org/protocol/pubsub'/><feature var='http://jabber.org/protocol/pubsub#publish-options'/><feature var='urn:xmpp:delegation:2'/><identity category='pubsub' type='pep'/><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:x</value></field></x><junk/></query>`);
      nestDiscoInfo(q, 'http://jabber.org/protocol/pubsub', theirs);
      assert.deepEqual(vars(q), ['urn:xmpp:delegation:2', 'http://jabber.org/protocol/pubsubx', 'http://jabber.org/protocol/pubsub', 'http://jabber.org/protocol/pubsub#publish-options']);
      assert.deepEqual(q.getChildren('identity').map((i) => i.attrs.type), ['im', 'pep']);
      assert.ok(q.getChild('x', 'jabber:x:data'));
      assert.equal(q.getChild('junk'), undefined);
    });

    it("withdraws the server's own features when the managing entity has given none (away)", () => {
      const q = server();
      nestDiscoInfo(q, 'http://jabber.org/protocol/pubsub', undefined);
      assert.deepEqual(vars(q), ['urn:xmpp:delegation:2', 'http://jabber.org/protocol/pubsubx']);
    });
  });

  describe('namespace delegation (XEP-0355 admin mode)', () => {
    const cfg: DelegationConfig = { 'http://jabber.org/protocol/pubsub': { jid: PUBSUB }, 'urn:xmpp:mam:2': { jid: 'mam.capulet.lit', filtering: ['node'] } };
    const pep = (attrs: string, payloadAttrs = '') => parseEl(`<iq from='juliet@capulet.lit/balcony' id='pep1' type='set' ${attrs}><pubsub xmlns='http://jabber.org/protocol/pubsub' ${payloadAttrs}><publish node='http://jabber.org/protocol/mood'/></pubsub></iq>`);

    it('delegates iqs to the server or to bare JIDs of its users, with the filtering attributes, not from the managing entity', () => {
      assert.deepEqual(matchDelegation(pep(''), cfg, HOST), { namespace: 'http://jabber.org/protocol/pubsub', component: PUBSUB });
      assert.deepEqual(matchDelegation(pep(`to='${HOST}'`), cfg, HOST)?.component, PUBSUB);
      assert.deepEqual(matchDelegation(pep("to='nurse@capulet.lit'"), cfg, HOST)?.component, PUBSUB);
      assert.equal(matchDelegation(pep("to='nurse@capulet.lit/home'"), cfg, HOST), undefined, 'never a full JID');
      assert.equal(matchDelegation(pep("to='romeo@montague.lit'"), cfg, HOST), undefined);
      assert.equal(matchDelegation(pep('').attr('type', 'result') as Element, cfg, HOST), undefined);
      const fromManager = parseEl(`<iq from='${PUBSUB}' to='${HOST}' type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>`);
      assert.equal(matchDelegation(fromManager, cfg, HOST), undefined, 'stanzas of the managing entity are not forwarded (§4.3.1)');
      const mam = (attrs: string) => parseEl(`<iq from='juliet@capulet.lit/balcony' type='set' id='q'><query xmlns='urn:xmpp:mam:2' ${attrs}/></iq>`);
      assert.equal(matchDelegation(mam(''), cfg, HOST), undefined, 'without the filtering attribute the server handles it (N.B.3)');
      assert.equal(matchDelegation(mam("node='urn:xmpp:microblog:0'"), cfg, HOST)?.component, 'mam.capulet.lit');
    });

    it('forwards inside <delegation><forwarded/> and returns the checked result to the requester', () => {
      let now = 0;
      const d = new Delegations({ now: () => now, timeoutMs: 500, newId: () => `delegate${++now}` });
      const iq = pep('');
      const fwd = d.forward(iq, matchDelegation(iq, cfg, HOST)!, HOST);
      assert.ok(fwd.ok);
      assert.equal(fwd.stanza.toString(), `<iq type="set" from="${HOST}" to="${PUBSUB}" id="delegate1"><delegation xmlns="${NS_DELEGATION}"><forwarded xmlns="${NS_FORWARD}">`
        + `<iq from="juliet@capulet.lit/balcony" id="pep1" type="set" xmlns="jabber:client"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="http://jabber.org/protocol/mood"/></pubsub></iq></forwarded></delegation></iq>`);
      const answer = (inner: string, id = 'delegate1', type = 'result', from = PUBSUB) => parseEl(`<iq from='${from}' to='${HOST}' id='${id}' type='${type}'><delegation xmlns='${NS_DELEGATION}'><forwarded xmlns='${NS_FORWARD}'>${inner}</forwarded></delegation></iq>`);
      const goodInner = "<iq to='juliet@capulet.lit/balcony' id='pep1' type='result' xmlns='jabber:client'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>";
      assert.equal(d.reply(answer(goodInner, 'delegate1', 'result', 'other.capulet.lit')), undefined, 'only the managing entity answers');
      const out = d.reply(answer(goodInner));
      assert.equal(out?.misbehaved, false);
      assert.equal(out?.to.toString(), `<iq to="juliet@capulet.lit/balcony" id="pep1" type="result" from="${HOST}"><pubsub xmlns="http://jabber.org/protocol/pubsub"/></iq>`);
      assert.equal(d.reply(answer(goodInner)), undefined, 'answered once');

      const again = () => d.forward(iq, matchDelegation(iq, cfg, HOST)!, HOST) as { ok: true; stanza: Element };
      const unavailable = (r: ReturnType<Delegations['reply']>, misbehaved: boolean) => {
        assert.equal(r?.misbehaved, misbehaved);
        assert.match(r?.to.toString() ?? '', /<iq to="juliet@capulet.lit\/balcony" id="pep1" type="error".*<service-unavailable/);
      };
      unavailable(d.reply(parseEl(`<iq from='${PUBSUB}' to='${HOST}' id='${again().stanza.attrs.id}' type='error'/>`)), false);
      unavailable(d.reply(answer(goodInner.replace("id='pep1'", "id='other'"), again().stanza.attrs.id as string)), true);
      unavailable(d.reply(answer(goodInner.replace('juliet@capulet.lit/balcony', 'nurse@capulet.lit/home'), again().stanza.attrs.id as string)), true);
      unavailable(d.reply(answer(goodInner.replace("type='result'", "type='error'"), again().stanza.attrs.id as string)), true);
      unavailable(d.reply(answer(goodInner.replace("to=", "from='mallory@evil.lit' to="), again().stanza.attrs.id as string)), true);
      unavailable(d.reply(answer('', again().stanza.attrs.id as string)), true);

      const toUser = pep("to='nurse@capulet.lit'");
      const f2 = d.forward(toUser, matchDelegation(toUser, cfg, HOST)!, HOST) as { ok: true; stanza: Element };
      const r2 = d.reply(answer(goodInner.replace("to=", "from='nurse@capulet.lit' to="), f2.stanza.attrs.id as string));
      assert.equal(r2?.to.attrs.from, 'nurse@capulet.lit', 'a request to a bare JID is answered from it');

      again();
      now += 1000;
      assert.equal(d.expire().length, 1);
      again();
      assert.equal(d.drop(PUBSUB).length, 1, 'the managing entity left: service-unavailable for what it had');
      assert.equal(d.size, 0);
      assert.match(Delegations.unavailable(iq).toString(), /<service-unavailable/);
    });
  });
});
