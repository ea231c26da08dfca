/**
 * Micro-benchmark: XmppStreamParser vs. @xmpp/xml's (lenient) Parser.
 *
 *   npx tsx bench/xml-parse.ts [stanzas=200000] [chunkSize=16384] [rounds=5]
 *
 * Both parsers get the same UTF-8 input (a stream header followed by typical
 * chat message stanzas) written as Buffers of `chunkSize` bytes; @xmpp/xml's
 * Parser gets each chunk decoded with a StringDecoder, as a server would do.
 * The best of `rounds` runs is reported.
 */
import { StringDecoder } from 'node:string_decoder';
import { Parser } from '@xmpp/xml';
import { XmppStreamParser } from '../core/util/stream-parser.ts';

const STANZAS = Number(process.argv[2] ?? 200_000);
const CHUNK = Number(process.argv[3] ?? 16_384);
const ROUNDS = Number(process.argv[4] ?? 5);

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " +
  "to='capulet.example' version='1.0' xml:lang='en'>";

function stanza(i: number): string {
  const id = String(i).padStart(8, '0');
  return (
    `<message from='juliet@capulet.example/balcony' to='romeo@montague.example/orchard' type='chat' id='m-${id}'>` +
    `<body>Wherefore art thou, Romeo? Deny thy father &amp; refuse thy name \u2014 or be but sworn my love. #${i}</body>` +
    `<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>\n`
  );
}

function buildInput(): { chunks: Buffer[]; bytes: number } {
  const parts: string[] = [HEADER];
  for (let i = 0; i < STANZAS; i++) parts.push(stanza(i));
  const all = Buffer.from(parts.join(''), 'utf8');
  const chunks: Buffer[] = [];
  for (let off = 0; off < all.length; off += CHUNK) chunks.push(all.subarray(off, off + CHUNK));
  return { chunks, bytes: all.length };
}

interface Result {
  name: string;
  seconds: number;
  stanzas: number;
}

function runStrict(chunks: Buffer[]): Result {
  const p = new XmppStreamParser({ maxStanzaSize: 262_144, maxDepth: 32 });
  let count = 0;
  p.on('stanza', () => count++);
  p.on('error', (c, t) => {
    throw new Error(`XmppStreamParser error: ${c}: ${t}`);
  });
  const t0 = process.hrtime.bigint();
  for (const c of chunks) p.write(c);
  const t1 = process.hrtime.bigint();
  return { name: 'XmppStreamParser (saxes, strict)', seconds: Number(t1 - t0) / 1e9, stanzas: count };
}

function runLenient(chunks: Buffer[]): Result {
  const p = new Parser();
  const decoder = new StringDecoder('utf8');
  let count = 0;
  p.on('element', () => count++);
  p.on('error', (e: Error) => {
    throw e;
  });
  const t0 = process.hrtime.bigint();
  for (const c of chunks) p.write(decoder.write(c));
  const t1 = process.hrtime.bigint();
  return { name: '@xmpp/xml Parser (ltx, lenient)', seconds: Number(t1 - t0) / 1e9, stanzas: count };
}

function fmt(r: Result, bytes: number): string {
  const perSec = r.stanzas / r.seconds;
  const mbs = bytes / r.seconds / 1e6;
  return (
    `${r.name.padEnd(34)} ${r.seconds.toFixed(3).padStart(7)} s  ` +
    `${Math.round(perSec).toLocaleString('en-US').padStart(11)} stanzas/s  ${mbs.toFixed(1).padStart(6)} MB/s`
  );
}

const { chunks, bytes } = buildInput();
console.log(
  `${STANZAS.toLocaleString('en-US')} stanzas, ${(bytes / 1e6).toFixed(1)} MB (${Math.round(bytes / STANZAS)} bytes/stanza), ` +
    `${chunks.length} chunks of ${CHUNK} bytes, best of ${ROUNDS} rounds, node ${process.version}`,
);

const best = new Map<string, Result>();
for (let round = 0; round < ROUNDS; round++) {
  for (const run of round % 2 === 0 ? [runStrict, runLenient] : [runLenient, runStrict]) {
    const r = run(chunks);
    if (r.stanzas !== STANZAS) throw new Error(`${r.name}: got ${r.stanzas} stanzas, expected ${STANZAS}`);
    const prev = best.get(r.name);
    if (prev === undefined || r.seconds < prev.seconds) best.set(r.name, r);
  }
}
for (const r of best.values()) console.log(fmt(r, bytes));
