// A small, strict DER reader (ITU-T X.690) for the parts of X.509 certificates Cadence reads
// itself: subjectAltName otherNames and the subject's common names (core/util/cert-names.ts).
// Every read is bounds-checked; malformed input throws DerError, never reads past its buffer.

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** One TLV: the identifier octet, where its contents start and end in the buffer. */
export interface Tlv {
  /** The whole identifier octet (class, constructed bit, tag number). */
  tag: number;
  /** Tag class bits (0x00 universal, 0x80 context-specific, …). */
  cls: number;
  constructed: boolean;
  /** Tag number (low-tag-number form only; X.509 needs no other). */
  number: number;
  start: number;
  end: number;
  /** Offset just past this TLV. */
  next: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
} as const;

/** Reads the TLV at `pos`, which must end by `limit`. */
export function readTlv(buf: Buffer, pos: number, limit = buf.length): Tlv {
  if (limit > buf.length) throw new DerError('limit past the buffer');
  if (pos + 2 > limit) throw new DerError('truncated TLV header');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used in X.509');
  let p = pos + 1;
  const first = buf[p++]!;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const n = first & 0x7f;
    // 0x80 is the indefinite form (BER only); four length octets are more than any certificate.
    if (n === 0 || n > 4) throw new DerError('unsupported length form');
    if (p + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
    if (len < 0x80 || (n > 1 && buf[p - n] === 0)) throw new DerError('non-minimal length');
  }
  const end = p + len;
  if (end > limit) throw new DerError('contents past the enclosing element');
  return { tag, cls: tag & 0xc0, constructed: (tag & 0x20) !== 0, number: tag & 0x1f, start: p, end, next: end };
}

/** The TLVs directly inside a constructed TLV, in order. */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  if (!parent.constructed) throw new DerError('not a constructed element');
  const out: Tlv[] = [];
  let p = parent.start;
  while (p < parent.end) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.next;
  }
  return out;
}

/** Reads the TLV at `pos` and checks its identifier octet. */
export function expect(buf: Buffer, pos: number, tag: number, limit = buf.length): Tlv {
  const t = readTlv(buf, pos, limit);
  if (t.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${t.tag.toString(16)}`);
  return t;
}

/** An OBJECT IDENTIFIER's contents as dotted decimal. */
export function decodeOid(buf: Buffer, t: Tlv): string {
  if (t.tag !== TAG.OID || t.end === t.start) throw new DerError('not an OID');
  const arcs: number[] = [];
  let value = 0;
  let inArc = false;
  for (let p = t.start; p < t.end; p++) {
    const b = buf[p]!;
    if (!inArc && b === 0x80) throw new DerError('non-minimal OID arc');
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large');
    inArc = (b & 0x80) !== 0;
    if (!inArc) {
      arcs.push(value);
      value = 0;
    }
  }
  if (inArc) throw new DerError('truncated OID');
  const first = arcs.shift()!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/**
 * The text of a character-string TLV (UTF8String, IA5String, PrintableString, BMPString,
 * UniversalString, and T61String read as Latin-1), or undefined for any other type.
 * IA5String and PrintableString must be 7-bit.
 */
export function decodeString(buf: Buffer, t: Tlv): string | undefined {
  const bytes = buf.subarray(t.start, t.end);
  switch (t.tag) {
    case TAG.UTF8_STRING: {
      const s = bytes.toString('utf8');
      // A replacement character that was not in the input means invalid UTF-8.
      return Buffer.from(s, 'utf8').equals(bytes) ? s : undefined;
    }
    case TAG.IA5_STRING:
    case TAG.PRINTABLE_STRING:
      return bytes.every((b) => b < 0x80) ? bytes.toString('latin1') : undefined;
    case TAG.T61_STRING:
      return bytes.toString('latin1');
    case TAG.BMP_STRING: {
      if (bytes.length % 2) return undefined;
      const swapped = Buffer.from(bytes);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case TAG.UNIVERSAL_STRING: {
      if (bytes.length % 4) return undefined;
      let s = '';
      for (let i = 0; i < bytes.length; i += 4) {
        const cp = bytes.readUInt32BE(i);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    default:
      return undefined;
  }
}
