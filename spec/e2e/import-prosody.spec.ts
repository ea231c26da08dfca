// Migration from Prosody end to end: a Prosody data directory is read (core/cli/import-prosody.ts)
// and written into a fresh Cadence data directory (core/cli/import-writer.ts, the sqlite store);
// a real Cadence server started on it lets the users log in with their Prosody passwords (SCRAM-SHA-1
// with the keys Prosody derived, or PLAIN) and they find their roster, vCard, offline messages,
// private XML and blocklist.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readProsodyDataDir } from '../../core/cli/import-prosody.ts';
import { writePortableData } from '../../core/cli/import-writer.ts';
import { StorageManager } from '../../core/storage/manager.ts';
import { login, RawClient, saslCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { makeProsodyDataDir, PROSODY_FIXTURE, type ProsodyDir } from '../helpers/prosody.ts';
import { saslOutcomes } from '../helpers/sasl-log.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const NS_ROSTER = 'jabber:iq:roster';
const NS_PRIVATE = 'jabber:iq:private';
const NS_BLOCKING = 'urn:xmpp:blocking';
const NS_DELAY = 'urn:xmpp:delay';

/** Imports a Prosody data directory into a new Cadence directory and starts a server on it. */
async function importAndStart(prosodyData: string, hosts: string[]): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cadence-test-'));
  const { data, notes } = await readProsodyDataDir(prosodyData);
  assert.deepEqual(notes.warnings, []);
  const storage = new StorageManager({ driver: 'sqlite', dataDir: path.join(dir, 'data') });
  try {
    await writePortableData(storage, data, { hosts }, notes);
  } finally {
    await storage.close();
  }
  return startServer({ dir, config: { virtualHosts: Object.fromEntries(hosts.map((h) => [h, {}])) } });
}

type RosterItemView = { jid: string; subscription: string; ask?: string; name?: string; groups: string[] };
const rosterOf = async (c: TestClient): Promise<RosterItemView[]> =>
  (await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })))).getChild('query', NS_ROSTER)!.getChildren('item').map((i) => ({
    ...(i.attrs as { jid: string; subscription: string }),
    groups: i.getChildren('group').map((g) => g.text()).sort(),
  }));
const vcardOf = async (c: TestClient) => (await c.iq(xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })))).getChild('vCard', 'vcard-temp')!;
const privateOf = async (c: TestClient, name: string, ns: string) =>
  (await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_PRIVATE }, xml(name, { xmlns: ns }))))).getChild('query', NS_PRIVATE)!.getChild(name, ns)!;
const blocklistOf = async (c: TestClient) =>
  (await c.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: NS_BLOCKING })))).getChild('blocklist', NS_BLOCKING)!.getChildren('item').map((i) => i.attrs.jid as string).sort();

/** A TLS stream to the server with its SASL mechanisms. */
async function secured(server: TestServer, host = 'localhost'): Promise<{ c: RawClient; mechanisms: string[] }> {
  const c = await RawClient.connect(server.c2sPort);
  c.openStream(host);
  await c.starttls(host);
  const features = await c.expect((el) => el.name === 'stream:features');
  return { c, mechanisms: features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.text()) ?? [] };
}

