// Scenario 6: Message Archive Management on a large archive (issue 15: the last page and a query
// by 'with' under 20 ms on 1,000,000 messages). In-process, no server: an archive of N messages
// for one account in a fresh SQLite database, then MAM queries answered by the engine itself
// (core/util/mam.ts answerMamIq: parse the iq, query the store, count, build and serialise every
// result message and the <fin/>), timed one by one; and the database's size on disk per message.
//
// Filling: the schema comes from the SQLite driver (core/storage/drivers/sqlite.ts, which also
// installs the triggers that keep archive_count); the rows are then inserted straight into its
// archive table, 10,000 per transaction with synchronous=OFF — a million durable appends
// (one fsync each, ~0.3 ms) would take longer than the queries are worth. What one durable
// append through ArchiveStore.append costs is measured separately on the filled archive.
//
//   node --import tsx bench/scenarios/mam.ts [--messages 1000000] [--queries 200] [--keep DIR]
//   npm run bench -- --servers cadence --scenarios mam      (also part of the full run)
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Element } from '@xmpp/xml';
import Database from 'better-sqlite3';
import { newArchiveId } from '../../core/storage/drivers/common.ts';
import { DB_FILE, SqliteDriver } from '../../core/storage/drivers/sqlite.ts';
import { submit } from '../../core/util/dataforms.ts';
import { type MamOptions, NS_MAM, answerMamIq } from '../../core/util/mam.ts';
import { NS_RSM } from '../../core/util/rsm.ts';
import { percentile } from '../lib/proc.ts';

const HOST = 'bench.local';
const USER = 'user';
const STORE = 'archive'; // what mod_mam will use
const T0 = Date.UTC(2023, 0, 1);
const STEP_MS = 30_000; // one message every 30 s: a million span about a year

export interface MamQueryTiming {
  name: string;
  p50Ms: number;
  p99Ms: number;
  runs: number;
  /** Result messages per query (the page size, or fewer). */
  results: number;
}

export interface MamResult {
  messages: number;
  contacts: number;
  fillSeconds: number;
  bytesOnDisk: number;
  bytesPerMessage: number;
  /** One durable ArchiveStore.append on the filled archive, median. */
  appendP50Ms: number;
  queries: MamQueryTiming[];
}

/** Contact k of `contacts` gets a share of messages proportional to 1/(k+1) (Zipf): a few close contacts, a long tail. */
function contactPicker(contacts: number, seed = 1): () => number {
  const cum: number[] = [];
  let sum = 0;
  for (let k = 0; k < contacts; k++) cum.push((sum += 1 / (k + 1)));
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  return () => {
    const x = rnd() * sum;
    let lo = 0;
    let hi = contacts - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const contactJid = (k: number) => `contact${k}@example.net`;

function payload(i: number, k: number, id: string): string {
  const me = `${USER}@${HOST}/phone`;
  const them = `${contactJid(k)}/device${i % 3}`;
  const [from, to] = i % 2 ? [them, me] : [me, them];
  return `<message xmlns="jabber:client" from="${from}" to="${to}" type="chat" id="${id}"><body>Message ${i}: an ordinary line of chat, about as long as most are.</body>`
    + `<origin-id xmlns="urn:xmpp:sid:0" id="${id}"/><request xmlns="urn:xmpp:receipts"/><markable xmlns="urn:xmpp:chat-markers:0"/></message>`;
}

async function fill(dir: string, messages: number, contacts: number, log: (line: string) => void): Promise<{ seconds: number; ids: string[] }> {
  await new SqliteDriver(dir).close(); // schema, indexes and triggers, as the server makes them
  const db = new Database(path.join(dir, DB_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare('INSERT INTO archive ("host", "user", "store", "id", "when", "with", "payload") VALUES (?, ?, ?, ?, ?, ?, ?)');
  const pick = contactPicker(contacts);
  const ids: string[] = new Array(messages);
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const k = pick();
      const id = newArchiveId();
      ids[i] = id;
      insert.run(HOST, USER, STORE, id, T0 + i * STEP_MS, `${contactJid(k)}/device${i % 3}`, payload(i, k, newArchiveId()));
    }
  });
  const t0 = performance.now();
  for (let i = 0; i < messages; i += 10_000) {
    batch(i, Math.min(messages, i + 10_000));
    if ((i / 10_000) % 25 === 24) log(`    … ${i + 10_000} messages`);
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { seconds: (performance.now() - t0) / 1000, ids };
}

function diskBytes(dir: string): number {
  let total = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      total += statSync(path.join(dir, DB_FILE + suffix)).size;
    } catch {
      /* absent */
    }
  }
  return total;
}

