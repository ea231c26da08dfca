// mod_smacks' resumption journal (modules/mod_smacks/store.ts): what flushed() promises is in the
// file, a new process (a new store on the same file) reads back exactly the live state, an ack
// moves the counter and removes what it covers together, a torn last record (crash mid-write) is
// cut off, a damaged one skipped, compaction keeps the state, and state an earlier version kept in
// the map store is imported once. A stanza's record is the XML mod_smacks gives it (the string the
// socket write used: serialised once); one batch is written at a time, so what is acknowledged
// while a batch is being written never reaches the file; the inbound count ('i' records) comes
// back after a crash, and `beforeBatch` records go in the batch it precedes.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { xml } from '../../core/api.ts';
import { MemoryDriver } from '../../core/storage/drivers/memory.ts';
import { ResumptionStore, type StoredHeader } from '../../modules/mod_smacks/store.ts';

const HOST = 'example.org';

const header = (over: Partial<StoredHeader> = {}): StoredHeader => ({
  resource: 'phone', hIn: 3, hOutAcked: 0, max: 300, expires: null, presence: '<presence/>', interested: true, ...over,
});

/** A stanza as mod_smacks hands it to the journal: the XML written to the client. */
const message = (body: string) => xml('message', { to: 'juliet@example.org/phone', type: 'chat' }, xml('body', {}, body)).toString();