describe('e2e: import from Prosody', function () {
  this.timeout(90_000);

  describe('a data directory made with prosodyctl', function () {
    const alicePw = `Älice ${randomBytes(6).toString('hex')}`;
    const bobPw = `bob ${randomBytes(6).toString('hex')}`;
    const stored = [1_700_000_000, 1_700_000_100.5];
    let prosody: ProsodyDir;
    let server: TestServer;
    const clients: TestClient[] = [];
    const raws: RawClient[] = [];

    before(async function () {
      prosody = await makeProsodyDataDir([{ host: 'localhost' }], [
        { user: 'alice', host: 'localhost', password: alicePw },
        { user: 'bob', host: 'localhost', password: bobPw },
      ], [
        {
          op: 'roster', host: 'localhost', user: 'alice', version: 12,
          items: [
            { jid: 'bob@localhost', subscription: 'both', name: 'Bob', groups: ['Friends', 'Work'] },
            { jid: 'carol@remote.example', subscription: 'none', ask: 'subscribe' },
            { jid: 'eve@remote.example', subscription: 'from' },
          ],
          pending: [{ jid: 'dave@remote.example', stanza: "<presence xmlns='jabber:client' from='dave@remote.example/x' to='alice@localhost' type='subscribe'><status>Hi, it's Dave</status></presence>" }],
        },
        { op: 'roster', host: 'localhost', user: 'bob', version: 3, items: [{ jid: 'alice@localhost', subscription: 'both', groups: [] }] },
        { op: 'vcard', host: 'localhost', user: 'alice', xml: "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>ali</NICKNAME></vCard>" },
        {
          op: 'offline', host: 'localhost', user: 'alice',
          messages: [
            { xml: "<message xmlns='jabber:client' from='bob@localhost/phone' to='alice@localhost' type='chat' id='off1'><body>While you were out</body></message>", when: stored[0]!, with: 'bob@localhost', key: 'a' },
            { xml: "<message xmlns='jabber:client' from='carol@remote.example/pc' to='alice@localhost' type='normal' id='off2'><subject>Later</subject><body>Second</body></message>", when: stored[1]!, key: 'b' },
          ],
        },
        { op: 'private', host: 'localhost', user: 'alice', fragments: ["<prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs>"] },
        { op: 'blocklist', host: 'localhost', user: 'alice', jids: ['spammer@evil.example', 'evil2.example'] },
      ]);
      server = await importAndStart(prosody.data, ['localhost']);
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.stop()));
      for (const r of raws.splice(0)) r.close();
    });
    after(async () => {
      await server?.destroy();
      prosody?.cleanup();
    });

    it('offers SCRAM-SHA-1 (not -256/-512, which imported accounts lack), and alice logs in with it and her Prosody password (keys as Prosody derived them)', async () => {
      const { c, mechanisms } = await secured(server);
      raws.push(c);
      assert.ok(mechanisms.includes('SCRAM-SHA-1'), mechanisms.join(' '));
      assert.ok(!mechanisms.some((m) => m.startsWith('SCRAM-SHA-256') || m.startsWith('SCRAM-SHA-512')), mechanisms.join(' '));
      assert.equal((await c.scram({ mechanism: 'SCRAM-SHA-1', user: 'alice', password: alicePw, gs2: 'n' })).status, 'success');
      const wrong = await secured(server);
      raws.push(wrong.c);
      const failed = await wrong.c.scram({ mechanism: 'SCRAM-SHA-1', user: 'alice', password: 'not her password', gs2: 'n' });
      assert.equal(failed.condition, 'not-authorized');
    });

    it('alice finds her roster with subscription states, names and groups', async () => {
      const c = await login(server, 'alice', alicePw, { resource: 'roster' });
      clients.push(c);
      const outcome = saslOutcomes(server.output).filter((o) => o.kind === 'success' && o.who === 'alice@localhost').pop();
      assert.equal(outcome?.kind === 'success' ? outcome.mechanism : undefined, 'SCRAM-SHA-1');
      const roster = await rosterOf(c);
      assert.deepEqual(roster.sort((a, b) => (a.jid < b.jid ? -1 : 1)), [
        { jid: 'bob@localhost', subscription: 'both', name: 'Bob', groups: ['Friends', 'Work'] },
        { jid: 'carol@remote.example', subscription: 'none', ask: 'subscribe', groups: [] },
        { jid: 'eve@remote.example', subscription: 'from', groups: [] },
      ]);
    });

    it('alice finds her vCard, private XML and blocklist', async () => {
      const c = await login(server, 'alice', alicePw, { resource: 'data' });
      clients.push(c);
      const vcard = await vcardOf(c);
      assert.equal(vcard.getChildText('FN'), 'Alice Liddell');
      assert.equal(vcard.getChildText('NICKNAME'), 'ali');
      assert.equal((await privateOf(c, 'prefs', 'urn:example:prefs')).getChildText('theme'), 'dark');
      assert.deepEqual(await blocklistOf(c), ['evil2.example', 'spammer@evil.example']);
    });

    it('alice gets her offline messages, stamped with when Prosody stored them, and the pending subscription request', async () => {
      const c = await login(server, 'alice', alicePw, { resource: 'inbox' });
      clients.push(c);
      await c.send(xml('presence'));
      const isOffline = (s: Element) => s.name === 'message' && String(s.attrs.id).startsWith('off');
      const first = await c.expect(isOffline);
      const second = await c.expect(isOffline);
      assert.deepEqual([first.attrs.id, second.attrs.id], ['off1', 'off2']);
      assert.equal(first.getChildText('body'), 'While you were out');
      assert.equal(first.attrs.from, 'bob@localhost/phone');
      assert.equal(second.getChildText('subject'), 'Later');
      assert.deepEqual([first, second].map((m) => m.getChild('delay', NS_DELAY)!.attrs.stamp), [
        new Date(stored[0]! * 1000).toISOString(),
        new Date(stored[1]! * 1000).toISOString(),
      ]);
      const request = await c.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
      assert.equal(request.attrs.from, 'dave@remote.example');
      assert.equal(request.getChildText('status'), "Hi, it's Dave");
      // Delivered once: they are gone from storage now.
      const again = await login(server, 'alice', alicePw, { resource: 'again' });
      clients.push(again);
      await again.send(xml('presence'));
      await again.expectNothing(isOffline, 500);
    });

    it('bob logs in with PLAIN and his Prosody password, and gains SCRAM-SHA-256 and -512', async () => {
      const { c, mechanisms } = await secured(server);
      raws.push(c);
      assert.ok(mechanisms.includes('PLAIN'));
      const from = server.output.length;
      c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0bob\0${bobPw}`).toString('base64')}</auth>`);
      await c.expect((el) => el.name === 'success');
      await server.waitForOutput(/added SCRAM-SHA-256, SCRAM-SHA-512 credentials to bob@localhost/, 5000, from);
      const bad = await secured(server);
      raws.push(bad.c);
      bad.c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0bob\0wrong').toString('base64')}</auth>`);
      assert.equal(saslCondition(await bad.c.expect((el) => el.name === 'failure')), 'not-authorized');
    });
  });

  describe('the data directory of a real Prosody 0.12 (spec/fixtures/prosody)', function () {
    let server: TestServer;
    const clients: TestClient[] = [];

    before(async function () {
      server = await importAndStart(PROSODY_FIXTURE, ['localhost', 'old-host.example']);
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.stop()));
    });
    after(async () => {
      await server?.destroy();
    });

    it('alice (non-ASCII password) finds what her clients stored at Prosody, PEP vCard and bookmarks included', async () => {
      const c = await login(server, 'alice', 'pässword 1', { resource: 'laptop' });
      clients.push(c);
      assert.deepEqual((await rosterOf(c)).map((i) => [i.jid, i.subscription, i.ask]).sort(), [
        ['bob@localhost', 'to', undefined],
        ['carol.d@old-host.example', 'none', 'subscribe'],
        ['dave@remote.example', 'none', undefined],
      ]);
      const vcard = await vcardOf(c);
      assert.equal(vcard.getChildText('FN'), 'Alice Äpfel');
      assert.equal(vcard.getChild('PHOTO')!.getChildText('TYPE'), 'image/png');
      const bookmarks = await privateOf(c, 'storage', 'storage:bookmarks');
      assert.equal(bookmarks.getChild('conference')!.attrs.jid, 'room@conference.localhost');
      assert.equal((await privateOf(c, 'exodus', 'exodus:prefs')).getChildText('defaultnick'), 'Alice');
      assert.deepEqual(await blocklistOf(c), ['evil2.example', 'spammer@evil.example']);
      await c.send(xml('presence'));
      const m = await c.expect((s) => s.name === 'message' && s.attrs.id === 'm1');
      assert.equal(m.getChildText('body'), 'Grüße 👋 <&> "quoted"\nsecond line');
      const pending = await c.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
      assert.equal(pending.attrs.from, 'bob@localhost');
    });

    it('carol.d logs in on the second host and finds her mod_vcard vCard and offline message', async () => {
      const c = await login({ c2sPort: server.c2sPort, host: 'old-host.example' } as TestServer, 'carol.d', 'c4rol!', { resource: 'desk' });
      clients.push(c);
      assert.equal((await vcardOf(c)).getChildText('FN'), 'Carol D.');
      assert.deepEqual(await blocklistOf(c), ['troll@old-host.example/res']);
      await c.send(xml('presence'));
      const m = await c.expect((s) => s.name === 'message' && s.attrs.id === 'm2');
      assert.equal(m.getChildText('body'), 'Hello Carol');
      assert.equal(m.getChild('delay', NS_DELAY)!.attrs.from, 'old-host.example');
    });
  });
});
