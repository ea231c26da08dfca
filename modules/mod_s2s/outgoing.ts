// An outgoing server-to-server stream (RFC 6120 as the initiating entity) for one domain pair,
// with the queue of stanzas waiting for it:
//   resolving (SRV / static route) → connecting (Happy Eyeballs) → stream → STARTTLS (unless
//   direct TLS) → certificate verdict → SASL EXTERNAL (XEP-0178) or dialback (XEP-0220) → ready:
//   the queue leaves in order → … → idle close.
// When the stream cannot be established every queued stanza is handed back to be bounced
// (remote-server-not-found when the domain offers no service, else remote-server-timeout).
// Dialback verification requests (<db:verify/>, we are the Receiving Server asking the
// Authoritative Server) travel on this stream too, as soon as it is encrypted; a route opened only
// for them and with nothing to send does not authenticate until a stanza comes, and closes after
// the verification when a bidirectional stream already carries the pair.
// XEP-0288 (bidi): when the peer offers it, <bidi/> goes before authentication and the stream then
// carries the peer's stanzas to us too (from the authenticated remote domain, or from further
// domains it authenticates with dialback over this stream, to our domain); they are checked like
// an incoming stream's and handed to the owner to be routed.
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import type { X509Certificate } from 'node:crypto';
import { Element } from '@xmpp/xml';
import {
  attrsOf, connectHappyEyeballs, daneVerify, expandTargets, isStanzaKind, NS, NS_DIALBACK, NS_DIALBACK_FEATURE, peerCertificateChain, prep, split, streamHeader, XmppStreamParser,
  type AddressLookup, type Candidate, type DaneResult, type IssuedKeys, type Logger, type S2sResolution, type Stanza, type StanzaErrorCondition, type StreamLimits, type StreamTransport,
} from '../../core/api.ts';
import { certVerdict, type CertVerdict } from './pki.ts';

export type OutgoingState = 'resolving' | 'connecting' | 'negotiating' | 'ready' | 'closed';
export type AuthMethod = 'EXTERNAL' | 'dialback' | 'none';
export type VerifyOutcome = 'valid' | 'invalid' | 'error';

/** XEP-0288's namespaces: the stream feature and the request. */
export const NS_BIDI_FEATURE = 'urn:xmpp:features:bidi';
export const NS_BIDI = 'urn:xmpp:bidi';

export interface TlsaLookup {
  ok: boolean;
  secure?: boolean;
  records?: { usage: number; selector: number; matchingType: number; data: Buffer }[];
}

export interface OutgoingDeps {
  local: string;
  remote: string;
  log: Logger;
  resolve(domain: string): Promise<S2sResolution>;
  lookup(host: string): Promise<AddressLookup>;
  /** TLSA records of a target (DANE); undefined when DANE is off. */
  tlsa?(host: string, port: number): Promise<TlsaLookup>;
  /** Our certificate for `local` (presented for SASL EXTERNAL). */
  pem(): { cert: string; key: string } | undefined;
  anchors(): readonly X509Certificate[];
  requireEncryption: boolean;
  /** The peer must authenticate with its certificate (no dialback without it). */
  secureAuth: boolean;
  /** The same for a further domain of the peer (dialback over a bidi stream). */
  secureAuthFor(domain: string): boolean;
  connectTimeoutMs: number;
  /** How long stanzas wait for the stream: connection attempts are repeated until then. */
  queueTimeoutMs: number;
  dialbackTimeoutMs: number;
  queueLimit: number;
  localAddress?: { 4?: string; 6?: string };
  issued: IssuedKeys;
  limits: StreamLimits;
  /** A stanza that cannot be delivered: the caller answers it with this error. */
  bounce(stanza: Stanza, condition: StanzaErrorCondition, text: string): void;
  /** The stream ended (or never came up). */
  closed(route: OutgoingRoute): void;
  /** Ask for a bidirectional stream (XEP-0288) when the peer offers it. */
  bidi: boolean;
  /** A checked stanza the peer sent us over a bidirectional stream: route it. */
  inbound(route: OutgoingRoute, stanza: Stanza): void;
  /** Is this remote domain allowed (blocklist/allowlist)? */
  allowed(remote: string): boolean;
  /** Ask `remote` (its Authoritative Server) about a key, over another stream from our `local`. */
  verifyElsewhere(remote: string, streamId: string, key: string): Promise<VerifyOutcome>;
  /** Which other stream already carries (or can carry) stanzas from `local` to `remote`: bidi, or multiplexing; undefined: none. */
  carried(): string | undefined;
  /** The peer refused (or did not answer) another domain of ours multiplexed onto this stream: these stanzas need a route of their own. */
  senderRefused(local: string, stanzas: Stanza[]): void;
}

