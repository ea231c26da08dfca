// A tiny authoritative DNS server for tests, on 127.0.0.1 (UDP and TCP on the same port): it
// answers prepared A, AAAA, CNAME, SRV and TLSA records, sets the AD bit for names marked
// secure, and can misbehave on purpose (SERVFAIL, silence, truncation, a forged answer first).
// Tests point Cadence's resolver at it (`dnsServers`), so no test sends DNS off the machine.
// It has its own encoder and query reader, written apart from core/util/dns-message.ts, so the
// client is checked against an independent implementation of the wire format.
import dgram from 'node:dgram';
import net from 'node:net';

export type TestRecord =
  | { type: 'A'; address: string; ttl?: number }
  | { type: 'AAAA'; address: string; ttl?: number }
  | { type: 'CNAME'; target: string; ttl?: number }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string; ttl?: number }
  | { type: 'TLSA'; usage: number; selector: number; matchingType: number; data: Buffer | string; ttl?: number };

const TYPE_CODE: Record<TestRecord['type'], number> = { A: 1, AAAA: 28, CNAME: 5, SRV: 33, TLSA: 52 };

export interface ReceivedQuery {
  name: string;
  type: number;
  transport: 'udp' | 'tcp';
  /** An OPT record was present. */
  edns: boolean;
  /** The DO bit of the OPT record. */
  dnssecOk: boolean;
  id: number;
}

export type Behaviour = 'answer' | 'servfail' | 'refused' | 'silent' | 'truncate' | 'forge-first';

