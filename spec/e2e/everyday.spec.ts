// Everyday server features end to end, with real clients: vcard-temp (XEP-0054), private XML
// storage (XEP-0049), software version (XEP-0092), entity time (XEP-0202), last activity
// (XEP-0012), contact addresses (XEP-0157), the server's entity capabilities (XEP-0115) and the
// configurable disco identity name.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DateTime } from 'luxon';
import { RawClient, login, stanzaErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { capsVer } from '../../modules/mod_caps.ts';

const PASS = 'everyday-pass';
const HOST = 'localhost';
const USERS = ['romeo', 'juliet', 'nurse', 'paris', 'empty', 'priv', 'friar', 'gone', 'hoard'];
const SERVER_NAME = 'Verona Everyday Server';
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const NS = {
  discoInfo: 'http://jabber.org/protocol/disco#info',
  vcard: 'vcard-temp',
  private: 'jabber:iq:private',
  version: 'jabber:iq:version',
  time: 'urn:xmpp:time',
  last: 'jabber:iq:last',
  caps: 'http://jabber.org/protocol/caps',
  data: 'jabber:x:data',
  serverinfo: 'http://jabber.org/network/serverinfo',
};

const CONTACTS = {
  abuse: ['mailto:abuse@verona.example', 'xmpp:abuse@verona.example'],
  security: ['xmpp:security@verona.example'],
  support: ['https://verona.example/support'],
};


function children(el: Element | undefined, name?: string): Element[] {
  if (!el) return [];
  return el.children.filter((c): c is Element => typeof c !== 'string' && (name === undefined || c.name === name));
}

// -- an independent XEP-0115 §5.1 implementation, to check the server's ver --------------------

const octet = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function verOf(query: Element): string {
  let s = '';
  const ids = children(query, 'identity').map(
    (i) => `${String(i.attrs.category)}/${String(i.attrs.type)}/${(i.attrs['xml:lang'] as string | undefined) ?? ''}/${(i.attrs.name as string | undefined) ?? ''}`,
  );
  for (const id of ids.sort(octet)) s += `${id}<`;
  for (const f of children(query, 'feature').map((f) => String(f.attrs.var)).sort(octet)) s += `${f}<`;
  const forms = children(query, 'x')
    .filter((x) => x.attrs.xmlns === NS.data)
    .map((x) => {
      const ft = children(x, 'field').find((f) => f.attrs.var === 'FORM_TYPE' && f.attrs.type === 'hidden');
      return { x, type: ft ? children(ft, 'value')[0]?.text() : undefined };
    })
    .filter((f): f is { x: Element; type: string } => f.type !== undefined)
    .sort((a, b) => octet(a.type, b.type));
  for (const { x, type } of forms) {
    s += `${type}<`;
    const fields = children(x, 'field').filter((f) => f.attrs.var !== 'FORM_TYPE').sort((a, b) => octet(String(a.attrs.var), String(b.attrs.var)));
    for (const f of fields) {
      s += `${String(f.attrs.var)}<`;
      for (const v of children(f, 'value').map((v) => v.text()).sort(octet)) s += `${v}<`;
    }
  }
  return createHash('sha1').update(s, 'utf8').digest('base64');
}

describe('XEP-0115 verification string (the examples of §5.2 and §5.3)', function () {
  const simple = xml(
    'query',
    { xmlns: NS.discoInfo },
    xml('identity', { category: 'client', type: 'pc', name: 'Exodus 0.9.1' }),
    ...['http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc', 'http://jabber.org/protocol/caps'].map((v) =>
      xml('feature', { var: v }),
    ),
  );
  const complex = xml(
    'query',
    { xmlns: NS.discoInfo },
    xml('identity', { 'xml:lang': 'en', category: 'client', name: 'Psi 0.11', type: 'pc' }),
    xml('identity', { 'xml:lang': 'el', category: 'client', name: '\u03a8 0.11', type: 'pc' }),
    ...['http://jabber.org/protocol/caps', 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc'].map((v) =>
      xml('feature', { var: v }),
    ),
    xml(
      'x',
      { xmlns: NS.data, type: 'result' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'urn:xmpp:dataforms:softwareinfo')),
      xml('field', { var: 'ip_version' }, xml('value', {}, 'ipv4'), xml('value', {}, 'ipv6')),
      xml('field', { var: 'os' }, xml('value', {}, 'Mac')),
      xml('field', { var: 'os_version' }, xml('value', {}, '10.5.1')),
      xml('field', { var: 'software' }, xml('value', {}, 'Psi')),
      xml('field', { var: 'software_version' }, xml('value', {}, '0.11')),
    ),
  );
  const identities = (q: Element) =>
    children(q, 'identity').map((i) => ({
      category: String(i.attrs.category),
      type: String(i.attrs.type),
      name: i.attrs.name as string | undefined,
      lang: i.attrs['xml:lang'] as string | undefined,
    }));
  const features = (q: Element) => children(q, 'feature').map((f) => String(f.attrs.var));

  it("mod_caps computes the XEP's example ver strings", function () {
    assert.equal(capsVer(identities(simple), features(simple), []), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
    assert.equal(capsVer(identities(complex), features(complex), children(complex, 'x')), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
  });

  it("the test's own implementation agrees with the XEP's examples", function () {
    assert.equal(verOf(simple), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
    assert.equal(verOf(complex), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
  });
});

describe('e2e: everyday features (vcard, private, version, time, last, contact info, caps)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  const connect = async (user: string, resource: string, presence = false) => {
    const c = await login(server, user, PASS, { resource, presence });
    clients.push(c);
    return c;
  };

  const expectResult = (reply: Element) => assert.equal(reply.attrs.type, 'result', `expected a result, got ${reply.toString()}`);
  const expectError = (reply: Element, condition: string) => {
    assert.equal(reply.attrs.type, 'error', `expected an error, got ${reply.toString()}`);
    assert.equal(stanzaErrorCondition(reply), condition, reply.toString());
  };

  const discoInfo = (c: TestClient, node?: string) =>
    c.iqRaw(xml('iq', { type: 'get', to: HOST }, xml('query', node ? { xmlns: NS.discoInfo, node } : { xmlns: NS.discoInfo })));

  const vcardGet = (c: TestClient, to?: string) => c.iqRaw(xml('iq', to ? { type: 'get', to } : { type: 'get' }, xml('vCard', { xmlns: NS.vcard })));
  const vcardSet = (c: TestClient, card: Element, to?: string) => c.iqRaw(xml('iq', to ? { type: 'set', to } : { type: 'set' }, card));
  const card = (...props: Element[]) => xml('vCard', { xmlns: NS.vcard }, ...props);

  const privateIq = (c: TestClient, type: 'get' | 'set', content: Element[], to?: string) =>
    c.iqRaw(xml('iq', to ? { type, to } : { type }, xml('query', { xmlns: NS.private }, ...content)));

  const lastOf = (c: TestClient, to: string) => c.iqRaw(xml('iq', { type: 'get', to }, xml('query', { xmlns: NS.last })));

  before(async function () {
    this.timeout(120_000);
    server = await startServer({
      users: Object.fromEntries(USERS.map((u) => [u, PASS])),
      config: {
        modulesEnabled: [
          'tls', 'saslauth', 'bind', 'roster', 'disco', 'ping',
          'vcard', 'private', 'version', 'time', 'lastactivity', 'server_contact_info', 'caps',
          'register',
        ],
        disco: { name: SERVER_NAME },
        server_contact_info: { contacts: CONTACTS },
        vcard: { maxPhotoBytes: 4096, maxSize: 16384 },
        private: { maxElements: 4 },
        caps: { node: 'https://verona.example/cadence' },
      },
    });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    for (const r of raws.splice(0)) r.close();
  });
  after(async function () {
    await server?.destroy();
  });

  // -- disco --------------------------------------------------------------------------------------

  it("lists every module's feature, the configured identity name and the contact addresses in disco#info", async function () {
    const c = await connect('romeo', 'disco');
    const r = await discoInfo(c);
    expectResult(r);
    const query = r.getChild('query', NS.discoInfo)!;
    const features = children(query, 'feature').map((f) => f.attrs.var as string);
    for (const f of [NS.vcard, NS.private, NS.version, NS.time, NS.last, NS.caps, 'urn:xmpp:ping', NS.discoInfo]) {
      assert.ok(features.includes(f), `feature ${f} missing from ${features.join(', ')}`);
    }
    const identity = children(query, 'identity').find((i) => i.attrs.category === 'server');
    assert.equal(identity?.attrs.type, 'im');
    assert.equal(identity?.attrs.name, SERVER_NAME);

    const forms = children(query, 'x').filter((x) => x.attrs.xmlns === NS.data);
    const form = forms.find((x) => children(x, 'field').some((f) => f.attrs.var === 'FORM_TYPE' && f.getChildText('value') === NS.serverinfo));
    assert.ok(form, `no serverinfo form in ${query.toString()}`);
    assert.equal(form.attrs.type, 'result');
    const formType = children(form, 'field').find((f) => f.attrs.var === 'FORM_TYPE')!;
    assert.equal(formType.attrs.type, 'hidden');
    const values = (v: string) => children(children(form, 'field').find((f) => f.attrs.var === v), 'value').map((x) => x.text());
    assert.deepEqual(values('abuse-addresses'), CONTACTS.abuse);
    assert.deepEqual(values('security-addresses'), CONTACTS.security);
    assert.deepEqual(values('support-addresses'), CONTACTS.support);
    assert.deepEqual(values('sales-addresses'), []);
  });

  // -- entity capabilities ------------------------------------------------------------------------

  it('advertises caps in the stream features with a ver that matches disco#info, and answers node#ver', async function () {
    const raw = await RawClient.connect(server.c2sPort);
    raws.push(raw);
    raw.openStream(HOST);
    const features = await raw.expect((el) => el.name === 'stream:features');
    const c = children(features, 'c').find((x) => x.attrs.xmlns === NS.caps);
    assert.ok(c, `no caps in ${features.toString()}`);
    assert.equal(c.attrs.hash, 'sha-1');
    assert.equal(c.attrs.node, 'https://verona.example/cadence');
    const ver = c.attrs.ver as string;
    assert.match(ver, /^[A-Za-z0-9+/]{27}=$/);
    // XEP-0115 §6.3: the server's stream header names it in 'from'.
    assert.equal(raw.streamAttrs?.from, HOST);

    const client = await connect('romeo', 'caps');
    const info = await discoInfo(client);
    expectResult(info);
    const query = info.getChild('query', NS.discoInfo)!;
    assert.equal(verOf(query), ver, 'ver recomputed from disco#info differs');

    const nodeInfo = await discoInfo(client, `https://verona.example/cadence#${ver}`);
    expectResult(nodeInfo);
    const nq = nodeInfo.getChild('query', NS.discoInfo)!;
    assert.equal(nq.attrs.node, `https://verona.example/cadence#${ver}`);
    assert.equal(verOf(nq), ver);
    const sorted = (q: Element) => children(q).map((e) => e.toString()).sort();
    assert.deepEqual(sorted(nq), sorted(query));

    expectError(await discoInfo(client, 'https://verona.example/cadence#bm90LXRoZS12ZXI='), 'item-not-found');

  });

  // -- vcard-temp ----------------------------------------------------------------------------------

  it('stores and returns one\'s own vCard; an empty vCard when none is stored', async function () {
    const c = await connect('empty', 'v');
    const r0 = await vcardGet(c);
    expectResult(r0);
    const empty = r0.getChild('vCard', NS.vcard);
    assert.ok(empty);
    assert.equal(children(empty).length, 0);

    const romeo = await connect('romeo', 'v');
    expectResult(await vcardSet(romeo, card(xml('FN', {}, 'Romeo Montague'), xml('NICKNAME', {}, 'romeo'), xml('N', {}, xml('FAMILY', {}, 'Montague'), xml('GIVEN', {}, 'Romeo')))));
    const r1 = await vcardGet(romeo);
    expectResult(r1);
    const got = r1.getChild('vCard', NS.vcard)!;
    assert.equal(got.getChildText('FN'), 'Romeo Montague');
    assert.equal(got.getChild('N')?.getChildText('GIVEN'), 'Romeo');
    // Addressed to one's own bare JID is the same as no 'to'.
    const r2 = await vcardGet(romeo, 'romeo@localhost');
    expectResult(r2);
    assert.equal(r2.getChild('vCard', NS.vcard)?.getChildText('NICKNAME'), 'romeo');
    // A later set replaces the whole card.
    expectResult(await vcardSet(romeo, card(xml('FN', {}, 'Romeo'), xml('DESC', {}, 'Wherefore?'))));
    const r3 = (await vcardGet(romeo)).getChild('vCard', NS.vcard)!;
    assert.equal(r3.getChildText('FN'), 'Romeo');
    assert.equal(r3.getChild('NICKNAME'), undefined);
  });

  it("returns another user's vCard; item-not-found without one, service-unavailable for no account", async function () {
    const romeo = await connect('romeo', 'v2');
    expectResult(await vcardSet(romeo, card(xml('FN', {}, 'Romeo of Verona'))));
    const juliet = await connect('juliet', 'v2');
    const r = await vcardGet(juliet, 'romeo@localhost');
    expectResult(r);
    assert.equal(r.attrs.from, 'romeo@localhost');
    assert.equal(r.getChild('vCard', NS.vcard)?.getChildText('FN'), 'Romeo of Verona');
    expectError(await vcardGet(juliet, 'paris@localhost'), 'item-not-found');
    expectError(await vcardGet(juliet, 'nobody@localhost'), 'service-unavailable');
  });

  it("forbids setting another user's or the server's vCard", async function () {
    const juliet = await connect('juliet', 'v3');
    expectError(await vcardSet(juliet, card(xml('FN', {}, 'Not Romeo')), 'romeo@localhost'), 'forbidden');
    expectError(await vcardSet(juliet, card(xml('FN', {}, 'Not the server')), HOST), 'forbidden');
    const romeo = await connect('romeo', 'v3');
    assert.notEqual((await vcardGet(romeo)).getChild('vCard', NS.vcard)?.getChildText('FN'), 'Not Romeo');
  });

  it("answers a vCard request to the server's domain with an empty vCard", async function () {
    const c = await connect('nurse', 'v4');
    const r = await vcardGet(c, HOST);
    expectResult(r);
    assert.equal(children(r.getChild('vCard', NS.vcard)).length, 0);
  });

  it('refuses a too large photo or vCard with not-acceptable and keeps the old card', async function () {
    const c = await connect('paris', 'v5');
    const photo = (bytes: number) =>
      xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, Buffer.alloc(bytes, 7).toString('base64').replace(/(.{76})/g, '$1\n')));
    expectResult(await vcardSet(c, card(xml('FN', {}, 'Paris'), photo(4000))));
    const big = await vcardSet(c, card(xml('FN', {}, 'Paris II'), photo(4097)));
    expectError(big, 'not-acceptable');
    assert.equal(big.getChild('error')?.attrs.type, 'modify');
    expectError(await vcardSet(c, card(xml('FN', {}, 'Paris III'), xml('DESC', {}, 'x'.repeat(17000)))), 'not-acceptable');
    const kept = (await vcardGet(c)).getChild('vCard', NS.vcard)!;
    assert.equal(kept.getChildText('FN'), 'Paris');
    assert.equal(Buffer.from(kept.getChild('PHOTO')!.getChildText('BINVAL')!, 'base64').length, 4000);
    // Clean up for other tests (an empty card deletes it).
    expectResult(await vcardSet(c, card()));
  });

  // -- private XML storage ---------------------------------------------------------------------------

  it('stores and returns private XML per element and namespace', async function () {
    const c = await connect('priv', 'p');
    const bookmarks = xml('storage', { xmlns: 'storage:bookmarks' }, xml('conference', { jid: 'council@chat.verona.example', name: 'Council', autojoin: 'true' }));
    const notes = xml('storage', { xmlns: 'storage:rosternotes' }, xml('note', { jid: 'juliet@localhost' }, 'Capulet'));
    expectResult(await privateIq(c, 'set', [bookmarks, notes]));

    const r = await privateIq(c, 'get', [xml('storage', { xmlns: 'storage:bookmarks' })]);
    expectResult(r);
    const q = r.getChild('query', NS.private)!;
    const got = q.getChild('storage', 'storage:bookmarks')!;
    assert.equal(got.getChild('conference')?.attrs.jid, 'council@chat.verona.example');
    assert.equal(children(q).length, 1);

    const r2 = await privateIq(c, 'get', [xml('storage', { xmlns: 'storage:rosternotes' })]);
    assert.equal(r2.getChild('query', NS.private)?.getChild('storage', 'storage:rosternotes')?.getChildText('note'), 'Capulet');

    // Never stored: the empty element comes back.
    const r3 = await privateIq(c, 'get', [xml('prefs', { xmlns: 'urn:example:prefs' })]);
    expectResult(r3);
    const prefs = r3.getChild('query', NS.private)?.getChild('prefs', 'urn:example:prefs');
    assert.ok(prefs);
    assert.equal(children(prefs).length, 0);

    // Same name, other namespace: a different fragment.
    const r4 = await privateIq(c, 'get', [xml('storage', { xmlns: 'storage:other' })]);
    assert.equal(children(r4.getChild('query', NS.private)?.getChild('storage', 'storage:other')).length, 0);

    // Replace, then delete with an empty element.
    expectResult(await privateIq(c, 'set', [xml('storage', { xmlns: 'storage:bookmarks' }, xml('url', { name: 'Verona', url: 'https://verona.example' }))]));
    const r5 = await privateIq(c, 'get', [xml('storage', { xmlns: 'storage:bookmarks' })]);
    const s5 = r5.getChild('query', NS.private)!.getChild('storage', 'storage:bookmarks')!;
    assert.equal(s5.getChild('conference'), undefined);
    assert.equal(s5.getChild('url')?.attrs.name, 'Verona');
    expectResult(await privateIq(c, 'set', [xml('storage', { xmlns: 'storage:bookmarks' })]));
    const r6 = await privateIq(c, 'get', [xml('storage', { xmlns: 'storage:bookmarks' })]);
    assert.equal(children(r6.getChild('query', NS.private)!.getChild('storage', 'storage:bookmarks')).length, 0);
  });

  it('refuses private XML without a namespace of its own, in a reserved namespace, empty or for others', async function () {
    const c = await connect('priv', 'p2');
    // No child at all.
    expectError(await privateIq(c, 'set', []), 'not-acceptable');
    expectError(await privateIq(c, 'get', []), 'bad-request');
    // A child that inherits jabber:iq:private.
    expectError(await privateIq(c, 'set', [xml('prefs', {}, xml('x', {}, '1'))]), 'not-acceptable');
    expectError(await privateIq(c, 'get', [xml('prefs')]), 'not-acceptable');
    // Reserved namespaces.
    expectError(await privateIq(c, 'set', [xml('data', { xmlns: 'jabber:client' })]), 'not-acceptable');
    expectError(await privateIq(c, 'set', [xml('query', { xmlns: 'jabber:iq:private' })]), 'not-acceptable');
    // One valid and one invalid child: nothing is stored.
    expectError(await privateIq(c, 'set', [xml('ok', { xmlns: 'urn:example:ok' }, 'v'), xml('bad', { xmlns: 'jabber:client' })]), 'not-acceptable');
    const r = await privateIq(c, 'get', [xml('ok', { xmlns: 'urn:example:ok' })]);
    assert.equal(r.getChild('query', NS.private)?.getChild('ok', 'urn:example:ok')?.text(), '');
    // More than one fragment in a get.
    expectError(await privateIq(c, 'get', [xml('a', { xmlns: 'urn:example:a' }), xml('b', { xmlns: 'urn:example:b' })]), 'bad-request');
    // Another user's data, or the server's.
    expectError(await privateIq(c, 'get', [xml('storage', { xmlns: 'storage:bookmarks' })], 'romeo@localhost'), 'forbidden');
    expectError(await privateIq(c, 'set', [xml('storage', { xmlns: 'storage:bookmarks' })], 'romeo@localhost'), 'forbidden');
    expectError(await privateIq(c, 'get', [xml('storage', { xmlns: 'storage:bookmarks' })], HOST), 'forbidden');
  });

  it('limits how many private elements a user keeps (policy-violation), replacing and deleting still work', async function () {
    const c = await connect('hoard', 'p3');
    const el = (i: number, v = 'x') => xml('item', { xmlns: `urn:example:hoard:${i}` }, v);
    expectResult(await privateIq(c, 'set', [el(1), el(2), el(3)]));
    expectError(await privateIq(c, 'set', [el(4), el(5)]), 'policy-violation');
    expectResult(await privateIq(c, 'set', [el(4)]));
    expectError(await privateIq(c, 'set', [el(5)]), 'policy-violation');
    expectResult(await privateIq(c, 'set', [el(1, 'replaced')]));
    expectResult(await privateIq(c, 'set', [xml('item', { xmlns: 'urn:example:hoard:2' })]));
    expectResult(await privateIq(c, 'set', [el(5)]));
    const r = await privateIq(c, 'get', [xml('item', { xmlns: 'urn:example:hoard:1' })]);
    assert.equal(r.getChild('query', NS.private)?.getChild('item', 'urn:example:hoard:1')?.text(), 'replaced');
  });

  // -- software version and entity time ---------------------------------------------------------------

  it('answers the software version (name and version, no OS by default)', async function () {
    const c = await connect('nurse', 'ver');
    const r = await c.iqRaw(xml('iq', { type: 'get', to: HOST }, xml('query', { xmlns: NS.version })));
    expectResult(r);
    const q = r.getChild('query', NS.version)!;
    assert.equal(q.getChildText('name'), 'Cadence');
    assert.equal(q.getChildText('version'), VERSION);
    assert.equal(q.getChild('os'), undefined);
  });

  it('answers the entity time: XEP-0082 UTC time and offset', async function () {
    const c = await connect('nurse', 'time');
    const before = Date.now();
    const r = await c.iqRaw(xml('iq', { type: 'get', to: HOST }, xml('time', { xmlns: NS.time })));
    expectResult(r);
    const t = r.getChild('time', NS.time)!;
    const tzo = t.getChildText('tzo')!;
    const utc = t.getChildText('utc')!;
    assert.match(tzo, /^(Z|[+-](0\d|1[0-4]):[0-5]\d)$/);
    assert.match(utc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const parsed = DateTime.fromISO(utc, { zone: 'utc' });
    assert.ok(parsed.isValid, parsed.invalidExplanation ?? utc);
    assert.ok(Math.abs(parsed.toMillis() - before) < 60_000, `${utc} is far from now`);
    // The offset is the server's (same machine as the test).
    assert.equal(tzo, DateTime.local().toFormat('ZZ'));
  });

  // -- last activity ----------------------------------------------------------------------------------

  it("answers the server's uptime to a last activity query to the domain", async function () {
    const c = await connect('nurse', 'up');
    const r = await lastOf(c, HOST);
    expectResult(r);
    const q = r.getChild('query', NS.last)!;
    const seconds = Number(q.attrs.seconds);
    assert.ok(Number.isInteger(seconds) && seconds >= 0 && seconds < 600, `uptime ${q.attrs.seconds}`);
    assert.equal(q.text(), '');
  });

  it('answers last activity only to subscribers: 0 while online, then the time since logout and its status', async function () {
    const friar = await connect('friar', 'cell', true);
    const juliet = await connect('juliet', 'tomb', true);
    // Juliet subscribes to the friar's presence; the friar approves.
    await juliet.send(xml('presence', { to: 'friar@localhost', type: 'subscribe' }));
    await friar.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === 'juliet@localhost');
    await friar.send(xml('presence', { to: 'juliet@localhost', type: 'subscribed' }));
    await juliet.expect((s) => s.name === 'presence' && s.attrs.from === friar.jid && s.attrs.type === undefined);

    // Online and available: 0 seconds, no text.
    const online = await lastOf(juliet, 'friar@localhost');
    expectResult(online);
    assert.equal(online.getChild('query', NS.last)?.attrs.seconds, '0');
    assert.equal(online.getChild('query', NS.last)?.text(), '');

    // Not subscribed: forbidden; no such account: service-unavailable.
    const nurse = await connect('nurse', 'last');
    expectError(await lastOf(nurse, 'friar@localhost'), 'forbidden');
    expectError(await lastOf(nurse, 'nobody@localhost'), 'service-unavailable');

    // The friar leaves with a status.
    await friar.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'Heading Home')));
    await juliet.expect((s) => s.name === 'presence' && s.attrs.from === friar.jid && s.attrs.type === 'unavailable');
    await friar.stop();
    await new Promise((r) => setTimeout(r, 1100));
    const after = await lastOf(juliet, 'friar@localhost');
    expectResult(after);
    const q = after.getChild('query', NS.last)!;
    const seconds = Number(q.attrs.seconds);
    assert.ok(Number.isInteger(seconds) && seconds >= 1 && seconds < 30, `seconds ${q.attrs.seconds}`);
    assert.equal(q.text(), 'Heading Home');
    expectError(await lastOf(nurse, 'friar@localhost'), 'forbidden');

    // The user may always ask about themselves.
    const friar2 = await connect('friar', 'again');
    const self = await friar2.iqRaw(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.last })));
    expectResult(self);
    assert.ok(Number(self.getChild('query', NS.last)?.attrs.seconds) >= 1);
  });

  // -- account deletion and durability ------------------------------------------------------------------

  it("removes a deleted account's vCard, private data and last activity", async function () {
    const gone = await connect('gone', 'bye');
    expectResult(await vcardSet(gone, card(xml('FN', {}, 'Soon gone'))));
    expectResult(await privateIq(gone, 'set', [xml('prefs', { xmlns: 'urn:example:prefs' }, xml('colour', {}, 'red'))]));
    const r = await gone.iqRaw(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:register' }, xml('remove'))));
    expectResult(r);
    await gone.stop();
    await server.adduser('gone', PASS);
    const again = await connect('gone', 'back');
    assert.equal(children((await vcardGet(again)).getChild('vCard', NS.vcard)).length, 0);
    const p = await privateIq(again, 'get', [xml('prefs', { xmlns: 'urn:example:prefs' })]);
    assert.equal(children(p.getChild('query', NS.private)?.getChild('prefs', 'urn:example:prefs')).length, 0);
    // The new account has never logged out (this session is not available): nothing is known.
    expectError(await again.iqRaw(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.last }))), 'item-not-found');
  });

  it('keeps vCards and private data across a server restart', async function () {
    this.timeout(60_000);
    const c = await connect('juliet', 'before');
    expectResult(await vcardSet(c, card(xml('FN', {}, 'Juliet Capulet'), xml('BDAY', {}, '1583-07-31'))));
    expectResult(await privateIq(c, 'set', [xml('storage', { xmlns: 'storage:bookmarks' }, xml('conference', { jid: 'balcony@chat.verona.example' }))]));
    await Promise.all(clients.splice(0).map((x) => x.stop()));
    await server.restart();
    const after = await connect('juliet', 'after');
    const v = (await vcardGet(after)).getChild('vCard', NS.vcard)!;
    assert.equal(v.getChildText('FN'), 'Juliet Capulet');
    assert.equal(v.getChildText('BDAY'), '1583-07-31');
    const p = await privateIq(after, 'get', [xml('storage', { xmlns: 'storage:bookmarks' })]);
    assert.equal(p.getChild('query', NS.private)?.getChild('storage', 'storage:bookmarks')?.getChild('conference')?.attrs.jid, 'balcony@chat.verona.example');
    const other = await connect('romeo', 'after');
    assert.equal((await vcardGet(other, 'juliet@localhost')).getChild('vCard', NS.vcard)?.getChildText('FN'), 'Juliet Capulet');
  });
});
