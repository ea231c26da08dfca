// Test clients: `TestClient` wraps @xmpp/client (a real client library with its default
// settings: STARTTLS, SASL2 or SASL1 with SCRAM-SHA-1, Bind2 or the bind iq, FAST) with a stanza
// queue; `RawClient` speaks raw XML over a socket for protocol-level tests.
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { client as xmppClient, xml, type Client } from '@xmpp/client';
import { Element } from '@xmpp/xml';
import { endPointHash } from '../../core/net/connection.ts';
import { XmppStreamParser } from '../../core/util/stream-parser.ts';
import { htInitiator, htVerify, saltedPassword, ScramClient, scramHash, type Hash } from './sasl.ts';
import type { TestServer } from './server.ts';
import { startXmppJs } from './xmppjs-start.ts';

export { xml, Element };

// The test server's certificate is self-signed.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
process.removeAllListeners('warning');

export type Predicate = (el: Element) => boolean;

/** Queue of received elements with expect()/expectNothing(). */
class Inbox {
  private queue: Element[] = [];
  private waiters: { pred: Predicate; resolve: (el: Element) => void }[] = [];

  push(el: Element): void {
    const i = this.waiters.findIndex((w) => w.pred(el));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w!.resolve(el);
      return;
    }
    this.queue.push(el);
  }

  expect(pred: Predicate, timeoutMs: number, what: string): Promise<Element> {
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (el: Element) => {
          clearTimeout(timer);
          resolve(el);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`${what}: expected stanza not received within ${timeoutMs} ms; queue: ${this.queue.map(String).join('\n') || '(empty)'}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  async expectNothing(pred: Predicate, ms: number, what: string): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const hit = this.queue.find(pred);
    if (hit) throw new Error(`${what}: unexpected stanza ${hit.toString()}`);
  }

  drain(): Element[] {
    return this.queue.splice(0);
  }
}

export class TestClient {
  readonly inbox = new Inbox();
  jid = '';

  constructor(readonly xmpp: Client, readonly label: string) {
    xmpp.on('stanza', (el: Element) => this.inbox.push(el));
    xmpp.on('error', () => undefined);
  }

  get bare(): string {
    return this.jid.split('/')[0]!;
  }

  send(el: Element): Promise<void> {
    return this.xmpp.send(el);
  }

  /** Send an iq and wait for its result (rejects with the StanzaError on type=error). */
  iq(el: Element, timeoutMs = 5000): Promise<Element> {
    return this.xmpp.iqCaller.request(el, timeoutMs);
  }

  /** Send an iq and return the reply whatever its type. */
  async iqRaw(el: Element, timeoutMs = 5000): Promise<Element> {
    const id = (el.attrs.id as string | undefined) ?? `t${Math.random().toString(36).slice(2)}`;
    el.attrs.id = id;
    const reply = this.expect((s) => s.name === 'iq' && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'), timeoutMs);
    await this.send(el);
    return reply;
  }

  expect(pred: Predicate, timeoutMs = 5000): Promise<Element> {
    return this.inbox.expect(pred, timeoutMs, this.label);
  }

  expectNothing(pred: Predicate = () => true, ms = 500): Promise<void> {
    return this.inbox.expectNothing(pred, ms, this.label);
  }

  async stop(): Promise<void> {
    // A stream the server already closed (conflict, shutdown) has nothing left to stop.
    if (!(this.xmpp as unknown as { socket: unknown }).socket) return;
    await this.xmpp.stop().catch(() => undefined);
  }
}

export interface LoginOptions {
  /** The resource asked for (with Bind2, the tag the server's resource starts with). */
  resource?: string;
  /** Send initial presence after login. */
  presence?: boolean;
}

/**
 * Log in with @xmpp/client (default settings) over STARTTLS. Against Cadence's defaults that is
 * SASL2 with SCRAM-SHA-1 and Bind2, so the full JID is the server's: use `client.jid`.
 */
export async function login(server: TestServer, username: string, password: string, opts: LoginOptions = {}): Promise<TestClient> {
  const xmpp = xmppClient({
    service: `xmpp://127.0.0.1:${server.c2sPort}`,
    domain: server.host,
    username,
    password,
    resource: opts.resource,
  });
  // No reconnection in tests: a dropped stream must show.
  xmpp.reconnect.stop();
  const c = new TestClient(xmpp, `${username}/${opts.resource ?? '?'}`);
  const address = await startXmppJs(xmpp);
  c.jid = address.toString();
  if (opts.presence) await c.send(xml('presence'));
  return c;
}