describe('mod_smacks resumption journal', function () {
  let dir: string;
  const errors: unknown[] = [];
  const stores: ResumptionStore[] = [];

  const openStore = async (opts: ConstructorParameters<typeof ResumptionStore>[3] = {}) => {
    const s = new ResumptionStore(dir, HOST, (err) => errors.push(err), opts);
    await s.open();
    stores.push(s);
    return s;
  };

  beforeEach(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cadence-smj-'));
    errors.length = 0;
  });
  afterEach(async function () {
    for (const s of stores.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has in the file what flushed() promised, and a new store reads back the sessions', async function () {
    const a = await openStore();
    a.header('juliet', 'id1', header());
    a.append('juliet', 'id1', 0, message('one'), 1000);
    a.append('juliet', 'id1', 1, message('two'), 1001);
    await a.flushed();
    const text = readFileSync(a.file, 'utf8');
    assert.match(text, /one/);
    assert.match(text, /two/);
    // What another process finds after this one died (no close, no further flush).
    const b = await openStore();
    const [s, ...rest] = b.loadAll();
    assert.deepEqual(rest, []);
    assert.equal(s!.username, 'juliet');
    assert.equal(s!.id, 'id1');
    assert.deepEqual(s!.header, header());
    assert.deepEqual(s!.queue.map((q) => [q.seq, q.sent]), [[0, 1000], [1, 1001]]);
    assert.equal(s!.queue[0]!.xml, message('one'));
    assert.deepEqual(errors, []);
  });

  it('writes an ack as one record: the counter moves and what it covers is gone together', async function () {
    const a = await openStore();
    a.header('juliet', 'id1', header({ hOutAcked: 0 }));
    for (let i = 0; i < 4; i++) a.append('juliet', 'id1', i, message(`m${i}`), 1000 + i);
    await a.flushed();
    a.ack('juliet', 'id1', 3, [0, 1, 2]);
    await a.flushed();
    const last = readFileSync(a.file, 'utf8').trim().split('\n').at(-1)!;
    assert.deepEqual(JSON.parse(last), ['k', 'juliet/id1', 3, [0, 1, 2]]);
    const [s] = (await openStore()).loadAll();
    assert.equal(s!.header.hOutAcked, 3);
    assert.deepEqual(s!.queue.map((q) => q.seq), [3]);
  });

  it('writes the XML it was given as the stanza\'s record (no serialisation of its own), and not at all once acknowledged before its batch', async function () {
    const a = await openStore();
    a.header('juliet', 'id1', header());
    const written = message('kept');
    a.append('juliet', 'id1', 0, written, 1000);
    a.append('juliet', 'id1', 1, message('never written'), 1001);
    a.remove('juliet', 'id1', [1]);
    await a.flushed();
    const lines = readFileSync(a.file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown[]);
    assert.deepEqual(lines.filter((l) => l[0] === 'a'), [['a', 'juliet/id1', 0, 1000, written]]);
    assert.doesNotMatch(readFileSync(a.file, 'utf8'), /never written/);
    const [s] = (await openStore()).loadAll();
    assert.deepEqual(s!.queue, [{ seq: 0, xml: written, sent: 1000 }]);
  });

  it('writes one batch at a time: what is acknowledged while a batch is being written never reaches the file', async function () {
    const a = await openStore();
    a.header('juliet', 'id1', header({ hOutAcked: 0 }));
    a.append('juliet', 'id1', 0, message('first batch'), 1000);
    const first = a.flush();
    // The first batch is being written: these wait for the next one.
    a.append('juliet', 'id1', 1, message('acked while the disk was busy'), 1001);
    a.append('juliet', 'id1', 2, message('still unacknowledged'), 1002);
    void a.flush();
    a.ack('juliet', 'id1', 2, [0, 1]);
    await first;
    await a.flushed();
    const text = readFileSync(a.file, 'utf8');
    assert.match(text, /first batch/);
    assert.match(text, /still unacknowledged/);
    assert.doesNotMatch(text, /acked while the disk was busy/);
    assert.equal(a.stats().batches, 2);
    const [s] = (await openStore()).loadAll();
    assert.equal(s!.header.hOutAcked, 2);
    assert.deepEqual(s!.queue.map((q) => q.seq), [2]);
  });

  it('keeps the inbound count (\'i\' records) across a crash, and writes what beforeBatch adds in the batch it precedes', async function () {
    let hIn = 0;
    const a = await openStore({ beforeBatch: () => a.handled('juliet', 'id1', hIn) });
    a.header('juliet', 'id1', header({ hIn: 0 }));
    await a.flushed();
    const batches = a.stats().batches;
    hIn = 7;
    a.append('juliet', 'id1', 0, message('caused by the seventh'), 1000);
    await a.flushed();
    assert.equal(a.stats().batches, batches + 1, 'the count went with the stanza it caused');
    const last = readFileSync(a.file, 'utf8').trim().split('\n').at(-1)!;
    assert.deepEqual(JSON.parse(last), ['i', 'juliet/id1', 7]);
    // No close: what another process finds after this one died.
    const [s] = (await openStore()).loadAll();
    assert.equal(s!.header.hIn, 7);
    assert.deepEqual(s!.queue.map((q) => q.seq), [0]);
  });

  it('puts a batch that could not be written back in front: flushed() rejects, the retry writes it, and a stanza gone from the queue meanwhile leaves it', async function () {
    const a = await openStore();
    a.header('juliet', 'id1', header({ hOutAcked: 0 }));
    await a.flushed();
    // The file handle goes away (as if the disk failed): the next write throws.
    const inner = a as unknown as { fh: unknown };
    const fh = inner.fh;
    inner.fh = undefined;
    a.append('juliet', 'id1', 0, message('kept for the retry'), 1000);
    a.append('juliet', 'id1', 1, message('gone before the retry'), 1001);
    await assert.rejects(a.flushed(), /not open/);
    assert.equal(errors.length, 1);
    inner.fh = fh;
    a.remove('juliet', 'id1', [1]);
    await a.flushed();
    const text = readFileSync(a.file, 'utf8');
    assert.match(text, /kept for the retry/);
    assert.doesNotMatch(text, /gone before the retry/);
    const [s] = (await openStore()).loadAll();
    assert.deepEqual(s!.queue.map((q) => q.seq), [0]);
  });

  it('forgets a dropped session, and a session without a header', async function () {
    const a = await openStore();
    a.header('juliet', 'id1', header());
    a.append('juliet', 'id1', 0, message('one'), 1000);
    a.header('romeo', 'id2', header({ resource: 'desk' }));
    await a.flushed();
    a.drop('juliet', 'id1');
    await a.flushed();
    assert.deepEqual((await openStore()).loadAll().map((s) => s.id), ['id2']);
  });

  it('cuts off a torn last record (a crash in the middle of a write) and goes on writing after it', async function () {
    const a = await openStore();
    a.header('juliet', 'id1', header());
    a.append('juliet', 'id1', 0, message('one'), 1000);
    await a.close();
    stores.length = 0;
    const good = statSync(a.file).size;
    appendFileSync(a.file, '["a","juliet/id1",1,1001,"<message><bo');
    const b = await openStore();
    assert.equal(statSync(b.file).size, good);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /torn/);
    assert.deepEqual(b.loadAll()[0]!.queue.map((q) => q.seq), [0]);
    b.append('juliet', 'id1', 1, message('two'), 1001);
    await b.flushed();
    assert.deepEqual((await openStore()).loadAll()[0]!.queue.map((q) => q.seq), [0, 1]);
  });

  it('skips a damaged record in the middle with an error, keeping the rest', async function () {
    const a = await openStore();
    a.header('juliet', 'id1', header());
    await a.flushed();
    appendFileSync(a.file, 'not json\n');
    a.append('juliet', 'id1', 0, message('one'), 1000);
    await a.flushed();
    const [s] = (await openStore()).loadAll();
    assert.deepEqual(s!.queue.map((q) => q.seq), [0]);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /damaged/);
  });

  it('compacts a journal of mostly acknowledged stanzas into the live state', async function () {
    const a = await openStore({ compactMinBytes: 64 * 1024 });
    a.header('juliet', 'id1', header());
    let seq = 0;
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 10; i++) a.append('juliet', 'id1', seq++, message(`round ${round} stanza ${i} ${'x'.repeat(100)}`), 1000 + seq);
      await a.flushed();
      // All but the last stanza acknowledged.
      a.ack('juliet', 'id1', seq - 1, Array.from({ length: 10 }, (_, i) => seq - 11 + i).filter((x) => x >= 0));
      await a.flushed();
    }
    assert.ok(a.stats().compactions >= 1, JSON.stringify(a.stats()));
    assert.ok(statSync(a.file).size < 64 * 1024);
    const [s] = (await openStore()).loadAll();
    assert.equal(s!.header.hOutAcked, seq - 1);
    assert.deepEqual(s!.queue.map((q) => q.seq), [seq - 1]);
    assert.match(s!.queue[0]!.xml, /round 99 stanza 9/);
    assert.deepEqual(errors, []);
  });

  it('imports the sessions an earlier version kept in the map store, once, and clears it', async function () {
    const driver = new MemoryDriver();
    const map = driver.map(HOST, 'smacks');
    await map.setKeys(null, {
      'juliet/old1': header({ hOutAcked: 2 }) as unknown as Record<string, never>,
      'juliet/old1/2': { xml: '<message><body>kept</body></message>', sent: 5 },
      'nobody/gone/0': { xml: '<message/>', sent: 5 },
    });
    const a = await openStore({ legacy: map });
    const [s, ...rest] = a.loadAll();
    assert.deepEqual(rest, []);
    assert.equal(s!.header.hOutAcked, 2);
    assert.deepEqual(s!.queue, [{ seq: 2, xml: '<message><body>kept</body></message>', sent: 5 }]);
    assert.equal((await map.getAll(null)).size, 0);
    const [again] = (await openStore()).loadAll();
    assert.deepEqual(again!.queue.map((q) => q.seq), [2]);
  });
});