/** A MAM query iq as a client sends it: an optional form, and RSM max with after or before. */
function mamIq(fields: Record<string, string> | undefined, rsm: { max: number; before?: string; after?: string }): Element {
  const q = new Element('query', { xmlns: NS_MAM, queryid: 'bench' });
  if (fields) q.cnode(submit(NS_MAM, fields));
  const set = q.c('set', { xmlns: NS_RSM });
  set.c('max').t(String(rsm.max));
  if (rsm.after !== undefined) set.c('after').t(rsm.after);
  if (rsm.before !== undefined) set.c('before').t(rsm.before);
  return new Element('iq', { type: 'set', id: 'q', from: `${USER}@${HOST}/phone`, to: `${USER}@${HOST}` }).cnode(q).up() as Element;
}

export async function mamArchive(o: { dir: string; messages: number; contacts?: number; queries: number; log: (line: string) => void }): Promise<MamResult> {
  const contacts = o.contacts ?? 200;
  mkdirSync(o.dir, { recursive: true });
  o.log(`  mam: filling an archive of ${o.messages} messages with ${contacts} contacts`);
  const filled = await fill(o.dir, o.messages, contacts, o.log);
  const bytesOnDisk = diskBytes(o.dir);
  o.log(`  mam: filled in ${filled.seconds.toFixed(1)} s; ${(bytesOnDisk / 2 ** 20).toFixed(0)} MiB on disk, ${(bytesOnDisk / o.messages).toFixed(0)} bytes per message`);

  const driver = new SqliteDriver(o.dir);
  const store = driver.archive(HOST, STORE);
  let sent = 0;
  const ctx = {
    store,
    user: USER,
    archiveJid: `${USER}@${HOST}`,
    send: (m: Element) => {
      m.toString(); // what sending costs before the socket
      sent++;
    },
  };
  const rnd = contactPicker(contacts, 7);
  const uniform = (n: number) => Math.floor(Math.random() * n);
  const newest = (back: number) => filled.ids[o.messages - 1 - back]!;
  const anywhere = () => filled.ids[50 + uniform(o.messages - 50)]!;
  const shapes: { name: string; iq: () => Element; opts?: MamOptions }[] = [
    { name: 'last page (RSM <before/>)', iq: () => mamIq(undefined, { max: 50, before: '' }) },
    { name: "by 'with', last page, any contact", iq: () => mamIq({ with: contactJid(uniform(contacts)) }, { max: 50, before: '' }) },
    { name: "by 'with', last page, contact by message share", iq: () => mamIq({ with: contactJid(rnd()) }, { max: 50, before: '' }) },
    { name: 'catch-up by start (the last hour)', iq: () => mamIq({ start: new Date(T0 + (o.messages - 120) * STEP_MS).toISOString() }, { max: 50 }) },
    { name: 'catch-up by after-id (500 behind)', iq: () => mamIq({ 'after-id': newest(500) }, { max: 50 }) },
    { name: 'scroll back from anywhere (RSM before)', iq: () => mamIq(undefined, { max: 50, before: anywhere() }) },
    { name: "scroll back from anywhere, index: 'ends'", iq: () => mamIq(undefined, { max: 50, before: anywhere() }), opts: { index: 'ends' } },
  ];
  const queries: MamQueryTiming[] = [];
  for (const shape of shapes) {
    for (let w = 0; w < 20; w++) await answerMamIq(shape.iq(), ctx, shape.opts); // warm the statement cache and pages
    const times: number[] = [];
    let results = 0;
    for (let r = 0; r < o.queries; r++) {
      const iq = shape.iq();
      sent = 0;
      const t = performance.now();
      await answerMamIq(iq, ctx, shape.opts);
      times.push(performance.now() - t);
      results = Math.max(results, sent);
    }
    times.sort((a, b) => a - b);
    const timing = { name: shape.name, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), runs: o.queries, results };
    queries.push(timing);
    o.log(`  mam: ${shape.name}: p50 ${timing.p50Ms.toFixed(2)} ms, p99 ${timing.p99Ms.toFixed(2)} ms (${timing.results} results each)`);
  }

  const appendTimes: number[] = [];
  for (let i = 0; i < 200; i++) {
    const k = rnd();
    const t = performance.now();
    await store.append(USER, { with: `${contactJid(k)}/device0`, payload: payload(o.messages + i, k, newArchiveId()) });
    appendTimes.push(performance.now() - t);
  }
  appendTimes.sort((a, b) => a - b);
  await driver.close();
  const result: MamResult = {
    messages: o.messages,
    contacts,
    fillSeconds: filled.seconds,
    bytesOnDisk,
    bytesPerMessage: bytesOnDisk / o.messages,
    appendP50Ms: percentile(appendTimes, 50),
    queries,
  };
  o.log(`  mam: durable append p50 ${result.appendP50Ms.toFixed(2)} ms`);
  return result;
}

