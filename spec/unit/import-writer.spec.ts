// Writing the neutral model into Cadence's storage (core/cli/import-writer.ts): the exact records
// the owning modules keep, read back by the core's own managers where the core owns the format;
// accounts last, existing accounts left alone or replaced, re-runs idempotent, and the way back.
import assert from 'node:assert/strict';
import type { Element } from '@xmpp/xml';
import { parse } from 'ltx';
import { readPortableData, writePortableData } from '../../core/cli/import-writer.ts';
import type { GlobalEvents } from '../../core/event-types.ts';
import { RosterManager } from '../../core/rostermanager.ts';
import { StorageManager, type Json } from '../../core/storage/manager.ts';
import { UserManager } from '../../core/usermanager.ts';
import { EventBus } from '../../core/util/events.ts';
import { addOffline, addPendingIn, emptyUser, ImportNotes, type PortableData } from '../../core/util/portable-data.ts';
import { deriveCredentials, SCRAM_HASHES, verifyPassword } from '../../core/util/scram.ts';
import { exportXep0227 } from '../../core/util/xep0227.ts';

const HOST = 'capulet.example';
const el = (xml: string) => parse(xml) as unknown as Element;
const nothing = () => undefined;

function juliet(): PortableData {
  const u = emptyUser('juliet');
  u.scram['SHA-1'] = deriveCredentials('SHA-1', 'r0me0', { salt: Buffer.from('salt-of-the-old-server'), iterations: 4096 });
  u.created = 1_600_000_000_000;
  u.roster.push(
    { jid: 'romeo@montague.example', subscription: 'both', name: 'Romeo', groups: ['Friends', 'Verona'] },
    { jid: 'nurse@capulet.example', subscription: 'none', ask: 'subscribe', approved: true, groups: [] },
  );
  u.rosterVersion = 6;
  addPendingIn(u, HOST, 'paris@verona.example', undefined, nothing);
  u.vcard = el("<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>");
  addOffline(u, HOST, el("<message from='romeo@montague.example/orchard' type='chat' id='m1'><body>first</body></message>"), 1_700_000_000_000, nothing);
  addOffline(u, HOST, el("<message from='nurse@capulet.example' type='normal' id='m2'><body>second</body></message>"), 1_700_000_100_000, nothing);
  u.privateXml.push(el("<exodus xmlns='exodus:prefs'><defaultnick>J</defaultnick></exodus>"), el("<storage xmlns='storage:bookmarks'><conference jid='r@muc.example'/></storage>"));
  u.blocked.push('tybalt@capulet.example', 'evil.example');
  const pat = emptyUser('pat');
  pat.password = 'plain pw';
  return { hosts: [{ host: HOST, users: [u, pat] }, { host: 'elsewhere.example', users: [emptyUser('x')] }] };
}