export interface TestDnsServer {
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:<port>`, for `dnsServers`. */
  readonly address: string;
  readonly queries: ReceivedQuery[];
  /** Replaces the records of a name (`secure`: answers about it carry AD). */
  set(name: string, records: TestRecord[], options?: { secure?: boolean }): void;
  /** How the server treats questions about a name (default 'answer'). */
  behave(name: string, behaviour: Behaviour): void;
  close(): Promise<void>;
}

interface Entry {
  records: TestRecord[];
  secure: boolean;
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function nameBytes(name: string): Buffer {
  const n = normalize(name);
  if (n === '') return Buffer.from([0]);
  const out: number[] = [];
  for (const label of n.split('.')) {
    out.push(label.length, ...Buffer.from(label, 'ascii'));
  }
  out.push(0);
  return Buffer.from(out);
}

function ipv4Bytes(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function rdata(r: TestRecord): Buffer {
  switch (r.type) {
    case 'A':
      return ipv4Bytes(r.address);
    case 'AAAA':
      return ipv6Bytes(r.address);
    case 'CNAME':
      return nameBytes(r.target);
    case 'SRV': {
      const head = Buffer.alloc(6);
      head.writeUInt16BE(r.priority, 0);
      head.writeUInt16BE(r.weight, 2);
      head.writeUInt16BE(r.port, 4);
      return Buffer.concat([head, nameBytes(r.target === '.' ? '' : r.target)]);
    }
    case 'TLSA': {
      const data = typeof r.data === 'string' ? Buffer.from(r.data, 'hex') : r.data;
      return Buffer.concat([Buffer.from([r.usage, r.selector, r.matchingType]), data]);
    }
  }
}

function rr(owner: string, r: TestRecord): Buffer {
  const data = rdata(r);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(TYPE_CODE[r.type], 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(r.ttl ?? 300, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([nameBytes(owner), fixed, data]);
}

/** Reads the question of a query (no compression expected in queries). */
function readQuery(buf: Buffer): { id: number; rd: boolean; name: string; type: number; qclass: number; questionEnd: number; edns: boolean; dnssecOk: boolean } | undefined {
  if (buf.length < 12) return undefined;
  let p = 12;
  const labels: string[] = [];
  while (p < buf.length && buf[p] !== 0) {
    const len = buf[p]!;
    if (len > 63 || p + 1 + len > buf.length) return undefined;
    labels.push(buf.toString('ascii', p + 1, p + 1 + len));
    p += 1 + len;
  }
  p += 1;
  if (p + 4 > buf.length) return undefined;
  const type = buf.readUInt16BE(p);
  const qclass = buf.readUInt16BE(p + 2);
  const questionEnd = p + 4;
  let edns = false;
  let dnssecOk = false;
  // An OPT record in the additional section: root name, type 41, then class and TTL.
  if (buf.readUInt16BE(10) === 1 && questionEnd + 11 <= buf.length && buf[questionEnd] === 0 && buf.readUInt16BE(questionEnd + 1) === 41) {
    edns = true;
    dnssecOk = (buf.readUInt32BE(questionEnd + 5) & 0x8000) !== 0;
  }
  return { id: buf.readUInt16BE(0), rd: (buf[2]! & 1) === 1, name: normalize(labels.join('.')), type, qclass, questionEnd, edns, dnssecOk };
}

export async function startDnsServer(): Promise<TestDnsServer> {
  const zone = new Map<string, Entry>();
  const behaviours = new Map<string, Behaviour>();
  const queries: ReceivedQuery[] = [];

  const respond = (query: Buffer, transport: 'udp' | 'tcp'): Buffer[] => {
    const q = readQuery(query);
    if (!q) return [];
    queries.push({ name: q.name, type: q.type, transport, edns: q.edns, dnssecOk: q.dnssecOk, id: q.id });
    const behaviour = behaviours.get(q.name) ?? 'answer';
    if (behaviour === 'silent') return [];
    let rcode = 0;
    const answers: Buffer[] = [];
    let secure = true;
    if (behaviour === 'servfail') rcode = 2;
    else if (behaviour === 'refused') rcode = 5;
    else {
      // Follow CNAMEs inside the zone, as a recursive resolver would before answering.
      let owner = q.name;
      const seen = new Set<string>();
      for (;;) {
        const entry = zone.get(owner);
        if (!entry) {
          if (owner === q.name) rcode = 3;
          break;
        }
        secure &&= entry.secure;
        const cname = entry.records.find((r) => r.type === 'CNAME');
        if (cname && q.type !== 5) {
          answers.push(rr(owner, cname));
          if (cname.type !== 'CNAME' || seen.has(owner)) break;
          seen.add(owner);
          owner = normalize(cname.target);
          continue;
        }
        for (const r of entry.records) if (TYPE_CODE[r.type] === q.type) answers.push(rr(owner, r));
        break;
      }
    }
    const truncated = behaviour === 'truncate' && transport === 'udp';
    const header = Buffer.alloc(12);
    header.writeUInt16BE(q.id, 0);
    // QR, opcode 0, AA, TC when truncating, RD copied, RA, AD for secure answers.
    let flags = 0x8000 | 0x0400 | 0x0080 | (q.rd ? 0x0100 : 0) | rcode;
    if (truncated) flags |= 0x0200;
    // AD when every name the answer went through is marked secure (NODATA included).
    if (secure && rcode === 0 && behaviour !== 'servfail' && behaviour !== 'refused') flags |= 0x0020;
    header.writeUInt16BE(flags, 2);
    header.writeUInt16BE(1, 4);
    const body = truncated ? [] : answers;
    header.writeUInt16BE(body.length, 6);
    header.writeUInt16BE(0, 8);
    header.writeUInt16BE(q.edns ? 1 : 0, 10);
    const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, q.dnssecOk ? 0x80 : 0, 0, 0, 0]);
    const reply = Buffer.concat([header, query.subarray(12, q.questionEnd), ...body, ...(q.edns ? [opt] : [])]);
    if (behaviour === 'forge-first' && transport === 'udp') {
      // An answer with the wrong id and a bogus address first, as an off-path attacker would send.
      const bogus = Buffer.concat([header, query.subarray(12, q.questionEnd), rr(q.name, { type: 'A', address: '192.0.2.66' })]);
      bogus.writeUInt16BE((q.id + 1) & 0xffff, 0);
      bogus.writeUInt16BE(1, 6);
      bogus.writeUInt16BE(0, 10);
      return [bogus, reply];
    }
    return [reply];
  };
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const len = buffered.readUInt16BE(0);
        const query = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        for (const out of respond(query, 'tcp')) {
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(out.length);
          socket.write(Buffer.concat([prefix, out]));
        }
      }
    });
  });
  // UDP and TCP on one port number: bind UDP on a free port, then TCP on the same number,
  // trying again with another port in the rare case the TCP one is taken.
  let udp: dgram.Socket | undefined;
  let port = 0;
  for (let attempt = 0; attempt < 20 && !udp; attempt++) {
    const candidate = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      candidate.once('error', reject);
      candidate.bind(0, '127.0.0.1', () => resolve());
    });
    port = candidate.address().port;
    const listening = await new Promise<boolean>((resolve) => {
      const onError = () => resolve(false);
      tcp.once('error', onError);
      tcp.listen(port, '127.0.0.1', () => {
        tcp.off('error', onError);
        resolve(true);
      });
    });
    if (listening) udp = candidate;
    else candidate.close();
  }
  if (!udp) throw new Error('test DNS server: no port free for both UDP and TCP');
  const socket = udp;
  socket.on('message', (msg, rinfo) => {
    for (const out of respond(msg, 'udp')) socket.send(out, rinfo.port, rinfo.address);
  });

  return {
    host: '127.0.0.1',
    port,
    address: `127.0.0.1:${port}`,
    queries,
    set(name, records, options = {}) {
      zone.set(normalize(name), { records, secure: options.secure ?? false });
    },
    behave(name, behaviour) {
      behaviours.set(normalize(name), behaviour);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => socket.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}
