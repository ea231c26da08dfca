// A minimal XMPP client for load generation: raw net/tls sockets, string building, the light
// framer of framer.ts, STARTTLS through tls.connect({ socket }), SASL PLAIN and SCRAM-SHA-1
// (RFC 5802) on node:crypto, resource binding, initial presence. No DOM, no parser, no library:
// what it does per stanza is a few indexOf calls, so that the server is what is being measured.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import tls from 'node:tls';
import WebSocket from 'ws';
import { Framer, attr, childText } from './framer.ts';

export type Mechanism = 'PLAIN' | 'SCRAM-SHA-1';

export interface Target {
  host: string;
  port: number;
  domain: string;
  /** Connect over XMPP over WebSocket (RFC 7395) at this ws:// URL instead of TCP. */
  wsUrl?: string;
}

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
/** RFC 7395 §3.3.3: every frame carries its namespace; the TCP-style stanzas here have none. */
const withClientNs = (xml: string): string => xml.replace(/^<(message|presence|iq)(?=[\s/>])/, "<$1 xmlns='jabber:client'");

export interface LoginOptions {
  username: string;
  password: string;
  /** STARTTLS before authenticating. */
  starttls: boolean;
  mechanism: Mechanism;
  resource?: string;
  /** Send initial presence (and wait for a ping round-trip that follows it). Default true. */
  presence?: boolean;
  /** Whole-login deadline. */
  timeoutMs?: number;
}

const NS_STREAM_HEADER = (domain: string) =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}' version='1.0'>`;

type Pred = (xml: string) => boolean;

interface Waiter {
  pred: Pred;
  resolve: (xml: string) => void;
  reject: (err: Error) => void;
}

// SCRAM keys per (password, salt, iterations): a real client caches the salted password too, and
// without it the load generator would spend its time in PBKDF2 instead of the server.
const keyCache = new Map<string, Promise<{ clientKey: Buffer; storedKey: Buffer; serverKey: Buffer }>>();

function scramKeys(password: string, salt: Buffer, iterations: number) {
  const k = `${password}\0${salt.toString('base64')}\0${iterations}`;
  let p = keyCache.get(k);
  if (!p) {
    p = new Promise((resolve, reject) => {
      pbkdf2(password, salt, iterations, 20, 'sha1', (err, salted) => {
        if (err) return reject(err);
        const clientKey = createHmac('sha1', salted).update('Client Key').digest();
        const storedKey = createHash('sha1').update(clientKey).digest();
        const serverKey = createHmac('sha1', salted).update('Server Key').digest();
        resolve({ clientKey, storedKey, serverKey });
      });
    });
    keyCache.set(k, p);
    if (keyCache.size > 50_000) keyCache.delete(keyCache.keys().next().value!);
  }
  return p;
}

let idCounter = 0;

export class XmppClient {
  socket: net.Socket | tls.TLSSocket | undefined;
  /** The WebSocket, when the target has a wsUrl. */
  ws: WebSocket | undefined;
  jid = '';
  /** Called for every top-level element not claimed by a waiter. */
  onStanza: ((xml: string) => void) | undefined;
  /** Called once when the connection closes. */
  onClose: ((err?: Error) => void) | undefined;
  closed = false;
  private readonly framer: Framer;
  private decoder = new StringDecoder('utf8');
  private waiter: Waiter | undefined;
  private out: string[] = [];
  private flushScheduled = false;
  private error: Error | undefined;

  constructor(readonly target: Target) {
    this.framer = new Framer({
      open: () => {},
      element: (xml) => this.dispatch(xml),
      close: () => this.fail(new Error('stream closed by server')),
    });
  }

  private dispatch(xml: string): void {
    const w = this.waiter;
    if (w && w.pred(xml)) {
      this.waiter = undefined;
      w.resolve(xml);
      return;
    }
    if (xml.startsWith('<stream:error')) {
      this.fail(new Error(`stream error: ${xml.slice(0, 300)}`));
      return;
    }
    if (w && (xml.startsWith('<failure') || (xml.startsWith('<iq') && attr(xml, 'type') === 'error'))) {
      this.waiter = undefined;
      w.reject(new Error(`unexpected: ${xml.slice(0, 300)}`));
      return;
    }
    this.onStanza?.(xml);
  }