describe('import writer: the neutral model into Cadence\'s storage', () => {
  let storage: StorageManager;
  beforeEach(() => {
    storage = new StorageManager({ driver: 'memory', dataDir: '/nonexistent' });
  });
  afterEach(() => storage.close());

  it('writes each kind of data in the format its module keeps', async () => {
    const r = await writePortableData(storage, juliet(), { hosts: [HOST], now: () => 42 });
    assert.deepEqual(r.written, ['juliet@capulet.example', 'pat@capulet.example']);

    const account = await storage.keyval(HOST, 'accounts').get<Json>('juliet');
    assert.deepEqual(Object.keys((account as { scram: object }).scram), ['SHA-1']);
    assert.equal((account as { created: number }).created, 1_600_000_000_000);

    const roster = await storage.map(HOST, 'roster').getAll<Json>('juliet');
    assert.deepEqual(Object.fromEntries(roster), {
      'romeo@montague.example': { subscription: 'both', groups: ['Friends', 'Verona'], name: 'Romeo' },
      'nurse@capulet.example': { subscription: 'none', groups: [], ask: 'subscribe', approved: true },
      '\u0000meta': { version: 7, pending: { 'paris@verona.example': '<presence type="subscribe" from="paris@verona.example" to="juliet@capulet.example"/>' } },
    });

    assert.equal(await storage.keyval(HOST, 'vcard').get('juliet'), '<vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard>');

    const offline = await storage.archive(HOST, 'offline').find('juliet');
    assert.deepEqual(offline.map(({ when, with: w, payload }) => ({ when, with: w, payload })), [
      { when: 1_700_000_000_000, with: 'romeo@montague.example/orchard', payload: '<message from="romeo@montague.example/orchard" type="chat" id="m1" to="juliet@capulet.example"><body>first</body><delay xmlns="urn:xmpp:delay" from="capulet.example" stamp="2023-11-14T22:13:20.000Z"/></message>' },
      { when: 1_700_000_100_000, with: 'nurse@capulet.example', payload: '<message from="nurse@capulet.example" type="normal" id="m2" to="juliet@capulet.example"><body>second</body><delay xmlns="urn:xmpp:delay" from="capulet.example" stamp="2023-11-14T22:15:00.000Z"/></message>' },
    ]);

    assert.deepEqual(Object.fromEntries(await storage.map(HOST, 'private').getAll<Json>('juliet')), {
      '{exodus:prefs}exodus': '<exodus xmlns="exodus:prefs"><defaultnick>J</defaultnick></exodus>',
      '{storage:bookmarks}storage': '<storage xmlns="storage:bookmarks"><conference jid="r@muc.example"/></storage>',
    });
    assert.deepEqual(Object.fromEntries(await storage.map(HOST, 'blocking').getAll<Json>('juliet')), { 'tybalt@capulet.example': true, 'evil.example': true });
  });

  it('writes accounts and rosters the core\'s managers read: passwords verify, SCRAM-SHA-1 only until upgraded', async () => {
    await writePortableData(storage, juliet(), { hosts: [HOST] });
    const events = new EventBus<GlobalEvents>('test');
    const users = new UserManager(storage, events, () => undefined);
    assert.ok(await users.checkPassword(HOST, 'juliet', 'r0me0'));
    assert.ok(!(await users.checkPassword(HOST, 'juliet', 'wrong')));
    assert.equal(await users.getScram(HOST, 'juliet', 'SHA-256'), undefined);
    // Prosody kept one hash; the first PLAIN login adds the others (core/usermanager.ts).
    assert.deepEqual(await users.upgradeCredentials(HOST, 'juliet', 'r0me0'), ['SHA-256', 'SHA-512']);
    // A plaintext password gives every hash.
    for (const hash of SCRAM_HASHES) assert.ok(await verifyPassword(hash, (await users.getScram(HOST, 'pat', hash))!, 'plain pw'));

    const roster = await new RosterManager(storage).load(HOST, 'juliet');
    assert.equal(roster.version, 7);
    assert.deepEqual(roster.items.get('romeo@montague.example'), { subscription: 'both', groups: ['Friends', 'Verona'], name: 'Romeo' });
    assert.deepEqual([...roster.pending.keys()], ['paris@verona.example']);
  });

  it('writes only the hosts this server serves, and says so', async () => {
    const r = await writePortableData(storage, juliet(), { hosts: [HOST] });
    assert.equal(await storage.keyval('elsewhere.example', 'accounts').get('x'), undefined);
    assert.deepEqual(r.notes.list, [{ level: 'warning', host: 'elsewhere.example', message: 'not a host of this server: its 1 accounts not imported' }]);
  });

  it('leaves an existing account and its data alone by default, or replaces them', async () => {
    await storage.keyval(HOST, 'accounts').set('juliet', { scram: {}, created: 1 });
    await storage.keyval(HOST, 'vcard').set('juliet', '<vCard xmlns="vcard-temp"><FN>Here already</FN></vCard>');
    const skipped = await writePortableData(storage, juliet(), { hosts: [HOST] });
    assert.deepEqual(skipped.skipped, ['juliet@capulet.example']);
    assert.equal(await storage.keyval(HOST, 'vcard').get('juliet'), '<vCard xmlns="vcard-temp"><FN>Here already</FN></vCard>');
    assert.deepEqual(skipped.notes.list.map((n) => n.message), ['an account of that name exists here; left as it is, nothing imported for it', 'not a host of this server: its 1 accounts not imported']);

    await storage.keyval(HOST, 'lastactivity').set('juliet', { seconds: 1 });
    const replaced = await writePortableData(storage, juliet(), { hosts: [HOST], existing: 'replace' });
    assert.deepEqual(replaced.written, ['juliet@capulet.example', 'pat@capulet.example']);
    assert.equal(await storage.keyval(HOST, 'vcard').get('juliet'), '<vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard>');
    assert.equal(await storage.keyval(HOST, 'lastactivity').get('juliet'), undefined, 'the replaced account\'s other data is gone');
  });

  it('clears what an interrupted import left, so running it again gives the same result', async () => {
    // An import that stopped before the account record: its data is there, the account is not.
    await storage.archive(HOST, 'offline').append('juliet', { payload: '<message><body>half</body></message>' });
    await writePortableData(storage, juliet(), { hosts: [HOST] });
    await storage.keyval(HOST, 'accounts').set('juliet', undefined);
    await writePortableData(storage, juliet(), { hosts: [HOST] });
    assert.equal(await storage.archive(HOST, 'offline').count('juliet'), 2);
  });

  it('reads back what it wrote (the way XEP-0227 export takes)', async () => {
    const data = juliet();
    await writePortableData(storage, data, { hosts: [HOST] });
    const { data: back, notes } = await readPortableData(storage, [HOST], new ImportNotes());
    assert.deepEqual(notes.list, []);
    const expected: PortableData = { hosts: [data.hosts[0]!] };
    const [j, p] = expected.hosts[0]!.users;
    j!.rosterVersion = 7;
    delete p!.password;
    const pat = back.hosts[0]!.users[1]!;
    assert.deepEqual(Object.keys(pat.scram), ['SHA-1', 'SHA-256', 'SHA-512']);
    p!.scram = pat.scram;
    p!.created = pat.created;
    assert.equal(exportXep0227(back), exportXep0227(expected));
  });
});