/** The result as lines for the run's notes (rendered into RESULTS.md's set-up section). */
export function mamNotes(r: MamResult): string[] {
  return [
    `archive: ${r.messages.toLocaleString('en')} messages for one account, ${r.contacts} contacts (Zipf shares), SQLite; filled in ${r.fillSeconds.toFixed(0)} s straight into the archive table; ${Math.round(r.bytesPerMessage)} bytes on disk per message (${(r.bytesOnDisk / 2 ** 20).toFixed(0)} MiB); durable append p50 ${r.appendP50Ms.toFixed(2)} ms`,
    ...r.queries.map((q) => `query ${q.name}: p50 ${q.p50Ms.toFixed(2)} ms, p99 ${q.p99Ms.toFixed(2)} ms over ${q.runs} queries (${q.results} results each, serialised)`),
  ];
}

/** Entry for bench/run.ts: runs in a directory of its own under `runDir`, removed afterwards. */
export async function mamScenario(o: { runDir: string; quick: boolean; log: (line: string) => void }): Promise<string[]> {
  const dir = path.join(o.runDir, 'mam');
  try {
    const r = await mamArchive({ dir, messages: o.quick ? 100_000 : 1_000_000, queries: o.quick ? 50 : 200, log: o.log });
    return mamNotes(r);
  } catch (err) {
    o.log(`  mam failed: ${(err as Error).message}`);
    return [`failed: ${(err as Error).message.split('\n')[0]}`];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { messages: { type: 'string', default: '1000000' }, queries: { type: 'string', default: '200' }, keep: { type: 'string' } } });
  const dir = values.keep ? path.resolve(values.keep) : mkdtempSync(path.join(os.tmpdir(), 'cadence-bench-mam-'));
  const t0 = Date.now();
  const log = (line: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
  mamArchive({ dir, messages: Number(values.messages), queries: Number(values.queries), log })
    .then((r) => {
      process.stdout.write(`\n${mamNotes(r).map((l) => `- ${l}`).join('\n')}\n`);
      if (!values.keep) rmSync(dir, { recursive: true, force: true });
    })
    .catch((err: unknown) => {
      process.stderr.write(`mam bench failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    });
}