  private fail(err: Error): void {
    this.error ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
    this.socket?.destroy();
    this.ws?.terminate();
  }

  private attach(s: net.Socket | tls.TLSSocket): void {
    this.socket = s;
    this.decoder = new StringDecoder('utf8');
    s.on('data', (chunk: Buffer) => this.framer.push(this.decoder.write(chunk)));
  }

  connect(): Promise<void> {
    if (this.target.wsUrl) return this.connectWs(this.target.wsUrl);
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
      s.once('connect', () => {
        s.removeListener('error', reject);
        resolve();
      });
      s.once('error', reject);
      s.on('error', (err) => this.fail(err));
      s.once('close', () => {
        if (s !== this.socket && this.socket && !this.socket.destroyed) return;
        this.closed = true;
        const w = this.waiter;
        this.waiter = undefined;
        w?.reject(this.error ?? new Error('connection closed'));
        this.onClose?.(this.error);
      });
      this.attach(s);
    });
  }

  /** RFC 7395: one element per message, so each message is dispatched as it is. */
  private connectWs(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'xmpp', { perMessageDeflate: false });
      this.ws = ws;
      ws.once('open', () => {
        ws.removeListener('error', reject);
        resolve();
      });
      ws.once('error', reject);
      ws.on('error', (err) => this.fail(err));
      ws.on('message', (data: Buffer) => {
        const xml = data.toString('utf8');
        if (xml.startsWith('<close')) return this.fail(new Error('stream closed by server'));
        this.dispatch(xml);
      });
      ws.once('close', () => {
        this.closed = true;
        const w = this.waiter;
        this.waiter = undefined;
        w?.reject(this.error ?? new Error('connection closed'));
        this.onClose?.(this.error);
      });
    });
  }

  /** The next element matching `pred` (elements before it go to onStanza). */
  expect(pred: Pred): Promise<string> {
    if (this.closed) return Promise.reject(this.error ?? new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.waiter = { pred, resolve, reject };
    });
  }

  send(data: string): void {
    if (this.ws) this.ws.send(withClientNs(data));
    else this.socket!.write(data);
  }

  /** Queue data and write it, with everything else queued in this tick, in one write. */
  queue(data: string): void {
    this.out.push(data);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.ws) {
      if (this.ws.readyState === WebSocket.OPEN) for (const x of this.out) this.ws.send(withClientNs(x));
      this.out = [];
      return;
    }
    const s = this.socket;
    if (!s || s.destroyed || !this.out.length) {
      this.out = [];
      return;
    }
    s.write(this.out.length === 1 ? this.out[0]! : this.out.join(''));
    this.out = [];
  };

  private async openStream(): Promise<string> {
    this.framer.reset();
    const features = this.expect((x) => x.startsWith('<stream:features'));
    if (this.ws) this.ws.send(`<open xmlns='${FRAMING}' to='${this.target.domain}' version='1.0'/>`);
    else this.send(NS_STREAM_HEADER(this.target.domain));
    return features;
  }

  private async starttls(): Promise<void> {
    const proceed = this.expect((x) => x.startsWith('<proceed'));
    this.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await proceed;
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    const secure = tls.connect({ socket: raw, servername: this.target.domain, rejectUnauthorized: false });
    secure.on('error', (err) => this.fail(err));
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
      raw.once('close', () => reject(new Error('closed during TLS handshake')));
    });
    this.attach(secure);
  }

  private async authPlain(username: string, password: string): Promise<void> {
    const success = this.expect((x) => x.startsWith('<success'));
    const payload = Buffer.from(`\0${username}\0${password}`, 'utf8').toString('base64');
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${payload}</auth>`);
    await success;
  }

  private async authScramSha1(username: string, password: string): Promise<void> {
    const cnonce = randomBytes(18).toString('base64');
    const user = username.replace(/=/g, '=3D').replace(/,/g, '=2C');
    const clientFirstBare = `n=${user},r=${cnonce}`;
    const challenge = this.expect((x) => x.startsWith('<challenge'));
    this.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${Buffer.from(`n,,${clientFirstBare}`).toString('base64')}</auth>`,
    );
    const ch = await challenge;
    const serverFirst = Buffer.from(textOf(ch), 'base64').toString('utf8');
    const parts = new Map(serverFirst.split(',').map((p) => [p[0], p.slice(2)] as const));
    const nonce = parts.get('r');
    const salt = parts.get('s');
    const iterations = Number(parts.get('i'));
    if (!nonce?.startsWith(cnonce) || !salt || !(iterations > 0)) throw new Error(`bad SCRAM challenge: ${serverFirst}`);
    const keys = await scramKeys(password, Buffer.from(salt, 'base64'), iterations);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSig = createHmac('sha1', keys.storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(20);
    for (let i = 0; i < 20; i++) proof[i] = keys.clientKey[i]! ^ clientSig[i]!;
    const success = this.expect((x) => x.startsWith('<success'));
    this.send(
      `<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${Buffer.from(`${withoutProof},p=${proof.toString('base64')}`).toString('base64')}</response>`,
    );
    const ok = await success;
    const final = Buffer.from(textOf(ok), 'base64').toString('utf8');
    const v = Buffer.from(final.startsWith('v=') ? final.slice(2) : '', 'base64');
    const expected = createHmac('sha1', keys.serverKey).update(authMessage).digest();
    if (v.length !== expected.length || !timingSafeEqual(v, expected)) throw new Error('SCRAM: bad server signature');
  }

  /** Full c2s login: stream, [STARTTLS], SASL, stream restart, bind, [initial presence]. */
  async login(o: LoginOptions): Promise<void> {
    const timer = setTimeout(() => this.fail(new Error(`login of ${o.username} timed out`)), o.timeoutMs ?? 30_000);
    try {
      await this.connect();
      await this.openStream();
      if (o.starttls) {
        await this.starttls();
        await this.openStream();
      }
      if (o.mechanism === 'PLAIN') await this.authPlain(o.username, o.password);
      else await this.authScramSha1(o.username, o.password);
      await this.openStream();
      const id = `b${++idCounter}`;
      const bound = this.expect((x) => x.startsWith('<iq') && attr(x, 'id') === id);
      const res = o.resource ?? `r${randomBytes(4).toString('hex')}`;
      this.send(`<iq type='set' id='${id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${res}</resource></bind></iq>`);
      const r = await bound;
      this.jid = childText(r, 'jid') ?? '';
      if (o.presence !== false) await this.presenceAndPing();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Initial presence followed by a ping: once the ping is answered, the presence was processed. */
  async presenceAndPing(presence = '<presence/>'): Promise<void> {
    const id = `p${++idCounter}`;
    const pong = this.expect((x) => x.startsWith('<iq') && attr(x, 'id') === id);
    if (presence) this.send(presence);
    this.send(`<iq type='get' id='${id}' to='${this.target.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await pong;
  }

  /** A ping round-trip (e.g. to know everything sent before it was processed). */
  async ping(): Promise<void> {
    return this.presenceAndPing('');
  }

  /** Close the stream; the socket is destroyed when the server closes, or after `graceMs`. */
  close(graceMs = 2000): void {
    // What was queued this tick (an SM <a/> before closing) goes out before the close, not after it.
    this.flush();
    const ws = this.ws;
    if (ws) {
      this.waiter = undefined;
      if (ws.readyState === WebSocket.OPEN) ws.send(`<close xmlns='${FRAMING}'/>`);
      setTimeout(() => ws.terminate(), graceMs).unref();
      return;
    }
    const s = this.socket;
    if (!s || s.destroyed) return;
    this.waiter = undefined;
    s.end('</stream:stream>');
    setTimeout(() => s.destroy(), graceMs).unref();
  }

  destroy(): void {
    this.socket?.destroy();
    this.ws?.terminate();
  }
}

function textOf(xml: string): string {
  const gt = xml.indexOf('>');
  const lt = xml.lastIndexOf('</');
  return gt >= 0 && lt > gt ? xml.slice(gt + 1, lt).trim() : '';
}
