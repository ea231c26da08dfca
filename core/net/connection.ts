// A client or component TCP connection: the socket (plain, upgraded by STARTTLS, or direct TLS),
// its address, and TLS facts such as channel-binding data. The XML stream on top of it belongs to
// the module that accepted the connection (mod_c2s, mod_component).
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { ReadShaper } from './shaper.ts';
import type { StreamTransport } from './transport.ts';

export type CloseHandler = (hadError: boolean) => void;

let nextId = 1;

function uncork(conn: Connection, socket: Socket): void {
  conn.corked = false;
  socket.uncork();
}

export class Connection implements StreamTransport {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  readonly created = Date.now();
  secure: boolean;
  private socket: Socket | tls.TLSSocket;
  private dataHandler: ((chunk: Buffer) => void) | undefined;
  private closeHandlers: CloseHandler[] = [];
  private closed = false;
  lastActivity = Date.now();
  /** Inbound rate shaping (limits `rate`): pauses the socket; resumes it unless its owner holds it. */
  private readonly shaper = new ReadShaper({
    pause: () => this.socket.pause(),
    resume: () => {
      if (!this.closed && !this.heldByOwner) this.socket.resume();
    },
  });

  constructor(socket: Socket, readonly service: string, readonly localPort: number) {
    this.id = `${service}${nextId++}`;
    this.socket = socket;
    this.ip = socket.remoteAddress ?? 'unknown';
    this.port = socket.remotePort ?? 0;
    this.secure = socket instanceof tls.TLSSocket;
    socket.setNoDelay(true);
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.lastActivity = Date.now();
      this.shaper.take(chunk.length);
      this.dataHandler?.(chunk);
    });
    socket.on('drain', () => {
      for (const h of this.drainHandlers) h();
    });
    socket.on('error', () => {
      /* reported through 'close' (hadError) */
    });
    socket.on('close', (hadError: boolean) => this.onSocketClose(socket, hadError));
  }

  private onSocketClose(socket: Socket, hadError: boolean): void {
    if (socket !== this.socket || this.closed) return;
    this.closed = true;
    this.shaper.stop();
    for (const h of this.closeHandlers) h(hadError);
    this.closeHandlers = [];
  }

  onData(handler: (chunk: Buffer) => void): void {
    this.dataHandler = handler;
  }

  onClose(handler: CloseHandler): void {
    this.closeHandlers.push(handler);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  /** Whether the socket's own buffer is full: what is written now waits in memory. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  private drainHandlers: (() => void)[] = [];

  /** Called whenever the socket's buffer has emptied after being full. */
  onDrain(handler: () => void): void {
    this.drainHandlers.push(handler);
  }

  /**
   * Shape inbound traffic: `rate` bytes per second sustained, `burst` bytes at once (0: unlimited).
   * Past the allowance reading pauses (TCP then slows the peer down) until the bucket refills.
   */
  setReadRate(rate: number, burst: number): void {
    this.shaper.set(rate, burst);
  }

  /** The inbound rate in force (bytes/s), 0 when unshaped. */
  get readRate(): number {
    return this.shaper.rate;
  }

  /** Whether reading is paused by the rate limit right now. */
  get shaped(): boolean {
    return this.shaper.shaped;
  }

  /** Times reading was paused by the rate limit (shown in `shell session list`). */
  get throttled(): number {
    return this.shaper.throttled;
  }

  /** Write; `flushed` is called once the data has left for the kernel (not when the socket is destroyed first). */
  write(data: string, flushed?: () => void): boolean {
    const socket = this.socket;
    if (this.closed || socket.destroyed) return false;
    this.lastActivity = Date.now();
    // Everything written to this socket in one tick leaves in one syscall (and TLS record).
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(uncork, this, socket);
    }
    if (flushed === undefined) return socket.write(data);
    return socket.write(data, (err) => {
      if (!err) flushed();
    });
  }

  /** @internal */
  corked = false;

  /**
   * Flush and close; the socket is destroyed if the peer does not close within `timeoutMs`.
   * Whatever the peer still sends is dropped unread.
   */
  close(timeoutMs = 2000): void {
    this.dataHandler = undefined;
    if (this.closed || this.socket.destroyed) return;
    const s = this.socket;
    s.end();
    const t = setTimeout(() => s.destroy(), timeoutMs);
    t.unref();
  }

  destroy(): void {
    this.dataHandler = undefined;
    this.shaper.stop();
    this.socket.destroy();
  }

  /** Paused by its owner (e.g. during an asynchronous SASL step), apart from rate shaping. */
  private heldByOwner = false;

  pause(): void {
    this.heldByOwner = true;
    this.socket.pause();
  }

  /** While paused: drop the bytes received and not yet read (see StreamTransport.discardReceived). */
  discardReceived(): number {
    let bytes = 0;
    if (!this.heldByOwner) return bytes;
    for (let chunk = this.socket.read() as Buffer | null; chunk !== null; chunk = this.socket.read() as Buffer | null) bytes += chunk.length;
    return bytes;
  }

  /** Resume reading, unless the rate limit still holds it (it then resumes when the bucket refills). */
  resume(): void {
    this.heldByOwner = false;
    if (!this.shaper.shaped) this.socket.resume();
  }

  /** Upgrade to TLS in place (STARTTLS, RFC 6120 §5). Resolves once the handshake is done. */
  starttls(context: tls.SecureContext, sniContext?: (servername: string) => tls.SecureContext | undefined, options: { requestCert?: boolean } = {}): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: context,
      // s2s asks for the peer's certificate (judged by the module, never refused by OpenSSL here).
      requestCert: options.requestCert ?? false,
      rejectUnauthorized: false,
      SNICallback: sniContext
        ? (name, cb) => cb(null, sniContext(name) ?? context)
        : undefined,
    });
    this.socket = secure;
    this.attach(secure);
    raw.on('close', (hadError: boolean) => this.onSocketClose(secure, hadError));
    return new Promise((resolve, reject) => {
      secure.once('secure', () => {
        this.secure = true;
        resolve();
      });
      secure.once('error', reject);
    });
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  get tlsInfo(): { protocol: string | null; cipher: string } | undefined {
    const s = this.tlsSocket;
    if (!s) return undefined;
    return { protocol: s.getProtocol(), cipher: s.getCipher()?.name ?? 'unknown' };
  }

  /** Channel-binding data (RFC 5929, RFC 9266) for SCRAM-*-PLUS, or undefined when unavailable. */
  channelBinding(type: string): Buffer | undefined {
    return tlsChannelBinding(this.tlsSocket, type);
  }

  /** Channel-binding types this connection provides as their RFCs define them, best first (XEP-0440). */
  channelBindingTypes(): string[] {
    return tlsChannelBindingTypes(this.tlsSocket);
  }
}

