// Reads the server name (SNI, RFC 6066 §3) and the offered ALPN protocols (RFC 7301 §3.1) from the
// first bytes a TLS client sends: the ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2), possibly
// split over several TLS records (RFC 8446 §5.1). A listener looks at them before TLS starts to
// answer ACME's `acme-tls/1` validation with the challenge certificate (RFC 8737 §3), which Node's
// SNICallback cannot do: it is not told the offered protocols.
// Only parsing: bounds-checked, never throws, and anything that is not a well-formed ClientHello
// is 'invalid' (the listener then hands the bytes to TLS, which answers as it always does).

export interface ClientHello {
  /** The host_name of the server_name extension, lower-cased, trailing dot removed. */
  serverName: string | undefined;
  /** The protocols of the ALPN extension, in the client's order ([] without the extension). */
  alpn: string[];
}

export type ClientHelloParse =
  | { status: 'ok'; hello: ClientHello }
  /** More bytes are needed (never more than MAX_CLIENT_HELLO_BYTES in all). */
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string };

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
/** The largest record plaintext (RFC 8446 §5.1). */
const MAX_RECORD = 1 << 14;
/** A ClientHello longer than this is not waited for (real ones, post-quantum key shares included, stay far below). */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

/** Parses the ClientHello at the start of `data` (the bytes received so far). */
export function parseClientHello(data: Buffer): ClientHelloParse {
  // Gather the handshake bytes from consecutive handshake records.
  const fragments: Buffer[] = [];
  let have = 0;
  let pos = 0;
  let need: number | undefined;
  while (need === undefined || have < need) {
    if (data.length < pos + 5) return pos >= MAX_CLIENT_HELLO_BYTES ? invalid('ClientHello too long') : { status: 'incomplete' };
    if (data[pos] !== RECORD_HANDSHAKE) return invalid(pos === 0 ? 'not a TLS handshake record' : 'ClientHello interrupted by another record type');
    if (data[pos + 1] !== 3) return invalid('not a TLS record version');
    const len = data.readUInt16BE(pos + 3);
    if (len === 0 || len > MAX_RECORD) return invalid('bad record length');
    if (data.length < pos + 5 + len) return pos + 5 + len > MAX_CLIENT_HELLO_BYTES ? invalid('ClientHello too long') : { status: 'incomplete' };
    fragments.push(data.subarray(pos + 5, pos + 5 + len));
    have += len;
    pos += 5 + len;
    if (need === undefined && have >= 4) {
      const head = Buffer.concat(fragments);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return invalid('first handshake message is not a ClientHello');
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO_BYTES) return invalid('ClientHello too long');
    }
  }
  const msg = Buffer.concat(fragments).subarray(4, need);
  try {
    return { status: 'ok', hello: readBody(msg) };
  } catch (err) {
    if (err instanceof HelloError) return invalid(err.message);
    throw err;
  }
}

function invalid(reason: string): ClientHelloParse {
  return { status: 'invalid', reason };
}

class HelloError extends Error {}

/** A bounds-checked reader over one buffer. */
class Reader {
  constructor(private readonly buf: Buffer, public pos = 0, private readonly end = buf.length) {}
  get left(): number {
    return this.end - this.pos;
  }
  bytes(n: number): Buffer {
    if (n > this.left) throw new HelloError('truncated ClientHello');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  u8(): number {
    return this.bytes(1)[0]!;
  }
  u16(): number {
    return this.bytes(2).readUInt16BE(0);
  }
  /** A vector with a length prefix of `lenBytes` bytes, as its own reader. */
  vector(lenBytes: 1 | 2): Reader {
    const n = lenBytes === 1 ? this.u8() : this.u16();
    const start = this.pos;
    this.bytes(n);
    return new Reader(this.buf, start, start + n);
  }
}

function readBody(msg: Buffer): ClientHello {
  const r = new Reader(msg);
  const major = r.u8();
  r.u8(); // legacy_version minor
  if (major !== 3) throw new HelloError('not a TLS ClientHello version');
  r.bytes(32); // random
  const sessionId = r.vector(1);
  if (sessionId.left > 32) throw new HelloError('session id longer than 32 bytes');
  const suites = r.vector(2);
  if (suites.left === 0 || suites.left % 2 !== 0) throw new HelloError('bad cipher_suites');
  if (r.vector(1).left === 0) throw new HelloError('no compression method');
  const hello: ClientHello = { serverName: undefined, alpn: [] };
  if (r.left === 0) return hello; // no extensions at all (RFC 5246 §7.4.1.2 allows it)
  const exts = r.vector(2);
  if (r.left !== 0) throw new HelloError('data after the extensions');
  const seen = new Set<number>();
  while (exts.left > 0) {
    const type = exts.u16();
    const data = exts.vector(2);
    // RFC 8446 §4.2: no extension type appears twice.
    if (seen.has(type)) throw new HelloError(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) hello.serverName = readServerName(data);
    else if (type === EXT_ALPN) hello.alpn = readAlpn(data);
  }
  return hello;
}

function readServerName(data: Reader): string | undefined {
  // An empty extension is what a server sends back; from a client it carries a ServerNameList.
  if (data.left === 0) return undefined;
  const list = data.vector(2);
  if (data.left !== 0) throw new HelloError('data after the server_name list');
  let name: string | undefined;
  while (list.left > 0) {
    const type = list.u8();
    const value = list.vector(2);
    if (type !== 0) continue; // only host_name(0) is defined
    // RFC 6066 §3: at most one name of a type; ASCII, no trailing dot.
    if (name !== undefined) throw new HelloError('two host_name entries');
    const bytes = value.bytes(value.left);
    if (bytes.length === 0 || bytes.some((b) => b < 0x21 || b > 0x7e)) throw new HelloError('host_name is not printable ASCII');
    name = bytes.toString('latin1').toLowerCase().replace(/\.$/, '');
  }
  return name;
}

function readAlpn(data: Reader): string[] {
  const list = data.vector(2);
  if (data.left !== 0) throw new HelloError('data after the ALPN list');
  if (list.left === 0) throw new HelloError('empty ALPN list');
  const out: string[] = [];
  while (list.left > 0) {
    const p = list.vector(1);
    // RFC 7301 §3.1: empty protocol names are not allowed.
    if (p.left === 0) throw new HelloError('empty ALPN protocol name');
    out.push(p.bytes(p.left).toString('latin1'));
  }
  return out;
}