/** A raw XML client: plain TCP (or direct TLS), you write the bytes, it parses what comes back. */
export class RawClient {
  readonly inbox = new Inbox();
  socket!: net.Socket;
  private parser = new XmppStreamParser({ maxStanzaSize: 1 << 24, maxDepth: 100 });
  streamAttrs: Record<string, string> | undefined;
  closed = false;
  received = '';
  private closedPromise!: Promise<void>;
  private headerWaiters: ((attrs: Record<string, string>) => void)[] = [];

  static async connect(port: number, opts: RawConnectOptions = {}): Promise<RawClient> {
    const c = new RawClient();
    c.tlsOptions = opts.tls ?? {};
    await c.open(port, opts.directTls ?? false, opts.localAddress);
    return c;
  }

  /** Extra options of this client's TLS handshakes (e.g. maxVersion to test TLS 1.2). */
  private tlsOptions: tls.ConnectionOptions = {};

  private async open(port: number, directTls: boolean, localAddress: string | undefined): Promise<void> {
    const socket = directTls
      ? tls.connect({ socket: net.connect({ port, host: '127.0.0.1', localAddress }), servername: 'localhost', rejectUnauthorized: false, ...this.tlsOptions })
      : net.connect({ port, host: '127.0.0.1', localAddress });
    this.attach(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once(directTls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    this.parser.on('streamStart', (attrs) => {
      this.streamAttrs = attrs;
      for (const w of this.headerWaiters.splice(0)) w(attrs);
    });
    this.parser.on('stanza', (el) => this.inbox.push(el));
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        resolve();
      });
    });
    socket.on('data', (d: Buffer) => {
      this.received += d.toString();
      this.parser.write(d);
    });
    socket.on('error', () => undefined);
  }

  write(data: string): void {
    this.socket.write(data);
  }

  openStream(to = 'localhost'): void {
    this.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`);
  }

  /** A fresh parser for the server's next stream header, without sending one (e.g. an s2s restart). */
  resetParser(): void {
    this.parser.reset();
  }

  /** After SASL success: a fresh parser and a new stream header. */
  restartStream(to = 'localhost'): void {
    this.parser.reset();
    this.openStream(to);
  }

  /** STARTTLS on this socket (expects the features first), then a new stream. */
  async starttls(to = 'localhost'): Promise<void> {
    await this.expect((el) => el.name === 'stream:features');
    this.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
    await this.expect((el) => el.name === 'proceed');
    await this.upgradeTls(to);
    this.openStream(to);
  }

  /**
   * The TLS handshake on this socket (after <proceed/>), with a fresh parser for what the server
   * sends inside TLS (`received` restarts too); no stream header is sent.
   */
  async upgradeTls(servername = 'localhost'): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tls.connect({ socket: raw, servername, rejectUnauthorized: false, ...this.tlsOptions });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.parser = new XmppStreamParser({ maxStanzaSize: 1 << 24, maxDepth: 100 });
    this.streamAttrs = undefined;
    this.received = '';
    this.attach(secure);
  }

  /** SASL PLAIN over the (already secured) stream, then restart and bind. */
  async authenticate(user: string, password: string, resource = 'raw', to = 'localhost', featuresSeen = false): Promise<string> {
    if (!featuresSeen) await this.expect((el) => el.name === 'stream:features');
    const payload = Buffer.from(`\u0000${user}\u0000${password}`).toString('base64');
    this.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${payload}</auth>`);
    const r = await this.expect((el) => el.name === 'success' || el.name === 'failure');
    if (r.name !== 'success') throw new Error(`auth failed: ${r.toString()}`);
    this.restartStream(to);
    await this.expect((el) => el.name === 'stream:features');
    this.write(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const b = await this.expect((el) => el.name === 'iq' && el.attrs.id === 'bind1');
    return b.getChild('bind')?.getChildText('jid') ?? '';
  }

  /** The TLS socket once the stream is encrypted. */
  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  /**
   * Channel-binding data as a client computes it: tls-exporter (RFC 9266), tls-server-end-point
   * (RFC 5929 §4), tls-unique (RFC 5929 §3.1: the first Finished message — the client's own in a
   * full handshake — as OpenSSL-based clients compute it on TLS 1.3 too).
   */
  channelBinding(type: string): Buffer {
    const s = this.tlsSocket;
    if (!s) throw new Error('no TLS');
    switch (type) {
      case 'tls-exporter':
        return s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
      case 'tls-server-end-point': {
        const raw = s.getPeerCertificate().raw;
        return createHash(endPointHash(raw)).update(raw).digest();
      }
      case 'tls-unique':
        return (s.isSessionReused() ? s.getPeerFinished() : s.getFinished())!;
      default:
        throw new Error(`unknown channel binding ${type}`);
    }
  }

  /**
   * One SCRAM exchange (RFC 5802) on an encrypted stream whose features were received. `gs2` is
   * the channel-binding flag ('n', 'y', 'p=<type>'); `cbData` replaces the binding data sent.
   * Resolves with the outcome, the server-first-message, and the failure condition if any; on
   * success the server signature has been checked.
   */
  async scram(opts: { mechanism: string; user: string; password: string; gs2: string; cbData?: Buffer }): Promise<ScramOutcome> {
    const hash = scramHash(opts.mechanism);
    if (!hash) throw new Error(`not a SCRAM mechanism: ${opts.mechanism}`);
    const cb = opts.cbData ?? (opts.gs2.startsWith('p=') ? this.channelBinding(opts.gs2.slice(2)) : Buffer.alloc(0));
    const scram = new ScramClient(hash, opts.user, opts.password, opts.gs2, cb);
    this.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${opts.mechanism}'>${scram.first().toString('base64')}</auth>`);
    const first = await this.expect((el) => el.name === 'challenge' || el.name === 'failure');
    if (first.name === 'failure') return { status: 'failure', condition: saslCondition(first) };
    const serverFirst = Buffer.from(first.text(), 'base64').toString();
    this.write(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${scram.final(serverFirst).toString('base64')}</response>`);
    const last = await this.expect((el) => el.name === 'success' || el.name === 'failure');
    if (last.name === 'failure') return { status: 'failure', condition: saslCondition(last), serverFirst };
    if (!scram.verify(Buffer.from(last.text(), 'base64'))) throw new Error('server signature does not verify');
    return { status: 'success', serverFirst };
  }

  /**
   * SASL2 (XEP-0388) on a secured stream whose features were read: <authenticate/>, then
   * challenges, <continue/> tasks (XEP-0480 SCRAM upgrades, computed from the password) until
   * <success/> or <failure/>. SCRAM, PLAIN and HT-SHA-256-* (with `token`).
   */
  async sasl2(opts: Sasl2Options): Promise<Sasl2Result> {
    const mechanism = opts.mechanism ?? (opts.token ? 'HT-SHA-256-NONE' : 'SCRAM-SHA-256');
    let scram: ScramClient | undefined;
    let initial: Buffer | undefined;
    let htCb: Buffer | undefined;
    const hash = scramHash(mechanism);
    if (hash) {
      const binding = mechanism.endsWith('-PLUS') ? opts.channelBinding ?? 'tls-exporter' : undefined;
      scram = new ScramClient(hash, opts.user, opts.password ?? '', binding ? `p=${binding}` : 'n', binding ? this.channelBinding(binding) : undefined);
      initial = scram.first();
    } else if (mechanism === 'PLAIN') {
      initial = Buffer.from(`\u0000${opts.user}\u0000${opts.password ?? ''}`);
    } else if (mechanism.startsWith('HT-SHA-256-')) {
      const type = { EXPR: 'tls-exporter', UNIQ: 'tls-unique', ENDP: 'tls-server-end-point', NONE: undefined }[mechanism.slice(11)];
      htCb = type ? this.channelBinding(type) : Buffer.alloc(0);
      initial = htInitiator(opts.user, opts.token ?? '', htCb);
    }
    const auth = new Element('authenticate', { xmlns: NS_SASL2, mechanism });
    const sendInitial = opts.initialResponse !== false && initial !== undefined;
    if (sendInitial) auth.c('initial-response').t(initial!.toString('base64'));
    if (opts.userAgent) {
      const ua = auth.c('user-agent', opts.userAgent.id ? { id: opts.userAgent.id } : {});
      if (opts.userAgent.software) ua.c('software').t(opts.userAgent.software);
      if (opts.userAgent.device) ua.c('device').t(opts.userAgent.device);
    }
    if (opts.token !== undefined && opts.fast !== false) auth.c('fast', { xmlns: 'urn:xmpp:fast:0', ...(opts.fast ?? {}) });
    for (const e of opts.extra ?? []) auth.cnode(e);
    this.write(auth.toString());
    const continues: Element[] = [];
    let initialSent = sendInitial;
    let task: string | undefined;
    for (;;) {
      const el = await this.expect((e) => e.attrs.xmlns === NS_SASL2 || e.name === 'stream:error');
      if (el.name === 'stream:error') throw new Error(`stream error during SASL2: ${el.toString()}`);
      if (el.name === 'success' || el.name === 'failure') {
        let serverVerified = false;
        const data = el.getChildText('additional-data') ?? continues[0]?.getChildText('additional-data');
        if (el.name === 'success' && data) {
          const bytes = Buffer.from(data, 'base64');
          serverVerified = scram ? scram.verify(bytes) : htVerify(opts.token ?? '', bytes, htCb);
        }
        return { outcome: el, continues, serverVerified };
      }
      if (el.name === 'challenge') {
        const bytes = Buffer.from(el.text(), 'base64');
        const reply = !initialSent ? initial! : scram ? scram.final(bytes) : Buffer.alloc(0);
        initialSent = true;
        this.write(`<response xmlns='${NS_SASL2}'>${reply.toString('base64')}</response>`);
      } else if (el.name === 'continue') {
        continues.push(el);
        task = el.getChild('tasks')?.getChildText('task') ?? undefined;
        this.write(`<next xmlns='${NS_SASL2}' task='${task}'/>`);
      } else if (el.name === 'task-data') {
        const salt = el.getChild('salt', NS_SCRAM_UPGRADE)!;
        const upgrade = task!.slice('UPGR-SCRAM-'.length) as Hash;
        const salted = saltedPassword(upgrade, opts.password ?? '', Buffer.from(salt.text().trim(), 'base64'), Number(salt.attrs.iterations));
        this.write(`<task-data xmlns='${NS_SASL2}'><hash xmlns='${NS_SCRAM_UPGRADE}'>${salted.toString('base64')}</hash></task-data>`);
      }
    }
  }

  expect(pred: Predicate, timeoutMs = 5000): Promise<Element> {
    return this.inbox.expect(pred, timeoutMs, 'raw client');
  }

  /** The server's stream header (the current one if already received). */
  expectHeader(timeoutMs = 5000): Promise<Record<string, string>> {
    if (this.streamAttrs) return Promise.resolve(this.streamAttrs);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw client: no stream header within ${timeoutMs} ms; received: ${this.received}`)), timeoutMs);
      this.headerWaiters.push((attrs) => {
        clearTimeout(timer);
        resolve(attrs);
      });
    });
  }

  expectNothing(pred: Predicate = () => true, ms = 500): Promise<void> {
    return this.inbox.expectNothing(pred, ms, 'raw client');
  }

  /** Resolves when the server closed the connection (or after timeoutMs, rejecting). */
  waitClosed(timeoutMs = 5000): Promise<void> {
    return Promise.race([
      this.closedPromise,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error('connection not closed by the server')), timeoutMs)),
    ]);
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface RawConnectOptions {
  directTls?: boolean;
  /** Local address to connect from (e.g. '127.0.0.2': another client address on loopback). */
  localAddress?: string;
  /** Extra TLS options, for direct TLS and STARTTLS. */
  tls?: tls.ConnectionOptions;
}

