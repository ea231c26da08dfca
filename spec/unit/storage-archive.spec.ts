// Archive store semantics the MAM engine leans on, checked against both drivers: time bounds when
// `when` goes back in archive order, counts after replace/delete, count == find().length for
// every mix of filters, and (sqlite) the upgrade of a schema-1 and of a filled schema-3 database.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StorageManager } from '../../core/storage/manager.ts';
import type { ArchiveQuery, ArchiveStore, StorageConfig } from '../../core/storage/manager.ts';
import { SCHEMA_VERSION } from '../../core/storage/drivers/sqlite.ts';

const HOST = 'example.com';

/** Small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const driver of ['memory', 'sqlite'] as const) {
  describe(`archive store details (${driver} driver)`, () => {
    let dir: string;
    let sm: StorageManager;
    let a: ArchiveStore;

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'cadence-archive-'));
      sm = new StorageManager({ driver, dataDir: join(dir, 'data') });
      a = sm.archive(HOST, 'mam');
    });

    afterEach(async () => {
      await sm.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const ids = async (q: ArchiveQuery, user = 'u') => (await a.find(user, q)).map((i) => i.payload);

    it('start/end are inclusive, with ties, while when grows with archive order', async () => {
      for (const [p, when] of [['a', 1000], ['b', 2000], ['c', 2000], ['d', 3000]] as const) await a.append('u', { when, payload: p });
      assert.deepEqual(await ids({ start: 2000 }), ['b', 'c', 'd']);
      assert.deepEqual(await ids({ end: 2000 }), ['a', 'b', 'c']);
      assert.deepEqual(await ids({ start: 2000, end: 2000 }), ['b', 'c']);
      assert.deepEqual(await ids({ start: 1500, end: 2500, reverse: true, limit: 1 }), ['c']);
      assert.deepEqual(await ids({ start: 3001 }), []);
      assert.deepEqual(await ids({ end: 999 }), []);
      assert.deepEqual(await ids({ start: 2500, end: 2400 }), []);
      assert.equal(await a.count('u', { start: 2000 }), 3);
      assert.equal(await a.count('u', { start: 3001 }), 0);
      assert.equal(await a.count('nobody', { start: 0 }), 0);
      assert.deepEqual(await ids({ start: 0 }, 'nobody'), []);
    });

    it('start/end still select by when after a when that went back', async () => {
      for (const [p, when] of [['a', 1000], ['b', 3000], ['c', 2000], ['d', 4000]] as const) await a.append('u', { when, payload: p });
      assert.deepEqual(await ids({ start: 2000 }), ['b', 'c', 'd']);
      assert.deepEqual(await ids({ end: 2500 }), ['a', 'c']);
      assert.deepEqual(await ids({ start: 1500, end: 3500 }), ['b', 'c']);
      assert.equal(await a.count('u', { end: 2500 }), 2);
      assert.equal(await a.delete('u', { end: 2500 }), 2);
      assert.deepEqual(await ids({}), ['b', 'd']);
    });

    it('counts follow appends, replacements and deletes, per bare with', async () => {
      await a.append('u', { id: 'a', with: 'bob@example.com/x', payload: 'a' });
      await a.append('u', { id: 'b', with: 'bob@example.com/y', payload: 'b' });
      await a.append('u', { id: 'c', with: 'carol@example.com', payload: 'c' });
      await a.append('u', { id: 'd', payload: 'd' });
      assert.equal(await a.count('u'), 4);
      assert.equal(await a.count('u', { with: 'bob@example.com' }), 2);
      await a.append('u', { id: 'b', with: 'carol@example.com/z', payload: 'b2' });
      assert.equal(await a.count('u'), 4);
      assert.equal(await a.count('u', { with: 'bob@example.com' }), 1);
      assert.equal(await a.count('u', { with: 'carol@example.com' }), 2);
      assert.equal(await a.count('u', { with: 'carol@example.com/z' }), 1);
      assert.equal(await a.delete('u', { with: 'carol@example.com' }), 2);
      assert.equal(await a.count('u', { with: 'carol@example.com' }), 0);
      assert.equal(await a.count('u'), 2);
      await sm.purgeUser(HOST, 'u');
      assert.equal(await a.count('u'), 0);
      assert.equal(await a.count('u', { with: 'bob@example.com' }), 0);
      // A new archive after the old one emptied starts fresh: time bounds work from its items.
      await a.append('u', { when: 5, payload: 'x' });
      await a.append('u', { when: 7, payload: 'y' });
      assert.deepEqual(await ids({ start: 6 }), ['y']);
    });

    it('replacePayload changes an item in place: position, id, when and with stay; counts do not move', async () => {
      await a.append('u', { id: 'x1', when: 1000, with: 'w@example.com/r', payload: 'one' });
      await a.append('u', { id: 'x2', when: 2000, with: 'w@example.com/r', payload: 'two' });
      await a.append('u', { id: 'x3', when: 3000, payload: 'three' });
      // x2 may still be pending (sqlite): it is found and replaced all the same.
      assert.equal(await a.replacePayload('u', 'x2', 'tombstone'), true);
      assert.deepEqual(await a.find('u'), [
        { id: 'x1', when: 1000, with: 'w@example.com/r', payload: 'one' },
        { id: 'x2', when: 2000, with: 'w@example.com/r', payload: 'tombstone' },
        { id: 'x3', when: 3000, payload: 'three' },
      ]);
      assert.equal(await a.count('u'), 3);
      assert.equal(await a.count('u', { with: 'w@example.com' }), 2);
      assert.deepEqual(await ids({ after: 'x1', before: 'x3' }), ['tombstone']);
      assert.equal(await a.replacePayload('u', 'nope', 'x'), false);
      assert.equal(await a.replacePayload('other', 'x2', 'x'), false);
      assert.deepEqual(await ids({}), ['one', 'tombstone', 'three']);
    });

    it('start/end select by when in an archive in time order interleaved with others (runs of ties, gaps)', async () => {
      const rnd = prng(11);
      const mine: { payload: string; when: number }[] = [];
      let when = 5000;
      for (let i = 0; i < 300; i++) {
        if (rnd() < 0.6) when += Math.floor(rnd() * 3) * 100; // ties in runs
        const owner = rnd() < 0.5 ? 'u' : rnd() < 0.5 ? 'other' : 'third';
        // The other archives' times have nothing to do with this one's.
        const w = owner === 'u' ? when : Math.floor(rnd() * 100_000);
        const payload = `${owner}${i}`;
        await a.append(owner, { when: w, payload });
        if (owner === 'u') mine.push({ payload, when: w });
      }
      for (let n = 0; n < 200; n++) {
        const q: ArchiveQuery = {};
        if (rnd() < 0.7) q.start = 4900 + Math.floor(rnd() * (when - 4800));
        if (rnd() < 0.7) q.end = 4900 + Math.floor(rnd() * (when - 4800));
        const expected = mine.filter((m) => (q.start === undefined || m.when >= q.start) && (q.end === undefined || m.when <= q.end)).map((m) => m.payload);
        assert.deepEqual(await ids(q), expected, JSON.stringify(q));
        assert.equal(await a.count('u', q), expected.length, JSON.stringify(q));
      }
    });

    it('count equals the length of find for any mix of filters', async () => {
      const rnd = prng(7);
      const withs = [undefined, 'bob@example.com', 'bob@example.com/a', 'bob@example.com/b', 'carol@example.com/c', 'bobby@example.com'];
      const all: string[] = [];
      for (let i = 0; i < 120; i++) {
        const w = withs[Math.floor(rnd() * withs.length)];
        // Mostly growing, sometimes going back.
        const when = 1000 * i + (rnd() < 0.1 ? -5000 : 0);
        all.push(await a.append('u', { when, payload: String(i), ...(w ? { with: w } : {}) }));
        if (i % 10 === 0) await a.append('other', { when, payload: 'o' });
      }
      const queries: ArchiveQuery[] = [{}];
      for (let n = 0; n < 150; n++) {
        const q: ArchiveQuery = {};
        if (rnd() < 0.5) q.with = ['bob@example.com', 'bob@example.com/a', 'carol@example.com', 'nobody@example.com'][Math.floor(rnd() * 4)];
        if (rnd() < 0.4) q.after = all[Math.floor(rnd() * all.length)];
        if (rnd() < 0.4) q.before = all[Math.floor(rnd() * all.length)];
        if (rnd() < 0.3) q.start = Math.floor(rnd() * 120_000);
        if (rnd() < 0.3) q.end = Math.floor(rnd() * 120_000);
        if (rnd() < 0.2) q.ids = [all[Math.floor(rnd() * all.length)]!, all[Math.floor(rnd() * all.length)]!, 'unknown'];
        queries.push(q);
      }
      for (const q of queries) {
        const found = await a.find('u', q);
        assert.equal(await a.count('u', q), found.length, JSON.stringify(q));
        const rev = await a.find('u', { ...q, reverse: true, limit: 3 });
        assert.deepEqual(rev, found.slice(-3).reverse(), JSON.stringify(q));
      }
    });
  });
}

describe('sqlite archive schema upgrade', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cadence-archive-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('upgrades a schema-1 database: counts, bare-with and time queries work on the old rows', async () => {
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    // The archive table and indexes exactly as schema version 1 made them.
    const old = new Database(join(dataDir, 'cadence.sqlite'));
    old.exec(`
      CREATE TABLE schema_version ("component" TEXT PRIMARY KEY NOT NULL, "version" INTEGER NOT NULL);
      INSERT INTO schema_version VALUES ('core', 1);
      CREATE TABLE archive ("sort" INTEGER PRIMARY KEY, "host" TEXT NOT NULL, "store" TEXT NOT NULL, "user" TEXT NOT NULL,
        "id" TEXT NOT NULL, "when" INTEGER NOT NULL, "with" TEXT, "payload" TEXT NOT NULL, UNIQUE ("host", "user", "store", "id"));
      CREATE INDEX archive_by_user ON archive ("host", "user", "store");
      CREATE INDEX archive_by_with ON archive ("host", "user", "store", "with");
      CREATE INDEX archive_by_when ON archive ("host", "user", "store", "when");
    `);
    const ins = old.prepare('INSERT INTO archive ("host", "user", "store", "id", "when", "with", "payload") VALUES (?, ?, ?, ?, ?, ?, ?)');
    ins.run(HOST, 'alice', 'mam', 'a1', 1000, 'bob@example.com/x', 'p1');
    ins.run(HOST, 'bob', 'mam', 'b1', 1500, 'alice@example.com', 'q1');
    ins.run(HOST, 'alice', 'mam', 'a2', 2000, 'bob@example.com', 'p2');
    ins.run(HOST, 'alice', 'mam', 'a3', 3000, 'carol@example.com', 'p3');
    ins.run(HOST, 'bob', 'mam', 'b2', 1200, null, 'q2'); // went back: bob's archive is not in time order
    old.close();

    const cfg: StorageConfig = { driver: 'sqlite', dataDir };
    const sm = new StorageManager(cfg);
    try {
      const a = sm.archive(HOST, 'mam');
      assert.equal(await a.count('alice'), 3);
      assert.equal(await a.count('alice', { with: 'bob@example.com' }), 2);
      assert.deepEqual((await a.find('alice', { with: 'bob@example.com', reverse: true })).map((i) => i.id), ['a2', 'a1']);
      assert.deepEqual((await a.find('alice', { start: 2000 })).map((i) => i.id), ['a2', 'a3']);
      assert.deepEqual((await a.find('bob', { end: 1300 })).map((i) => i.id), ['b2']);
      assert.deepEqual((await a.find('bob', { start: 1300 })).map((i) => i.id), ['b1']);
      await a.append('alice', { id: 'a4', when: 4000, with: 'bob@example.com/y', payload: 'p4' });
      assert.equal(await a.count('alice', { with: 'bob@example.com' }), 3);
    } finally {
      await sm.close();
    }
    const db = new Database(join(dataDir, 'cadence.sqlite'), { readonly: true });
    try {
      assert.equal((db.prepare('SELECT "version" FROM schema_version WHERE "component" = ?').get('core') as { version: number }).version, SCHEMA_VERSION);
      const indexes = (db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'archive'`).all() as { name: string }[]).map((r) => r.name);
      assert.ok(indexes.includes('archive_by_with_bare'));
      assert.ok(!indexes.includes('archive_by_with'));
      assert.ok(!indexes.includes('archive_by_when'), 'schema 3: no index by when');
    } finally {
      db.close();
    }
  });

  it('upgrades a filled schema-3 database to 4: every item, count and query as before; new appends go through archive_pending', async () => {
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    // The tables, indexes and triggers exactly as schema version 3 made them.
    const old = new Database(join(dataDir, 'cadence.sqlite'));
    old.exec(`
      CREATE TABLE schema_version ("component" TEXT PRIMARY KEY NOT NULL, "version" INTEGER NOT NULL);
      INSERT INTO schema_version VALUES ('core', 3);
      CREATE TABLE keyval ("host" TEXT NOT NULL, "store" TEXT NOT NULL, "user" TEXT NOT NULL, "value" TEXT NOT NULL,
        PRIMARY KEY ("host", "store", "user")) WITHOUT ROWID;
      CREATE INDEX keyval_by_user ON keyval ("host", "user");
      CREATE TABLE map ("host" TEXT NOT NULL, "store" TEXT NOT NULL, "user" TEXT NOT NULL, "key" TEXT NOT NULL, "value" TEXT NOT NULL,
        PRIMARY KEY ("host", "user", "store", "key")) WITHOUT ROWID;
      CREATE TABLE archive ("sort" INTEGER PRIMARY KEY, "host" TEXT NOT NULL, "store" TEXT NOT NULL, "user" TEXT NOT NULL,
        "id" TEXT NOT NULL, "when" INTEGER NOT NULL, "with" TEXT, "payload" TEXT NOT NULL,
        "with_bare" TEXT GENERATED ALWAYS AS (CASE WHEN instr("with", '/') > 0 THEN substr("with", 1, instr("with", '/') - 1) ELSE "with" END) VIRTUAL,
        UNIQUE ("host", "user", "store", "id"));
      CREATE INDEX archive_by_user ON archive ("host", "user", "store");
      CREATE INDEX archive_by_with_bare ON archive ("host", "user", "store", "with_bare");
      CREATE TABLE archive_count ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "with_bare" TEXT NOT NULL,
        "n" INTEGER NOT NULL, "max_when" INTEGER, "disordered" INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY ("host", "user", "store", "with_bare")) WITHOUT ROWID;
      CREATE TRIGGER archive_count_insert AFTER INSERT ON archive BEGIN
        INSERT INTO archive_count ("host", "user", "store", "with_bare", "n", "max_when")
          VALUES (NEW."host", NEW."user", NEW."store", '', 1, NEW."when")
          ON CONFLICT DO UPDATE SET "n" = "n" + 1, "disordered" = "disordered" OR excluded."max_when" < "max_when",
            "max_when" = max("max_when", excluded."max_when");
        INSERT INTO archive_count ("host", "user", "store", "with_bare", "n")
          SELECT NEW."host", NEW."user", NEW."store", NEW."with_bare", 1 WHERE NEW."with_bare" <> ''
          ON CONFLICT DO UPDATE SET "n" = "n" + 1;
      END;
      CREATE TRIGGER archive_count_delete AFTER DELETE ON archive BEGIN
        UPDATE archive_count SET "n" = "n" - 1
          WHERE "host" = OLD."host" AND "user" = OLD."user" AND "store" = OLD."store" AND "with_bare" IN ('', OLD."with_bare");
        DELETE FROM archive_count
          WHERE "host" = OLD."host" AND "user" = OLD."user" AND "store" = OLD."store" AND "with_bare" IN ('', OLD."with_bare") AND "n" <= 0;
      END;
      INSERT INTO keyval VALUES ('${HOST}', 'accounts', 'alice', '{"ok":true}');
    `);
    // 3,000 items in 3 archives, 5 contacts each, one a minute.
    const ins = old.prepare('INSERT INTO archive ("host", "user", "store", "id", "when", "with", "payload") VALUES (?, ?, ?, ?, ?, ?, ?)');
    const users = ['alice', 'bob', 'carol'];
    old.transaction(() => {
      for (let i = 0; i < 3000; i++) {
        ins.run(HOST, users[i % 3], 'mam', `id${String(i).padStart(5, '0')}`, 60_000 * i, `c${i % 5}@example.com/r${i % 2}`, `<message n="${i}"/>`);
      }
    })();
    old.close();

    const sm = new StorageManager({ driver: 'sqlite', dataDir });
    try {
      const a = sm.archive(HOST, 'mam');
      assert.deepEqual(await sm.keyval(HOST, 'accounts').get('alice'), { ok: true });
      for (const user of users) {
        assert.equal(await a.count(user), 1000);
        assert.equal(await a.count(user, { with: 'c1@example.com' }), 200);
      }
      const alice = await a.find('alice');
      assert.equal(alice.length, 1000);
      assert.deepEqual(alice.slice(0, 2).map((i) => i.id), ['id00000', 'id00003']);
      // The last page, a page by `with`, by time and by position, as MAM asks them.
      assert.deepEqual((await a.find('alice', { limit: 2, reverse: true })).map((i) => i.id), ['id02997', 'id02994']);
      assert.deepEqual((await a.find('bob', { with: 'c2@example.com/r0', limit: 2 })).map((i) => i.id), ['id00022', 'id00052']);
      assert.deepEqual((await a.find('carol', { start: 60_000 * 2990 })).map((i) => i.id), ['id02990', 'id02993', 'id02996', 'id02999']);
      assert.deepEqual((await a.find('alice', { after: 'id02994' })).map((i) => i.id), ['id02997']);
      assert.equal(await a.count('alice', { before: 'id00030' }), 10);
      // New appends (one replacing an old item) are pending, then found in order.
      const fresh = await a.append('alice', { with: 'c1@example.com', when: 60_000 * 4000, payload: '<message n="new"/>' });
      await a.append('alice', { id: 'id00000', with: 'c1@example.com', when: 60_000 * 4001, payload: '<message n="again"/>' });
      const raw = new Database(join(dataDir, 'cadence.sqlite'), { readonly: true });
      try {
        assert.equal(raw.prepare('SELECT count(*) FROM archive_pending').pluck().get(), 2);
      } finally {
        raw.close();
      }
      assert.deepEqual((await a.find('alice', { limit: 3, reverse: true })).map((i) => i.id), ['id00000', fresh, 'id02997']);
      assert.equal(await a.count('alice'), 1001);
      assert.equal(await a.count('alice', { with: 'c1@example.com' }), 202);
      assert.equal(await a.count('alice', { with: 'c0@example.com' }), 199);
    } finally {
      await sm.close();
    }
    const db = new Database(join(dataDir, 'cadence.sqlite'), { readonly: true });
    try {
      assert.equal(SCHEMA_VERSION, 4);
      assert.equal((db.prepare('SELECT "version" FROM schema_version WHERE "component" = ?').get('core') as { version: number }).version, 4);
      assert.equal(db.prepare('SELECT count(*) FROM archive_pending').pluck().get(), 0);
      assert.equal(db.prepare('SELECT count(*) FROM archive').pluck().get(), 3001);
    } finally {
      db.close();
    }
  });
});
