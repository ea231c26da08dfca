// DNS messages on the wire (RFC 1035 §4, EDNS(0) of RFC 6891, the DO and AD bits of RFC 4035 /
// RFC 6840): building a query and reading a response. Pure: the transport is core/net/dns.ts.
// Reading is strict and bounded: every offset is checked, compression pointers may only point
// backwards (so they cannot loop), names are at most 255 octets; malformed input throws
// DnsFormatError. Record data is decoded for the types s2s needs (A, AAAA, CNAME, SRV, TLSA, SOA);
// others are kept as bytes.

export class DnsFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsFormatError';
  }
}

export const RRTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  TLSA: 52,
} as const;

export const CLASS_IN = 1;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export interface Flags {
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** Authentic Data (RFC 4035 §3.2.3): the resolver validated the answer with DNSSEC. */
  ad: boolean;
  /** Checking Disabled (RFC 4035 §3.2.2). */
  cd: boolean;
}

export interface Question {
  name: string;
  type: number;
  class: number;
}

export type RecordData =
  | { kind: 'A'; address: string }
  | { kind: 'AAAA'; address: string }
  | { kind: 'CNAME'; target: string }
  /** `target` is '.' for the root ("no service", RFC 2782). */
  | { kind: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { kind: 'TLSA'; usage: number; selector: number; matchingType: number; data: Buffer }
  | { kind: 'SOA'; mname: string; rname: string; serial: number; minimum: number }
  | { kind: 'raw'; data: Buffer };

export interface ResourceRecord {
  /** Owner name: lowercase, no trailing dot; '' for the root. */
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: RecordData;
}

export interface Edns {
  udpSize: number;
  version: number;
  /** DNSSEC OK (RFC 3225). */
  dnssecOk: boolean;
}

export interface DnsMessage {
  id: number;
  flags: Flags;
  /** The full response code: the header's four bits plus the OPT record's upper eight. */
  rcode: number;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
  edns?: Edns;
}

export interface QueryOptions {
  id: number;
  name: string;
  type: number;
  /** EDNS(0) with the DO bit (default true); false sends a plain RFC 1035 query. */
  edns?: boolean;
  /** Our UDP payload size (default 1232, the DNS Flag Day 2020 value). */
  udpSize?: number;
}

const MAX_NAME = 255;

/** A domain name in wire form (no compression). Names are given without escapes. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed === '') return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const label of trimmed.split('.')) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length === 0 || bytes.length > 63 || /[^\x21-\x7e]/.test(label)) throw new DnsFormatError(`invalid label in ${name}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > MAX_NAME) throw new DnsFormatError(`name too long: ${name}`);
  return out;
}

/** A standard query for one name and type, recursion desired, AD set (RFC 6840 §5.7). */
export function encodeQuery(options: QueryOptions): Buffer {
  const edns = options.edns !== false;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(options.id & 0xffff, 0);
  // RD (0x0100) and AD (0x0020): ask for the validation result even from resolvers that look
  // only at the AD bit.
  header.writeUInt16BE(0x0100 | 0x0020, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(edns ? 1 : 0, 10); // ARCOUNT
  const question = Buffer.alloc(4);
  question.writeUInt16BE(options.type, 0);
  question.writeUInt16BE(CLASS_IN, 2);
  const parts = [header, encodeName(options.name), question];
  if (edns) {
    // OPT pseudo-RR (RFC 6891 §6.1.2): root owner, class = payload size, TTL = ext-rcode,
    // version, DO bit; no options.
    const opt = Buffer.alloc(11);
    opt[0] = 0;
    opt.writeUInt16BE(RRTYPE.OPT, 1);
    opt.writeUInt16BE(options.udpSize ?? 1232, 3);
    opt.writeUInt32BE(0x00008000, 5); // DO
    opt.writeUInt16BE(0, 9);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

/** Reads a complete DNS message. */
export function decodeMessage(buf: Buffer): DnsMessage {
  if (buf.length < 12) throw new DnsFormatError('message shorter than its header');
  const id = buf.readUInt16BE(0);
  const f = buf.readUInt16BE(2);
  const flags: Flags = {
    qr: (f & 0x8000) !== 0,
    opcode: (f >> 11) & 0x0f,
    aa: (f & 0x0400) !== 0,
    tc: (f & 0x0200) !== 0,
    rd: (f & 0x0100) !== 0,
    ra: (f & 0x0080) !== 0,
    ad: (f & 0x0020) !== 0,
    cd: (f & 0x0010) !== 0,
  };
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)];
  let pos = 12;
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]!; i++) {
    const [name, next] = readName(buf, pos);
    need(buf, next, 4);
    questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) });
    pos = next + 4;
  }
  const sections: ResourceRecord[][] = [[], [], []];
  let edns: Edns | undefined;
  let rcode = f & 0x0f;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const [name, next] = readName(buf, pos);
      need(buf, next, 10);
      const type = buf.readUInt16BE(next);
      const cls = buf.readUInt16BE(next + 2);
      const ttl = buf.readUInt32BE(next + 4);
      const rdlength = buf.readUInt16BE(next + 8);
      const rdStart = next + 10;
      need(buf, rdStart, rdlength);
      pos = rdStart + rdlength;
      if (type === RRTYPE.OPT) {
        // RFC 6891 §6.1.1: at most one OPT, in the additional section, owned by the root.
        if (s !== 2 || edns || name !== '') throw new DnsFormatError('misplaced OPT record');
        edns = { udpSize: cls, version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0 };
        rcode |= (ttl >>> 24) << 4;
        continue;
      }
      // RFC 2181 §8: a TTL with the top bit set counts as zero.
      sections[s]!.push({ name, type, class: cls, ttl: ttl > 0x7fffffff ? 0 : ttl, data: readData(buf, type, rdStart, rdlength) });
    }
  }
  return { id, flags, rcode, questions, answers: sections[0]!, authorities: sections[1]!, additionals: sections[2]!, edns };
}