/** Channel-binding data (RFC 5929, RFC 9266) of a TLS connection we terminate, or undefined. */
export function tlsChannelBinding(s: tls.TLSSocket | undefined, type: string): Buffer | undefined {
  if (!s) return undefined;
  switch (type) {
    case 'tls-exporter': {
      // RFC 9266: defined for TLS 1.3 (TLS 1.2 would need extended master secret).
      if (s.getProtocol() !== 'TLSv1.3') return undefined;
      return s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
    }
    case 'tls-server-end-point': {
      const cert = s.getCertificate();
      if (!cert || !('raw' in cert) || !cert.raw) return undefined;
      return Buffer.from(createHash(endPointHash(cert.raw)).update(cert.raw).digest());
    }
    case 'tls-unique': {
      // RFC 5929 §3.1: the first Finished message of the handshake: the client's in a full
      // handshake, ours in an abbreviated (resumed) one. RFC 5929 does not define it for TLS 1.3
      // (RFC 8446 §C.5); there this is the value OpenSSL-based clients compute the same way,
      // accepted only by the `compatible` channel-binding policy and never advertised.
      return s.isSessionReused() ? s.getFinished() : s.getPeerFinished();
    }
    default:
      return undefined;
  }
}

/** Channel-binding types a TLS connection provides as their RFCs define them, best first (XEP-0440). */
export function tlsChannelBindingTypes(s: tls.TLSSocket | undefined): string[] {
  if (!s) return [];
  const types = s.getProtocol() === 'TLSv1.3' ? ['tls-exporter'] : ['tls-unique'];
  types.push('tls-server-end-point');
  return types;
}

/** RFC 5929 §4.1: the certificate's signature hash, with MD5/SHA-1 upgraded to SHA-256. */
export function endPointHash(der: Buffer): string {
  const oid = signatureAlgorithmOid(der);
  switch (oid) {
    case '2a864886f70d01010c': // sha384WithRSAEncryption
    case '2a8648ce3d040303': // ecdsa-with-SHA384
      return 'sha384';
    case '2a864886f70d01010d': // sha512WithRSAEncryption
    case '2a8648ce3d040304': // ecdsa-with-SHA512
      return 'sha512';
    default:
      return 'sha256';
  }
}

/** Hex of the outer signatureAlgorithm OID of a DER certificate (or '' if unparsable). */
function signatureAlgorithmOid(der: Buffer): string {
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, … }, … }
  const readLen = (pos: number): [len: number, next: number] => {
    const first = der[pos]!;
    if (first < 0x80) return [first, pos + 1];
    const n = first & 0x7f;
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[pos + 1 + i]!;
    return [len, pos + 1 + n];
  };
  try {
    let pos = readLen(1)[1]; // inside the outer SEQUENCE
    const [tbsLen, tbsStart] = readLen(pos + 1);
    pos = tbsStart + tbsLen; // signatureAlgorithm SEQUENCE
    pos = readLen(pos + 1)[1];
    if (der[pos] !== 0x06) return '';
    const [oidLen, oidStart] = readLen(pos + 1);
    return der.subarray(oidStart, oidStart + oidLen).toString('hex');
  } catch {
    return '';
  }
}