/** Another domain of ours multiplexed onto this stream (XEP-0220 "Multiplexing Sender Domains"). */
interface Sender {
  state: 'pending' | 'valid';
  queue: Stanza[];
  timer: NodeJS.Timeout;
}

interface PendingVerify {
  id: string;
  key: string;
  resolve(outcome: VerifyOutcome): void;
  timer: NodeJS.Timeout;
}

/** Serialise for a jabber:server stream: stanzas travel without jabber:client's namespace. */
export function serialise(x: Element): string {
  const attrs = attrsOf(x);
  if (attrs.xmlns !== NS.client && attrs.xmlns !== NS.server) return x.toString();
  const { xmlns: _dropped, ...rest } = attrs;
  const copy = new Element(x.name, rest);
  copy.children = x.children;
  return copy.toString();
}

let routeCounter = 0;

export class OutgoingRoute {
  readonly id = `s2sout${++routeCounter}`;
  readonly created = Date.now();
  state: OutgoingState = 'resolving';
  auth: AuthMethod = 'none';
  tlsProtocol: string | undefined;
  directTls = false;
  lastActivity = Date.now();
  /** The certificate verdict for the remote domain, after TLS. */
  verdict: CertVerdict | undefined;
  dane: DaneResult['status'] | undefined;
  private readonly queue: Stanza[] = [];
  private readonly verifies = new Map<string, PendingVerify>();
  private socket: net.Socket | tls.TLSSocket | undefined;
  private parser: XmppStreamParser;
  private header: Record<string, string> = {};
  private streamId: string | undefined;
  private triedExternal = false;
  private saslDone = false;
  private dialbackSent = false;
  private canVerify = false;
  private candidate: Candidate | undefined;
  private closing = false;
  private failure: { condition: StanzaErrorCondition; text: string } | undefined;
  private readonly abort = new AbortController();
  /** Why the stream could not be established (undefined once it was, or when closed on purpose). */
  get failedWith(): { condition: StanzaErrorCondition; text: string } | undefined {
    return this.everReady ? undefined : this.failure;
  }
  private everReady = false;
  /** XEP-0288 negotiated: the peer's stanzas come back over this stream. */
  bidi = false;
  /** Remote domains authenticated to send us stanzas over this (bidirectional) stream. */
  readonly inbound = new Set<string>();
  /** Stanzas ever queued or sent: a route opened only for dialback verification has none. */
  private carrying = false;
  /** Further domains of ours authenticated (or authenticating) with dialback on this stream. */
  private readonly senders = new Map<string, Sender>();
  private readonly refusedSenders = new Set<string>();
  /** The peer advertised dialback with error handling (XEP-0220): a refused pair does not cost the stream. */
  private dialbackErrors = false;
  /** Features held back while the route only verifies keys (authentication waits for a stanza). */
  private heldFeatures: Element | undefined;
  private chain: Buffer[] = [];

  constructor(private readonly d: OutgoingDeps) {
    this.parser = this.newParser();
  }

  get local(): string {
    return this.d.local;
  }