function need(buf: Buffer, pos: number, len: number): void {
  if (pos + len > buf.length) throw new DnsFormatError('truncated message');
}

/** Reads a (possibly compressed) name at `pos`; returns it and the offset after it. */
export function readName(buf: Buffer, pos: number): [name: string, next: number] {
  const labels: string[] = [];
  let wireLength = 1;
  let next = -1;
  let p = pos;
  // Every pointer must go strictly backwards, which bounds the walk and rules out loops.
  let lowest = pos;
  for (;;) {
    need(buf, p, 1);
    const len = buf[p]!;
    if (len === 0) {
      if (next < 0) next = p + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      need(buf, p, 2);
      const target = ((len & 0x3f) << 8) | buf[p + 1]!;
      if (next < 0) next = p + 2;
      if (target >= lowest) throw new DnsFormatError('compression pointer does not point backwards');
      lowest = target;
      p = target;
      continue;
    }
    if (kind !== 0) throw new DnsFormatError('unsupported label type');
    need(buf, p + 1, len);
    wireLength += len + 1;
    if (wireLength > MAX_NAME) throw new DnsFormatError('name longer than 255 octets');
    labels.push(escapeLabel(buf.subarray(p + 1, p + 1 + len)));
    p += len + 1;
  }
  return [labels.join('.'), next];
}

/** Lowercase; bytes outside printable ASCII, '.' and '\' as \DDD (RFC 4343 style). */
function escapeLabel(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) {
    if (b > 0x20 && b < 0x7f && b !== 0x2e && b !== 0x5c) s += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b + 32 : b);
    else s += `\\${b.toString().padStart(3, '0')}`;
  }
  return s;
}

function readData(buf: Buffer, type: number, start: number, length: number): RecordData {
  const end = start + length;
  const exact = (n: number) => {
    if (length !== n) throw new DnsFormatError(`record data of type ${type} has ${length} octets`);
  };
  switch (type) {
    case RRTYPE.A:
      exact(4);
      return { kind: 'A', address: Array.from(buf.subarray(start, end)).join('.') };
    case RRTYPE.AAAA:
      exact(16);
      return { kind: 'AAAA', address: formatIpv6(buf.subarray(start, end)) };
    case RRTYPE.CNAME: {
      const [target, next] = readName(buf, start);
      if (next !== end) throw new DnsFormatError('CNAME data length mismatch');
      return { kind: 'CNAME', target };
    }
    case RRTYPE.SRV: {
      if (length < 7) throw new DnsFormatError('SRV data too short');
      const [target, next] = readName(buf, start + 6);
      if (next !== end) throw new DnsFormatError('SRV data length mismatch');
      return {
        kind: 'SRV',
        priority: buf.readUInt16BE(start),
        weight: buf.readUInt16BE(start + 2),
        port: buf.readUInt16BE(start + 4),
        target: target === '' ? '.' : target,
      };
    }
    case RRTYPE.TLSA:
      if (length < 3) throw new DnsFormatError('TLSA data too short');
      return { kind: 'TLSA', usage: buf[start]!, selector: buf[start + 1]!, matchingType: buf[start + 2]!, data: Buffer.from(buf.subarray(start + 3, end)) };
    case RRTYPE.SOA: {
      const [mname, afterM] = readName(buf, start);
      const [rname, afterR] = readName(buf, afterM);
      if (afterR + 20 !== end) throw new DnsFormatError('SOA data length mismatch');
      return { kind: 'SOA', mname, rname, serial: buf.readUInt32BE(afterR), minimum: buf.readUInt32BE(afterR + 16) };
    }
    default:
      return { kind: 'raw', data: Buffer.from(buf.subarray(start, end)) };
  }
}

/** RFC 5952 text form of a 16-octet IPv6 address. */
export function formatIpv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  // The longest run of two or more zero groups becomes "::" (the first, on a tie).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