export interface ScramOutcome {
  status: 'success' | 'failure';
  /** The SASL failure condition. */
  condition?: string;
  serverFirst?: string;
}

const NS_SASL2 = 'urn:xmpp:sasl:2';
const NS_SCRAM_UPGRADE = 'urn:xmpp:scram-upgrade:0';

export interface Sasl2Options {
  user: string;
  password?: string;
  /** A FAST token: HT-SHA-256-NONE by default, with <fast/> in the request. */
  token?: string;
  /** Default SCRAM-SHA-256 (HT-SHA-256-NONE with a token). */
  mechanism?: string;
  /** For SCRAM-*-PLUS (default tls-exporter). */
  channelBinding?: string;
  userAgent?: { id?: string; software?: string; device?: string };
  /** Attributes of <fast/> (count, invalidate); false leaves <fast/> out. */
  fast?: Record<string, string> | false;
  /** Send no <initial-response/> (the server asks with an empty challenge). */
  initialResponse?: false;
  /** More children of <authenticate/>: Bind2's <bind/>, FAST's <request-token/>, XEP-0480 <upgrade/>. */
  extra?: Element[];
}

export interface Sasl2Result {
  /** <success/> or <failure/>. */
  outcome: Element;
  /** The <continue/> elements received on the way. */
  continues: Element[];
  /** The mechanism's success data proved the server (SCRAM server signature, HT responder HMAC). */
  serverVerified: boolean;
}

/** The defined condition of a SASL <failure/>. */
export function saslCondition(el: Element): string | undefined {
  return el.children.find((x): x is Element => typeof x !== 'string' && x.name !== 'text')?.name;
}

/** The stream error condition in a <stream:error/>, if any. */
export function streamErrorCondition(el: Element): string | undefined {
  if (el.name !== 'stream:error') return undefined;
  const c = el.children.find((x): x is Element => typeof x !== 'string' && x.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-streams' && x.name !== 'text');
  return c?.name;
}

export function stanzaErrorCondition(el: Element): string | undefined {
  const err = el.getChild('error');
  const c = err?.children.find((x): x is Element => typeof x !== 'string' && x.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && x.name !== 'text');
  return c?.name;
}
