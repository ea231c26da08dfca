// Group commit of archive appends in the sqlite driver: the appends of one event-loop turn are
// committed together (to archive_pending), each caller resolves once its batch is committed
// (visible to another connection, so on disk), ids keep call order, a failing append rejects its
// caller alone, and a batch that cannot be committed rejects its callers only. Pending rows move
// into the archive in batches (schema 4); reads see them, a crash loses none, and a row that
// cannot move blocks no other.
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ARCHIVE_MOVE_ROWS, SqliteDriver, DB_FILE } from '../../core/storage/drivers/sqlite.ts';

const HOST = 'example.com';

describe('sqlite archive group commit', () => {
  let dir: string;
  let driver: SqliteDriver;
  /** A second connection to the same file: sees only what is committed. */
  let other: Database.Database;

  /** Rows committed: moved into the archive, or pending (as durable). */
  const committedRows = (): number =>
    other.prepare('SELECT (SELECT count(*) FROM archive) + (SELECT count(*) FROM archive_pending)').pluck().get() as number;
  const pendingRows = (): number =>
    other.prepare('SELECT count(*) FROM archive_pending').pluck().get() as number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cadence-batch-'));
    driver = new SqliteDriver(dir);
    other = new Database(join(dir, DB_FILE));
  });

  afterEach(async () => {
    other.close();
    await driver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits many concurrent appends of several stores together; each resolves once committed', async () => {
    const mam = driver.archive(HOST, 'mam');
    const muc = driver.archive(`conference.${HOST}`, 'muc_log');
    const appends: Promise<string>[] = [];
    for (let i = 0; i < 300; i++) {
      appends.push(mam.append(i % 2 ? 'alice' : 'bob', { with: 'carol@example.com', payload: `m${i}` }));
      appends.push(muc.append('room', { payload: `r${i}` }));
    }
    // Nothing is committed while the turn runs: the appends wait for the group commit.
    assert.equal(committedRows(), 0);
    const settled = await Promise.allSettled(appends);
    assert.ok(settled.every((s) => s.status === 'fulfilled'));
    // Once they resolved, all of them are committed (another connection sees them).
    assert.equal(committedRows(), 600);
    assert.equal(await mam.count('alice'), 150);
    assert.equal(await muc.count('room'), 300);
  });

  it('gives ids in call order and keeps that order in the archive', async () => {
    const mam = driver.archive(HOST, 'mam');
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => mam.append('alice', { payload: `m${i}` })));
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
    const found = await mam.find('alice');
    assert.deepEqual(found.map((i) => i.id), ids);
    assert.deepEqual(found.map((i) => i.payload), ids.map((_, i) => `m${i}`));
  });

  it('a read or delete sees the appends queued before it, even not yet awaited', async () => {
    const mam = driver.archive(HOST, 'mam');
    const first = mam.append('alice', { payload: 'one' });
    const second = mam.append('alice', { payload: 'two' });
    assert.deepEqual((await mam.find('alice')).map((i) => i.payload), ['one', 'two']);
    const third = mam.append('alice', { payload: 'three' });
    assert.equal(await mam.count('alice'), 3);
    const fourth = mam.append('alice', { payload: 'four' });
    assert.equal(await mam.delete('alice', { limit: 3 }), 3);
    assert.deepEqual((await mam.find('alice')).map((i) => i.payload), ['four']);
    await Promise.all([first, second, third, fourth]);
  });

  it('replacing by id inside one batch keeps the last write, at the end', async () => {
    const mam = driver.archive(HOST, 'mam');
    const writes = [
      mam.append('alice', { id: 'x', payload: 'x1' }),
      mam.append('alice', { id: 'y', payload: 'y1' }),
      mam.append('alice', { id: 'x', payload: 'x2' }),
    ];
    assert.deepEqual(await Promise.all(writes), ['x', 'y', 'x']);
    assert.deepEqual((await mam.find('alice')).map((i) => i.payload), ['y1', 'x2']);
  });

  it('an append that fails rejects its caller alone; the rest of its batch is committed', async () => {
    other.exec(`CREATE TRIGGER poison BEFORE INSERT ON archive_pending WHEN NEW."payload" = 'poison'
      BEGIN SELECT RAISE(ABORT, 'poisoned payload'); END;`);
    const mam = driver.archive(HOST, 'mam');
    const ok1 = mam.append('alice', { payload: 'a' });
    const bad = mam.append('alice', { payload: 'poison' });
    const ok2 = mam.append('alice', { payload: 'b' });
    await assert.rejects(bad, /poisoned payload/);
    await ok1;
    await ok2;
    assert.equal(committedRows(), 2);
    assert.deepEqual((await mam.find('alice')).map((i) => i.payload), ['a', 'b']);
  });

  it('a batch that cannot be committed rejects all its callers and only them', async function () {
    this.timeout(30_000); // the driver waits busy_timeout (5 s) for the lock before giving up
    const mam = driver.archive(HOST, 'mam');
    await mam.append('alice', { payload: 'before' });
    other.exec('BEGIN IMMEDIATE'); // another writer holds the database
    const blocked = [mam.append('alice', { payload: 'x' }), mam.append('bob', { payload: 'y' })];
    const results = await Promise.allSettled(blocked);
    assert.ok(results.every((r) => r.status === 'rejected' && /locked|busy/i.test(String(r.reason))));
    other.exec('ROLLBACK');
    const next = await Promise.allSettled([mam.append('alice', { payload: 'after' }), mam.append('bob', { payload: 'z' })]);
    assert.ok(next.every((r) => r.status === 'fulfilled'));
    assert.deepEqual((await mam.find('alice')).map((i) => i.payload), ['before', 'after']);
    assert.deepEqual((await mam.find('bob')).map((i) => i.payload), ['z']);
    assert.equal(committedRows(), 3);
  });

  it('purgeUser and close commit what is queued first', async () => {
    const mam = driver.archive(HOST, 'mam');
    const gone = mam.append('alice', { payload: 'gone' });
    const kept = mam.append('bob', { payload: 'kept' });
    await driver.purgeUser(HOST, 'alice');
    await Promise.all([gone, kept]);
    assert.equal(await mam.count('alice'), 0);
    const last = mam.append('bob', { payload: 'last' });
    await driver.close();
    await last;
    assert.deepEqual(
      other.prepare('SELECT "payload" FROM archive ORDER BY "sort"').pluck().all(),
      ['kept', 'last'],
    );
    assert.equal(pendingRows(), 0, 'close moves what is pending');
  });

  it('appends wait in archive_pending; a read moves them, in order, with their counts', async () => {
    const mam = driver.archive(HOST, 'mam');
    await Promise.all([
      mam.append('alice', { with: 'bob@example.com/phone', payload: 'a1' }),
      mam.append('carol', { payload: 'c1' }),
      mam.append('alice', { with: 'dave@example.com', payload: 'a2' }),
    ]);
    assert.equal(pendingRows(), 3);
    assert.equal(other.prepare('SELECT count(*) FROM archive').pluck().get(), 0);
    assert.equal(await mam.count('alice', { with: 'bob@example.com' }), 1);
    assert.equal(pendingRows(), 0);
    assert.deepEqual((await mam.find('alice')).map((i) => i.payload), ['a1', 'a2']);
    assert.deepEqual(
      other.prepare(`SELECT "user", "with_bare", "n" FROM archive_count ORDER BY "user", "with_bare"`).all(),
      [
        { user: 'alice', with_bare: '', n: 2 },
        { user: 'alice', with_bare: 'bob@example.com', n: 1 },
        { user: 'alice', with_bare: 'dave@example.com', n: 1 },
        { user: 'carol', with_bare: '', n: 1 },
      ],
    );
  });

  it(`moves pending rows on its own once ${ARCHIVE_MOVE_ROWS} are pending`, async () => {
    const mam = driver.archive(HOST, 'mam');
    await Promise.all(Array.from({ length: ARCHIVE_MOVE_ROWS }, (_, i) => mam.append(`u${i % 7}`, { payload: `m${i}` })));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pendingRows(), 0);
    assert.equal(other.prepare('SELECT count(*) FROM archive').pluck().get(), ARCHIVE_MOVE_ROWS);
  });

  it('an id given again replaces the item, whether it was moved already or is pending', async () => {
    const mam = driver.archive(HOST, 'mam');
    await mam.append('alice', { id: 'x', payload: 'x1' });
    await mam.append('alice', { id: 'y', payload: 'y1' });
    assert.equal((await mam.find('alice')).length, 2); // moved
    await mam.append('alice', { id: 'x', payload: 'x2' });
    await mam.append('alice', { id: 'z', payload: 'z1' });
    await mam.append('alice', { id: 'z', payload: 'z2' });
    await mam.append('bob', { id: 'x', payload: 'bob-x' }); // another archive's x stays apart
    assert.equal(pendingRows(), 4);
    assert.deepEqual((await mam.find('alice')).map((i) => `${i.id}=${i.payload}`), ['y=y1', 'x=x2', 'z=z2']);
    assert.equal(await mam.count('alice'), 3);
    assert.deepEqual((await mam.find('bob')).map((i) => i.payload), ['bob-x']);
  });

  it('a row that cannot move stays pending and blocks no other', async () => {
    other.exec(`CREATE TRIGGER poison BEFORE INSERT ON archive WHEN NEW."payload" = 'poison'
      BEGIN SELECT RAISE(ABORT, 'poisoned payload'); END;`);
    const mam = driver.archive(HOST, 'mam');
    await Promise.all(['a', 'poison', 'b'].map((payload) => mam.append('alice', { payload })));
    assert.deepEqual((await mam.find('alice')).map((i) => i.payload), ['a', 'b']);
    assert.deepEqual(other.prepare('SELECT "payload" FROM archive_pending').pluck().all(), ['poison']);
    other.exec('DROP TRIGGER poison');
    assert.deepEqual((await mam.find('alice')).map((i) => i.payload), ['a', 'b', 'poison']);
    assert.equal(pendingRows(), 0);
  });

  it('an acknowledged append survives a crash (the process killed before any move); the next open moves it', async function () {
    this.timeout(60_000);
    const crashDir = mkdtempSync(join(tmpdir(), 'cadence-crash-'));
    try {
      // A child appends, and once every append resolved, kills itself (no close, no move).
      const script = `
        import { SqliteDriver } from ${JSON.stringify(new URL('../../core/storage/drivers/sqlite.ts', import.meta.url).href)};
        const d = new SqliteDriver(${JSON.stringify(crashDir)});
        const mam = d.archive('example.com', 'mam');
        const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => mam.append('alice', { with: 'bob@example.com', payload: 'm' + i })));
        process.stdout.write(JSON.stringify(ids));
        process.kill(process.pid, 'SIGKILL');`;
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(child.signal, 'SIGKILL', child.stderr);
      const acknowledged = JSON.parse(child.stdout) as string[];
      assert.equal(acknowledged.length, 50);
      const raw = new Database(join(crashDir, DB_FILE), { readonly: true });
      try {
        assert.equal(raw.prepare('SELECT count(*) FROM archive_pending').pluck().get(), 50, 'still pending at the crash');
      } finally {
        raw.close();
      }
      const reopened = new SqliteDriver(crashDir);
      try {
        const items = await reopened.archive(HOST, 'mam').find('alice');
        assert.deepEqual(items.map((i) => i.id), acknowledged);
        assert.equal(await reopened.archive(HOST, 'mam').count('alice', { with: 'bob@example.com' }), 50);
      } finally {
        await reopened.close();
      }
    } finally {
      rmSync(crashDir, { recursive: true, force: true });
    }
  });

  it('the database is in WAL mode', () => {
    assert.equal(other.pragma('journal_mode', { simple: true }), 'wal');
  });
});