  get remote(): string {
    return this.d.remote;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Opened only to verify dialback keys: it has carried no stanza yet. */
  get verifyOnly(): boolean {
    return !this.carrying;
  }

  /** Our domains this stream carries stanzas from: its own, then those multiplexed onto it. */
  get locals(): string[] {
    return [this.d.local, ...[...this.senders].filter(([, x]) => x.state === 'valid').map(([l]) => l)];
  }

  /**
   * May a stanza from another domain of ours, `local`, travel on this stream (XEP-0220 §
   * "Multiplexing Sender Domains")? Only on an established stream to a peer that handles dialback
   * errors (a refusal then ends nothing but that pair), when the peer did not refuse `local`
   * already, and when the stream satisfies `local`'s own policy (TLS, a valid certificate).
   */
  canCarryFrom(local: string, policy: { requireEncryption: boolean; secureAuth: boolean }): boolean {
    if (this.state !== 'ready' || this.closing || !this.dialbackErrors || this.streamId === undefined || local === this.d.local) return false;
    if (this.refusedSenders.has(local)) return false;
    if (policy.requireEncryption && this.tlsProtocol === undefined) return false;
    if (policy.secureAuth && !this.verdict?.valid && this.dane !== 'verified') return false;
    return true;
  }

  /** A stanza from another domain of ours (after canCarryFrom): sent once the peer accepted the pair, queued until then. */
  sendFrom(local: string, stanza: Stanza): void {
    this.carrying = true;
    let sender = this.senders.get(local);
    if (sender?.state === 'valid') {
      this.write(serialise(stanza));
      return;
    }
    if (!sender) {
      const timer = setTimeout(() => this.refuseSender(local, `${this.d.remote} did not answer our dialback for ${local}`), this.d.dialbackTimeoutMs);
      timer.unref();
      sender = { state: 'pending', queue: [], timer };
      this.senders.set(local, sender);
      // The key binds the new pair to this stream's id, like the stream's own (XEP-0185).
      const key = this.d.issued.issue(this.d.remote, local, this.streamId ?? '');
      this.d.log('%s: multiplexing %s onto the stream to %s (dialback)', this.id, local, this.d.remote);
      this.write(`<db:result from='${escapeAttr(local)}' to='${escapeAttr(this.d.remote)}'>${key}</db:result>`);
    }
    if (sender.queue.length >= this.d.queueLimit) {
      this.d.bounce(stanza, 'resource-constraint', `Too many stanzas waiting for ${this.d.remote}`);
      return;
    }
    sender.queue.push(stanza);
  }

  /** The peer did not accept a multiplexed domain: it takes a stream of its own (what waited goes there). */
  private refuseSender(local: string, why: string): void {
    const sender = this.senders.get(local);
    if (!sender || sender.state !== 'pending') return;
    clearTimeout(sender.timer);
    this.senders.delete(local);
    this.refusedSenders.add(local);
    this.d.log.warn('s2s stream %s → %s: no multiplexing for %s: %s; it opens a stream of its own', this.d.local, this.d.remote, local, why);
    this.d.senderRefused(local, sender.queue.splice(0));
  }

  /** Queue a stanza (sent at once when the stream is ready). */
  send(stanza: Stanza): void {
    this.carrying = true;
    if (this.state === 'closed') {
      this.d.bounce(stanza, 'remote-server-timeout', `No stream to ${this.d.remote}`);
      return;
    }
    if (this.state === 'ready') {
      this.write(serialise(stanza));
      return;
    }
    if (this.queue.length >= this.d.queueLimit) {
      this.d.bounce(stanza, 'resource-constraint', `Too many stanzas waiting for ${this.d.remote}`);
      return;
    }
    this.queue.push(stanza);
    const held = this.heldFeatures;
    if (held) {
      this.heldFeatures = undefined;
      this.authenticate(held);
    }
  }

  /** A transport view of the socket for the session that carries the peer's stanzas (bidi). */
  transport(): StreamTransport {
    const socket = () => this.socket;
    const lastActivity = () => this.lastActivity;
    const tlsProtocol = () => this.tlsProtocol;
    return {
      id: this.id,
      get ip() { return socket()?.remoteAddress ?? ''; },
      get port() { return socket()?.remotePort ?? 0; },
      get secure() { return socket() instanceof tls.TLSSocket; },
      service: 's2s_out',
      created: this.created,
      get lastActivity() { return lastActivity(); },
      get tlsInfo() {
        const protocol = tlsProtocol();
        return protocol ? { protocol, cipher: (socket() as tls.TLSSocket | undefined)?.getCipher?.()?.name ?? '' } : undefined;
      },
      channelBinding: () => undefined,
      channelBindingTypes: () => [],
      pause: () => void socket()?.pause(),
      resume: () => void socket()?.resume(),
      destroy: () => void socket()?.destroy(),
    };
  }

  /** Ask the Authoritative Server (the remote) whether a key it issued is valid (XEP-0220 §2.3). */
  verify(id: string, key: string): Promise<VerifyOutcome> {
    if (this.state === 'closed') return Promise.resolve('error');
    return new Promise((resolve) => {
      const existing = this.verifies.get(id);
      if (existing) {
        resolve('error'); // one verification per stream id at a time
        return;
      }
      const timer = setTimeout(() => this.finishVerify(id, 'error'), this.d.dialbackTimeoutMs);
      timer.unref();
      this.verifies.set(id, { id, key, resolve, timer });
      if (this.canVerify) this.sendVerify(id, key);
    });
  }

  /** Start: resolve, connect, negotiate. */
  async start(): Promise<void> {
    const { d } = this;
    // Until the queue's timeout, a domain that cannot be reached (DNS failure, nothing accepting)
    // is tried again with a growing pause; what the peer refuses (TLS, certificate, authentication)
    // and a domain without the service fail at once.
    const deadline = this.created + d.queueTimeoutMs;
    let pause = 1000;
    let result: Awaited<ReturnType<typeof connectHappyEyeballs>>;
    for (;;) {
      this.state = 'resolving';
      const resolution = await d.resolve(d.remote);
      if ((this.state as OutgoingState) === 'closed') return;
      let failure: string;
      if (!resolution.ok) {
        if (resolution.error !== 'dns-failure') return this.fail('remote-server-not-found', resolution.detail);
        failure = resolution.detail;
      } else {
        this.state = 'connecting';
        const pem = d.pem();
        // Targets whose name DNS says has no address (NXDOMAIN, no records): not a passing failure.
        const nonexistent: string[] = [];
        const lookupFailed = (_target: unknown, detail: string) => {
          if (detail.startsWith('not-found:')) nonexistent.push(detail.slice('not-found:'.length).trim());
        };
        result = await connectHappyEyeballs(expandTargets(resolution.targets, (h) => d.lookup(h), lookupFailed), {
          timeoutMs: Math.max(1000, Math.min(d.connectTimeoutMs, deadline - Date.now())),
          signal: this.abort.signal,
          localAddress: d.localAddress,
          tlsOptions: () => ({ servername: d.remote, ALPNProtocols: ['xmpp-server'], ...pem, rejectUnauthorized: false, minVersion: 'TLSv1.2' }),
        });
        if ((this.state as OutgoingState) === 'closed') {
          if (result.ok) result.socket.destroy();
          return;
        }
        if (result.ok) break;
        // RFC 6120 §4.9.3.19, §8.3.3: a domain that cannot exist bounces at once (remote-server-not-found);
        // only when the SRV questions were answered and every target's address lookup said "none".
        if (result.error === 'no-candidates' && !resolution.srvFailed && nonexistent.length === resolution.targets.length) {
          return this.fail('remote-server-not-found', `${d.remote} cannot be resolved: ${nonexistent.join('; ')}`);
        }
        const tried = result.attempts.map((a) => `${a.candidate.address}:${a.candidate.port} ${a.outcome}${a.detail ? ` (${a.detail})` : ''}`).join('; ');
        failure = `cannot connect to ${d.remote}: ${result.detail}${tried ? ` [${tried}]` : ''}`;
      }
      if (Date.now() + pause >= deadline) return this.fail('remote-server-timeout', failure);
      d.log.info('s2s route %s → %s: %s; trying again in %d s (%d stanzas waiting)', d.local, d.remote, failure, pause / 1000, this.queue.length);
      try {
        await sleep(pause, undefined, { signal: this.abort.signal });
      } catch {
        return; // closed meanwhile
      }
      if ((this.state as OutgoingState) === 'closed') return;
      pause = Math.min(pause * 2, 16_000);
    }
    this.candidate = result.candidate;
    this.directTls = result.candidate.directTls;
    d.log('%s: connected to %s %s:%d%s', this.id, d.remote, result.candidate.address, result.candidate.port, this.directTls ? ' (direct TLS)' : '');
    this.state = 'negotiating';
    this.attach(result.socket);
    if (this.directTls && !(await this.judgeTls(result.socket as tls.TLSSocket))) return;
    this.sendHeader();
  }

  /** Close the stream (gracefully), bouncing what still waits. */
  close(text = 'closed'): void {
    if (this.state === 'closed') return;
    if (this.socket && !this.closing) {
      this.closing = true;
      if (this.streamId !== undefined || this.state === 'negotiating' || this.state === 'ready') this.rawWrite('</stream:stream>');
      const s = this.socket;
      s.end();
      setTimeout(() => s.destroy(), 2000).unref();
    }
    this.finish({ condition: 'remote-server-timeout', text });
  }

  // ---- the wire -------------------------------------------------------------------------------------

  private newParser(): XmppStreamParser {
    const p = new XmppStreamParser(this.d.limits);
    p.on('streamStart', (attrs) => this.onHeader(attrs));
    p.on('stanza', (el) => this.onElement(el));
    p.on('streamEnd', () => this.close(`${this.d.remote} closed the stream`));
    p.on('error', (condition, text) => this.streamError(condition, text ?? 'stream error from the peer'));
    return p;
  }

  private attach(socket: net.Socket | tls.TLSSocket): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.lastActivity = Date.now();
      this.parser.write(chunk);
    });
    socket.on('error', (err) => this.d.log('%s: socket error: %s', this.id, err.message));
    socket.on('close', () => {
      if (socket !== this.socket) return;
      this.finish({ condition: 'remote-server-timeout', text: `connection to ${this.d.remote} closed` });
    });
  }

  private rawWrite(data: string): void {
    const s = this.socket;
    if (!s || s.destroyed) return;
    s.write(data);
  }

  private write(data: string): void {
    this.lastActivity = Date.now();
    this.rawWrite(data);
  }

  private sendHeader(): void {
    this.write(streamHeader({ xmlns: NS.server, 'xmlns:stream': NS.streams, 'xmlns:db': NS_DIALBACK, from: this.d.local, to: this.d.remote, version: '1.0' }));
  }

  /** We end the stream because of the peer: a stream error, then close. */
  private streamError(condition: string, text: string): void {
    if (this.state === 'closed') return;
    this.d.log.warn('%s: stream to %s failed: %s (%s)', this.id, this.d.remote, condition, text);
    if (this.socket && !this.closing) {
      this.rawWrite(`<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`);
    }
    this.close(`${condition}: ${text}`);
  }

  private fail(condition: StanzaErrorCondition, text: string): void {
    this.failure = { condition, text };
    this.d.log.warn('%s: no stream %s → %s: %s', this.id, this.d.local, this.d.remote, text);
    this.close(text);
  }

  /** The end: every waiting stanza bounced, every verification failed, the owner told. */
  private finish(why: { condition: StanzaErrorCondition; text: string }): void {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    this.abort.abort();
    this.parser.stop();
    if (this.socket && !this.socket.destroyed && !this.closing) this.socket.destroy();
    this.d.issued.forget(this.streamId ?? '');
    const failure = this.failure ?? why;
    for (const stanza of this.queue.splice(0)) this.d.bounce(stanza, failure.condition, failure.text);
    for (const sender of this.senders.values()) {
      clearTimeout(sender.timer);
      for (const stanza of sender.queue.splice(0)) this.d.bounce(stanza, failure.condition, failure.text);
    }
    for (const id of [...this.verifies.keys()]) this.finishVerify(id, 'error');
    if (wasReady) this.d.log.info('s2s stream %s → %s closed (%s)', this.d.local, this.d.remote, why.text);
    this.d.closed(this);
  }

  // ---- negotiation -----------------------------------------------------------------------------------

  private onHeader(attrs: Record<string, string>): void {
    if (attrs.xmlns !== NS.server) {
      this.streamError('invalid-namespace', `the peer's stream is not ${NS.server}`);
      return;
    }
    this.header = attrs;
    this.streamId = attrs.id;
    if (!attrs.version || !/^1\.\d+$/.test(attrs.version)) {
      // A pre-XMPP 1.0 server: no features, no TLS.
      if (this.d.requireEncryption) {
        this.streamError('policy-violation', 'the peer offers no XMPP 1.0 stream (no TLS)');
        return;
      }
      this.startDialback();
    }
  }

  /** The namespace of an element: its xmlns, or its prefix's binding on the stream header. */
  private nsOf(el: Element): { local: string; ns: string | undefined } {
    const colon = el.name.indexOf(':');
    if (colon < 0) return { local: el.name, ns: attrsOf(el).xmlns ?? NS.server };
    const prefix = el.name.slice(0, colon);
    const attrs = attrsOf(el);
    return { local: el.name.slice(colon + 1), ns: attrs[`xmlns:${prefix}`] ?? this.header[`xmlns:${prefix}`] };
  }

  private onElement(el: Element): void {
    if (this.state === 'closed') return;
    const { local, ns } = this.nsOf(el);
    if (ns === NS.streams && local === 'features') return void this.onFeatures(el);
    if (ns === NS.streams && local === 'error') {
      const condition = el.children.find((c): c is Element => typeof c !== 'string' && attrsOf(c).xmlns === 'urn:ietf:params:xml:ns:xmpp-streams');
      this.fail('remote-server-timeout', `${this.d.remote} sent a stream error: ${condition?.name ?? 'unknown'}`);
      return;
    }
    if (ns === NS.tls && local === 'proceed') return void this.upgrade();
    if (ns === NS.tls && local === 'failure') return this.fail('remote-server-timeout', `${this.d.remote} refused STARTTLS`);
    if (ns === NS.sasl && local === 'success') {
      this.saslDone = true;
      this.auth = 'EXTERNAL';
      this.parser.reset();
      this.sendHeader();
      return;
    }
    if (ns === NS.sasl && local === 'failure') {
      this.d.log('%s: %s refused SASL EXTERNAL; trying dialback', this.id, this.d.remote);
      this.startDialback();
      return;
    }
    if (ns === NS_DIALBACK && local === 'result' && attrsOf(el).type === undefined && this.bidi && this.state === 'ready') return this.onReverseDialback(el);
    if (ns === NS_DIALBACK && local === 'result') return this.onDialbackResult(el);
    if (this.bidi && this.state === 'ready' && (ns === NS.server || ns === NS.client) && isStanzaKind(local) && !el.name.includes(':')) return this.onInbound(el as Stanza);
    if (ns === NS_DIALBACK && local === 'verify') return this.onVerifyAnswer(el);
    this.streamError('unsupported-stanza-type', `unexpected <${el.name}/> on an outgoing stream`);
  }

  private onFeatures(features: Element): void {
    if (features.getChild('dialback', NS_DIALBACK_FEATURE)?.getChild('errors')) this.dialbackErrors = true;
    const secure = this.socket instanceof tls.TLSSocket;
    if (!secure) {
      if (features.getChild('starttls', NS.tls)) {
        this.write(`<starttls xmlns='${NS.tls}'/>`);
        return;
      }
      if (this.d.requireEncryption) {
        this.streamError('policy-violation', `${this.d.remote} offers no STARTTLS and s2sRequireEncryption is on`);
        return;
      }
    }
    // Encrypted (or allowed in the clear): dialback verification requests may go now.
    this.canVerify = true;
    for (const v of this.verifies.values()) this.sendVerify(v.id, v.key);
    if (this.saslDone) return this.ready();
    if (!this.carrying && this.queue.length === 0) {
      // Opened only to verify keys: authenticate when a stanza comes (or when verification ends).
      this.heldFeatures = features;
      this.afterVerifies();
      return;
    }
    this.authenticate(features);
  }

  /** A verification-only route with nothing left to verify: closed when bidi carries the pair, else authenticated. */
  private afterVerifies(): void {
    if (!this.heldFeatures || this.verifies.size > 0) return;
    // The answer's consumer (the incoming stream's dialback) runs first: it may make the pair bidi.
    setImmediate(() => {
      const held = this.heldFeatures;
      if (!held || this.verifies.size > 0 || this.state === 'closed') return;
      const carrier = this.d.carried();
      if (carrier) {
        this.d.log.info('s2s stream %s → %s: dialback verification done; %s carries the pair', this.d.local, this.d.remote, carrier);
        this.close('dialback verification done');
        return;
      }
      this.heldFeatures = undefined;
      this.authenticate(held);
    });
  }

  private authenticate(features: Element): void {
    if (this.state === 'closed') return;
    if (this.d.bidi && !this.bidi && features.getChild('bidi', NS_BIDI_FEATURE)) {
      // XEP-0288 §2.2: before SASL or dialback.
      this.bidi = true;
      this.write(`<bidi xmlns='${NS_BIDI}'/>`);
    }
    if (this.d.secureAuth && !this.verdict?.valid && this.dane !== 'verified') {
      this.fail('remote-server-timeout', `${this.d.remote} did not present a valid certificate (${this.verdict && !this.verdict.valid ? this.verdict.reason : 'none'}) and one is required (s2sSecureAuth, s2sSecureDomains)`);
      return;
    }
    const mechanisms = features.getChild('mechanisms', NS.sasl)?.getChildren('mechanism').map((m) => m.text().trim()) ?? [];
    if (!this.triedExternal && mechanisms.includes('EXTERNAL') && this.d.pem()) {
      this.triedExternal = true;
      this.write(`<auth xmlns='${NS.sasl}' mechanism='EXTERNAL'>${Buffer.from(this.d.local).toString('base64')}</auth>`);
      return;
    }
    if (features.getChild('dialback', NS_DIALBACK_FEATURE) || this.header['xmlns:db'] === NS_DIALBACK) {
      this.startDialback();
      return;
    }
    this.fail('remote-server-timeout', `${this.d.remote} offers neither SASL EXTERNAL for us nor dialback`);
  }

  private upgrade(): void {
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    this.parser.reset();
    const secure = tls.connect({ socket: raw, servername: this.d.remote, ...this.d.pem(), rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    this.attach(secure);
    raw.on('close', () => {
      if (this.socket === secure) this.finish({ condition: 'remote-server-timeout', text: `connection to ${this.d.remote} closed` });
    });
    secure.once('secureConnect', () => {
      void this.judgeTls(secure).then((ok) => {
        if (ok) this.sendHeader();
      });
    });
  }

  /** After the handshake: what the certificate says (DANE when validated records exist, else PKIX + names). */
  private async judgeTls(socket: tls.TLSSocket): Promise<boolean> {
    this.tlsProtocol = socket.getProtocol() ?? undefined;
    const chain = peerCertificateChain(socket);
    this.chain = chain;
    this.verdict = certVerdict(chain, this.d.remote, this.d.anchors());
    const c = this.candidate;
    if (this.d.tlsa && c?.secure) {
      const r = await this.d.tlsa(c.host, c.port);
      if (r.ok && r.secure && r.records && r.records.length > 0) {
        const result = daneVerify({ records: r.records, chain, domain: this.d.remote, targetHost: c.target?.source === 'srv' ? c.host : undefined });
        this.dane = result.status;
        if (result.status === 'failed') {
          this.fail('remote-server-timeout', `DANE: ${c.host}:${c.port} does not match its TLSA records (${result.reason})`);
          return false;
        }
      }
    }
    this.d.log('%s: TLS %s with %s; certificate %s%s', this.id, this.tlsProtocol, this.d.remote,
      this.verdict.valid ? `valid (${this.verdict.matchedBy})` : `not valid: ${this.verdict.reason}`, this.dane ? `; DANE ${this.dane}` : '');
    return this.state !== 'closed';
  }

  // ---- dialback (XEP-0220) as Initiating Server -----------------------------------------------------

  private startDialback(): void {
    if (this.dialbackSent) return;
    if (this.d.secureAuth && !this.verdict?.valid && this.dane !== 'verified') {
      this.fail('remote-server-timeout', `dialback with ${this.d.remote} is not allowed (s2sSecureAuth, s2sSecureDomains) without a valid certificate`);
      return;
    }
    if (this.streamId === undefined) {
      this.fail('remote-server-timeout', `${this.d.remote} sent no stream id`);
      return;
    }
    this.dialbackSent = true;
    const key = this.d.issued.issue(this.d.remote, this.d.local, this.streamId);
    this.write(`<db:result from='${this.d.local}' to='${this.d.remote}'>${key}</db:result>`);
    const timer = setTimeout(() => {
      if (this.state === 'negotiating') this.fail('remote-server-timeout', `${this.d.remote} did not answer our dialback request`);
    }, this.d.dialbackTimeoutMs);
    timer.unref();
  }

  private onDialbackResult(el: Element): void {
    const a = attrsOf(el);
    const sender = a.from === this.d.remote && a.to !== undefined && a.to !== this.d.local ? this.senders.get(a.to) : undefined;
    if (sender?.state === 'pending') return this.onSenderResult(a.to!, sender, a.type);
    // Only an answer to our own request counts (XEP-0220 §3.1): from/to swapped, on this stream.
    if (!this.dialbackSent || this.auth !== 'none' || a.from !== this.d.remote || a.to !== this.d.local) {
      this.d.log.warn('%s: unsolicited <db:result/> from %s (from=%s to=%s) dropped', this.id, this.d.remote, a.from, a.to);
      return;
    }
    if (a.type === 'valid') {
      this.auth = 'dialback';
      this.ready();
      return;
    }
    this.fail('remote-server-timeout', `${this.d.remote} answered our dialback with ${a.type ?? 'nothing'}`);
  }

  /** The peer's answer for a domain of ours multiplexed onto this stream. */
  private onSenderResult(local: string, sender: Sender, type: string | undefined): void {
    if (type !== 'valid') return this.refuseSender(local, `${this.d.remote} answered our dialback for ${local} with ${type ?? 'nothing'}`);
    clearTimeout(sender.timer);
    sender.state = 'valid';
    this.d.log.info('s2s stream %s → %s: %s authenticated over it (dialback multiplexing)', this.d.local, this.d.remote, local);
    const out = sender.queue.splice(0).map(serialise).join('');
    if (out) this.write(out);
  }

  // ---- dialback verification (we are the Receiving Server asking) ------------------------------------

  private sendVerify(id: string, key: string): void {
    this.write(`<db:verify from='${this.d.local}' to='${this.d.remote}' id='${escapeAttr(id)}'>${escapeText(key)}</db:verify>`);
  }

  private onVerifyAnswer(el: Element): void {
    const a = attrsOf(el);
    const id = a.id ?? '';
    if (a.from !== this.d.remote || a.to !== this.d.local || !this.verifies.has(id)) {
      this.d.log.warn('%s: unsolicited <db:verify/> answer from %s dropped', this.id, this.d.remote);
      return;
    }
    this.finishVerify(id, a.type === 'valid' ? 'valid' : a.type === 'invalid' ? 'invalid' : 'error');
  }

  private finishVerify(id: string, outcome: VerifyOutcome): void {
    const v = this.verifies.get(id);
    if (!v) return;
    this.verifies.delete(id);
    clearTimeout(v.timer);
    v.resolve(outcome);
    this.afterVerifies();
  }

  // ---- bidirectional (XEP-0288): the peer's side of the stream -----------------------------------------

  /** A stanza from the peer: only from a domain authenticated on this stream, only to our domain. */
  private onInbound(el: Stanza): void {
    const attrs = el.attrs;
    const from = attrs.from !== undefined ? prep(attrs.from) : null;
    const to = attrs.to !== undefined ? prep(attrs.to) : null;
    if (!from || !to) return this.streamError('improper-addressing', "stanzas between servers need valid 'from' and 'to' addresses");
    const fromHost = split(from).host ?? '';
    if (!this.inbound.has(fromHost)) return this.streamError('invalid-from', `${fromHost} is not authenticated on this stream`);
    // XEP-0288: every domain of ours authenticated on the stream (its own, multiplexed ones) may be addressed.
    if (!this.locals.includes(split(to).host ?? '')) return this.streamError('improper-addressing', `only stanzas to ${this.locals.join(', ')} travel on this stream`);
    delete attrs.xmlns;
    attrs.from = from;
    attrs.to = to;
    this.lastActivity = Date.now();
    this.d.inbound(this, el);
  }

  /**
   * <db:result/> from the peer over a bidirectional stream (XEP-0288 §2.2): it authenticates a further
   * domain it hosts to send to our domain; verified by certificate (XEP-0344) or with that domain's
   * Authoritative Server over another stream — never over this one.
   */
  private onReverseDialback(el: Element): void {
    const a = attrsOf(el);
    const from = a.from !== undefined ? prep(a.from) : null;
    const to = a.to !== undefined ? prep(a.to) : null;
    const answer = (type: 'valid' | 'invalid') => {
      if (this.state !== 'ready') return;
      this.write(`<db:result from='${escapeAttr(to ?? '')}' to='${escapeAttr(from ?? '')}' type='${type}'/>`);
      if (type === 'valid' && from) {
        this.inbound.add(from);
        this.d.log.info('s2s stream %s → %s: %s authenticated to send over it (dialback, bidi)', this.d.local, this.d.remote, from);
      }
    };
    const error = (type: string, condition: string) => {
      this.write(`<db:result from='${escapeAttr(a.to ?? '')}' to='${escapeAttr(a.from ?? '')}' type='error'><error type='${type}'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>`);
    };
    if (to !== this.d.local) return error('cancel', 'item-not-found');
    if (!from || from.includes('@') || from.includes('/')) return error('modify', 'bad-request');
    if (!this.d.allowed(from)) return error('cancel', 'forbidden');
    if (certVerdict(this.chain, from, this.d.anchors()).valid) return answer('valid');
    if (this.d.secureAuthFor(from)) return error('cancel', 'not-authorized');
    const key = el.text().trim();
    if (key === '' || this.streamId === undefined) return answer('invalid');
    void this.d.verifyElsewhere(from, this.streamId, key).then((outcome) => {
      if (outcome === 'error') error('wait', 'remote-server-timeout');
      else answer(outcome);
    });
  }

  // ---- ready ------------------------------------------------------------------------------------------

  private ready(): void {
    this.state = 'ready';
    this.everReady = true;
    if (this.bidi) this.inbound.add(this.d.remote);
    this.d.log.info('s2s stream %s → %s established (%s, %s%s%s)', this.d.local, this.d.remote, this.auth, this.tlsProtocol ?? 'no TLS', this.directTls ? ', direct TLS' : '', this.bidi ? ', bidi' : '');
    const out = this.queue.splice(0).map(serialise).join('');
    if (out) this.write(out);
  }
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
