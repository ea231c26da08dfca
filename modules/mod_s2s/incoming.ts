// An incoming server-to-server stream (RFC 6120 as the receiving entity): header checks,
// features (STARTTLS, SASL EXTERNAL when the peer's certificate is valid for its domain, dialback),
// authentication of domain pairs (XEP-0178 EXTERNAL; XEP-0220 dialback, verified with the
// Authoritative Server over an outgoing stream, or at once when the certificate is valid:
// XEP-0344), answers to <db:verify/> as Authoritative Server, and the checks on every stanza
// before it is routed like a local one (from authenticated on this stream: invalid-from; to one
// of ours: host-unknown; the pair authenticated: improper-addressing).
// XEP-0288 (bidi): the feature is offered once the stream is encrypted; after the peer's <bidi/>
// the stream carries our stanzas to it as well — from our domain to the peer's for every
// authenticated pair, and from further domains of ours that we authenticate with dialback over
// this stream (the owner decides, through `canSend` and `sendStanza`).
import type { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';
import { Element } from '@xmpp/xml';
import {
  attrsOf, isStanzaKind, NS, NS_DIALBACK, NS_DIALBACK_FEATURE, peerCertificateChain, prep, split, XmlStream,
  type CloseReason, type Connection, type GlobalModuleApi, type IssuedKeys, type Session, type Stanza, type StreamLimits,
} from '../../core/api.ts';
import { certVerdict, type CertVerdict } from './pki.ts';
import { NS_BIDI, NS_BIDI_FEATURE, serialise, type VerifyOutcome } from './outgoing.ts';

export interface IncomingDeps {
  module: GlobalModuleApi;
  limits(authenticated: boolean): StreamLimits;
  unauthenticatedTimeoutMs: number;
  /** Is TLS required on a stream to our `local` domain (before the header names it: the global value)? */
  requireEncryption(local: string | undefined): boolean;
  /** Must this remote domain authenticate with its certificate to our `local` domain (s2sSecureAuth / s2sSecureDomains)? */
  secureAuth(local: string, remote: string): boolean;
  anchors(): readonly X509Certificate[];
  issued: IssuedKeys;
  /** Is this remote domain allowed to federate with our `local` domain (blocklist/allowlist)? */
  allowed(local: string, remote: string): boolean;
  /** Ask `remote` (the Authoritative Server) about a key, over an outgoing stream from `local`. */
  verify(local: string, remote: string, streamId: string, key: string): Promise<VerifyOutcome>;
  /** Write a stanza to a remote domain (error replies for stanzas that arrived here). */
  sendRemote(stanza: Element): boolean;
  streams: Map<Session, IncomingStream>;
  /** Offer bidirectional streams (XEP-0288). */
  bidi: boolean;
  /** How long our dialback request over a bidi stream may wait for its answer. */
  dialbackTimeoutMs: number;
  /** A stanza that cannot be delivered: the caller answers it with this error. */
  bounce(stanza: Stanza, condition: 'remote-server-timeout', text: string): void;
}

/** One incoming stream's state (for `s2s list` and the checks). */
export interface IncomingStream {
  session: Session;
  stream: XmlStream;
  /** The peer's domain from its stream header. */
  peer: string | undefined;
  /** Authenticated pairs 'remote local' and how. */
  pairs: Map<string, 'EXTERNAL' | 'dialback'>;
  conn: Connection;
  verdict: CertVerdict | undefined;
  /** The peer asked for a bidirectional stream (XEP-0288). */
  bidi: boolean;
  /** Our further domains authenticating (dialback) to send to the peer over this bidi stream: 'local remote'. */
  outPairs: Map<string, { state: 'pending' | 'valid'; queue: Stanza[]; timer?: NodeJS.Timeout }>;
  /** Can a stanza from our `local` to the peer's `remote` go over this stream now or after dialback? */
  canSend(local: string, remote: string): boolean;
  /** Write a stanza from our domain to the peer (after canSend). */
  sendStanza(stanza: Stanza): void;
}

const pairKey = (remote: string, local: string) => `${remote} ${local}`;

export function acceptIncoming(d: IncomingDeps, conn: Connection): void {
  const { module } = d;
  const { sessions, routing } = module.privileged;
  let peerFrom: string | undefined;
  let saslDone = false;

  const stream: XmlStream = new XmlStream({
    conn,
    limits: d.limits(false),
    unauthenticatedTimeoutMs: d.unauthenticatedTimeoutMs,
    headerAttrs: () => ({ xmlns: NS.server, 'xmlns:stream': NS.streams, 'xmlns:db': NS_DIALBACK, from: session.host, to: peerFrom, version: '1.0' }),
    serialise: (x) => x.toString(),
    describe: () => `s2s stream from ${state.peer ?? 'an unknown server'}`,
    log: module.log,
    onEnd: (_graceful, reason) => {
      d.streams.delete(session);
      // Stanzas still waiting for a dialback answer over this (bidi) stream are not lost: they bounce.
      for (const [key, out] of state.outPairs) if (out.state === 'pending') refuseOut(key, out, 'the stream closed before the peer answered our dialback');
      sessions.destroy(session, reason);
    },
  });
  // What is "sent to" an incoming session (error replies by the router) goes out to the remote.
  const session = sessions.create('s2sin_unauthed', conn, {
    send: (x) => (typeof x === 'string' ? false : d.sendRemote(x)),
    close: (reason) => stream.close(reason),
    reset: () => stream.reset(),
  });
  const state: IncomingStream = {
    session, stream, peer: undefined, pairs: new Map(), conn, verdict: undefined, bidi: false, outPairs: new Map(),
    canSend: (local, remote) => canSend(local, remote),
    sendStanza: (stanza) => sendStanza(stanza),
  };
  d.streams.set(session, state);
  const close = (reason: CloseReason) => stream.close(reason);

  const isOurs = (domain: string) => {
    const kind = module.hosts.kind(domain);
    return kind === 'virtualhost' || kind === 'component';
  };

  /** The certificate verdict for `domain`, on an encrypted stream. */
  const verdictFor = (domain: string): CertVerdict | undefined => {
    const socket = conn.tlsSocket;
    if (!socket) return undefined;
    return certVerdict(peerCertificateChain(socket as tls.TLSSocket), domain, d.anchors());
  };

  stream.parser.on('streamStart', (attrs) => {
    if (attrs.xmlns !== NS.server) {
      close({ condition: 'invalid-namespace', text: `Default namespace must be ${NS.server}` });
      return;
    }
    const to = attrs.to !== undefined ? prep(attrs.to) : undefined;
    if (!to || !isOurs(to) || (session.host && session.host !== to)) {
      close({ condition: 'host-unknown', text: to ? `This server does not serve ${to}` : "The stream header has no 'to'" });
      return;
    }
    session.host = to;
    const from = attrs.from !== undefined ? prep(attrs.from) : undefined;
    if (from === null || (from !== undefined && (from.includes('@') || from.includes('/')))) {
      close({ condition: 'invalid-from', text: "The stream header's 'from' is not a domain" });
      return;
    }
    if (from !== undefined && !d.allowed(to, from)) {
      close({ condition: 'policy-violation', text: `${from} is not allowed to federate with this server` });
      return;
    }
    peerFrom = from;
    state.peer = from ?? state.peer;
    if (!attrs.version || !/^1\.\d+$/.test(attrs.version)) {
      // A pre-XMPP 1.0 server: dialback without features, only if TLS is not required.
      if (d.requireEncryption(to)) {
        close({ condition: 'policy-violation', text: 'XMPP 1.0 with STARTTLS is required' });
        return;
      }
      session.notopen = false;
      session.streamId = stream.sendHeader();
      return;
    }
    session.notopen = false;
    session.streamId = stream.sendHeader();
    const features = new Element('stream:features');
    const tlsContext = module.privileged.tls.context(to);
    const requireEncryption = d.requireEncryption(to);
    if (!conn.secure && tlsContext) {
      const starttls = features.c('starttls', { xmlns: NS.tls });
      if (requireEncryption) starttls.c('required');
    }
    if (conn.secure || !requireEncryption) {
      if (conn.secure && !saslDone && from !== undefined) {
        state.verdict = verdictFor(from);
        if (state.verdict?.valid) features.c('mechanisms', { xmlns: NS.sasl }).c('mechanism').t('EXTERNAL');
        else module.log('%s: certificate of %s not valid for EXTERNAL: %s', session.id, from, state.verdict?.reason ?? 'none presented');
      }
      features.c('dialback', { xmlns: NS_DIALBACK_FEATURE }).c('errors');
      if (d.bidi && state.pairs.size === 0) features.c('bidi', { xmlns: NS_BIDI_FEATURE });
    }
    stream.send(features);
  });

  const starttls = () => {
    const ctx = module.privileged.tls.context(session.host);
    if (conn.secure || !ctx) {
      stream.send(`<failure xmlns='${NS.tls}'/>`);
      close({ condition: 'policy-violation', text: 'STARTTLS not possible' });
      return;
    }
    stream.send(`<proceed xmlns='${NS.tls}'/>`);
    session.resetStream();
    conn.starttls(ctx, (name) => module.privileged.tls.context(name), { requestCert: true }).then(
      () => module.log('%s: TLS established (%s)', session.id, conn.tlsInfo?.protocol),
      (err: unknown) => {
        module.log.warn('s2s TLS handshake with %s failed: %s', conn.ip, (err as Error).message);
        conn.destroy();
      },
    );
  };

  const authenticated = (remote: string, local: string, how: 'EXTERNAL' | 'dialback') => {
    const first = state.pairs.size === 0;
    state.pairs.set(pairKey(remote, local), how);
    if (first) {
      session.type = 's2sin';
      stream.authenticated(d.limits(true));
    }
    module.log.info('s2s stream from %s to %s authenticated (%s, %s%s)', remote, local, how, conn.tlsInfo?.protocol ?? 'no TLS', state.bidi ? ', bidi' : '');
  };

  const saslExternal = (el: Element) => {
    const fail = (condition: string) => {
      stream.send(`<failure xmlns='${NS.sasl}'><${condition}/></failure>`);
      module.log.warn('%s: SASL EXTERNAL from %s refused: %s', session.id, peerFrom ?? '?', condition);
    };
    if (attrsOf(el).mechanism !== 'EXTERNAL') return fail('invalid-mechanism');
    if (saslDone || !conn.secure || peerFrom === undefined || !state.verdict?.valid) return fail('not-authorized');
    const payload = el.text().trim();
    let authzid = '';
    if (payload !== '' && payload !== '=') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(payload)) return fail('incorrect-encoding');
      authzid = Buffer.from(payload, 'base64').toString('utf8');
    }
    // XEP-0178 §3: the authorisation identity, when given, must be the domain the certificate is valid for.
    if (authzid !== '' && prep(authzid) !== peerFrom) return fail('invalid-authzid');
    saslDone = true;
    authenticated(peerFrom, session.host!, 'EXTERNAL');
    stream.send(`<success xmlns='${NS.sasl}'/>`);
    session.resetStream();
  };

  const dialbackError = (name: 'result' | 'verify', a: Record<string, string | undefined>, type: string, condition: string) => {
    const reply = new Element(`db:${name}`, { from: a.to, to: a.from, type: 'error', ...(a.id ? { id: a.id } : {}) });
    reply.c('error', { type }).c(condition, { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' });
    stream.send(reply);
  };

  /** <db:result/>: the peer asks us to authenticate a domain pair (we are the Receiving Server). */
  const dialbackResult = (el: Element) => {
    const a = attrsOf(el);
    const from = a.from !== undefined ? prep(a.from) : null;
    const to = a.to !== undefined ? prep(a.to) : null;
    if (a.type !== undefined) {
      // An answer counts only for a request we made over this bidi stream (XEP-0288 §4).
      const pending = from && to ? state.outPairs.get(pairKey(to, from)) : undefined;
      if (!pending || pending.state !== 'pending') {
        module.log.warn('%s: <db:result type=%s/> on an incoming stream dropped (unsolicited)', session.id, a.type);
        return;
      }
      if (a.type === 'valid') {
        clearTimeout(pending.timer);
        pending.state = 'valid';
        module.log.info('s2s stream from %s: %s authenticated to send to %s over it (dialback, bidi)', state.peer, to, from);
        for (const q of pending.queue.splice(0)) sendStanza(q);
      } else {
        refuseOut(pairKey(to!, from!), pending, `${from} did not accept ${to} (${a.type})`);
      }
      return;
    }
    if (!to || !isOurs(to)) return dialbackError('result', a, 'cancel', 'item-not-found');
    if (!from || from.includes('@') || from.includes('/')) return dialbackError('result', a, 'modify', 'bad-request');
    if (!conn.secure && d.requireEncryption(to)) return dialbackError('result', a, 'cancel', 'policy-violation');
    if (!d.allowed(to, from)) return dialbackError('result', a, 'cancel', 'forbidden');
    const key = el.text().trim();
    const reply = (type: 'valid' | 'invalid') => {
      if (stream.isClosing) return;
      stream.send(new Element('db:result', { from: to, to: from, type }));
      if (type === 'valid') authenticated(from, to, 'dialback');
      else close({ condition: 'not-authorized', text: `dialback for ${from} failed` });
    };
    const verdict = verdictFor(from);
    if (verdict?.valid) return reply('valid'); // XEP-0344: the certificate already proves the domain
    if (d.secureAuth(to, from)) {
      module.log.warn('%s: dialback for %s refused: s2sSecureAuth and its certificate is not valid (%s)', session.id, from, verdict?.reason ?? 'no TLS');
      return dialbackError('result', a, 'cancel', 'not-authorized');
    }
    if (key === '' || session.streamId === undefined) return reply('invalid');
    void d.verify(to, from, session.streamId, key).then((outcome) => {
      if (outcome === 'error') {
        if (!stream.isClosing) dialbackError('result', a, 'wait', 'remote-server-timeout');
        return;
      }
      reply(outcome);
    });
  };

  /** <db:verify/>: is this a key we issued (we are the Authoritative Server)? */
  const dialbackVerify = (el: Element) => {
    const a = attrsOf(el);
    const receiving = a.from !== undefined ? prep(a.from) : null;
    const originating = a.to !== undefined ? prep(a.to) : null;
    if (a.type !== undefined) {
      module.log.warn('%s: <db:verify type=%s/> on an incoming stream dropped (unsolicited)', session.id, a.type);
      return;
    }
    if (!originating || !isOurs(originating)) return dialbackError('verify', a, 'cancel', 'item-not-found');
    if (!receiving || a.id === undefined) return dialbackError('verify', a, 'modify', 'bad-request');
    const check = d.issued.check(receiving, originating, a.id, el.text().trim());
    if (check !== 'valid') module.log.warn('%s: dialback key from %s for %s → %s (stream %s) is %s: answered invalid', session.id, conn.ip, originating, receiving, a.id, check);
    stream.send(new Element('db:verify', { from: originating, to: receiving, id: a.id, type: check === 'valid' ? 'valid' : 'invalid' }));
  };

  const stanza = (el: Stanza) => {
    if (state.pairs.size === 0) {
      close({ condition: 'not-authorized', text: 'Authenticate before sending stanzas' });
      return;
    }
    const attrs = el.attrs;
    const from = attrs.from !== undefined ? prep(attrs.from) : null;
    const to = attrs.to !== undefined ? prep(attrs.to) : null;
    if (!from || !to) {
      close({ condition: 'improper-addressing', text: "Stanzas between servers need valid 'from' and 'to' addresses" });
      return;
    }
    const fromHost = split(from).host ?? '';
    const toHost = split(to).host ?? '';
    if (![...state.pairs.keys()].some((k) => k.startsWith(`${fromHost} `))) {
      close({ condition: 'invalid-from', text: `${fromHost} is not authenticated on this stream` });
      return;
    }
    if (!isOurs(toHost)) {
      close({ condition: 'host-unknown', text: `This server does not serve ${toHost}` });
      return;
    }
    if (!state.pairs.has(pairKey(fromHost, toHost))) {
      close({ condition: 'improper-addressing', text: `${fromHost} is not authenticated for ${toHost} on this stream` });
      return;
    }
    delete attrs.xmlns;
    attrs.from = from;
    attrs.to = to;
    routing.route(session, el);
  };

  /** XEP-0288 §2.2: what we may send over a bidi stream — the inverse of a pair the peer authenticated, or a pair we authenticated ourselves. */
  const canSend = (local: string, remote: string): boolean => {
    if (!state.bidi || stream.isClosing) return false;
    if (state.pairs.has(pairKey(remote, local))) return true;
    if (state.outPairs.has(pairKey(local, remote))) return true;
    if (refusedOut.has(pairKey(local, remote))) return false;
    // That domain's own policy: a certificate it requires of the peer, or the peer not allowed at all.
    if (!d.allowed(local, remote) || (d.secureAuth(local, remote) && !verdictFor(remote)?.valid)) return false;
    // A further domain of ours to an authenticated peer domain: dialback over this stream.
    return isOurs(local) && [...state.pairs.keys()].some((k) => k.startsWith(`${remote} `)) && session.streamId !== undefined;
  };

  const refusedOut = new Set<string>();
  /** Our dialback over the bidi stream failed (refused, unanswered, stream gone): what waited bounces. */
  const refuseOut = (key: string, out: { queue: Stanza[]; timer?: NodeJS.Timeout }, why: string) => {
    clearTimeout(out.timer);
    if (state.outPairs.get(key) === out) state.outPairs.delete(key);
    refusedOut.add(key); // later stanzas of the pair take an outgoing stream of their own
    module.log.warn('s2s stream from %s: no dialback for %s: %s', state.peer, key.replace(' ', ' → '), why);
    for (const q of out.queue.splice(0)) d.bounce(q, 'remote-server-timeout', why);
  };

  const sendStanza = (stanza: Stanza) => {
    const local = split(stanza.attrs.from ?? '').host ?? '';
    const remote = split(stanza.attrs.to ?? '').host ?? '';
    if (state.pairs.has(pairKey(remote, local))) return void stream.send(serialise(stanza));
    const key = pairKey(local, remote);
    let out = state.outPairs.get(key);
    if (out?.state === 'valid') return void stream.send(serialise(stanza));
    if (!out) {
      const entry: { state: 'pending' | 'valid'; queue: Stanza[]; timer?: NodeJS.Timeout } = { state: 'pending', queue: [] };
      out = entry;
      state.outPairs.set(key, entry);
      entry.timer = setTimeout(() => {
        if (entry.state === 'pending') refuseOut(key, entry, `${remote} did not answer our dialback for ${local}`);
      }, d.dialbackTimeoutMs);
      entry.timer.unref();
      const dbKey = d.issued.issue(remote, local, session.streamId ?? '');
      module.log('%s: authenticating %s to %s over the bidi stream (dialback)', session.id, local, remote);
      stream.send(new Element('db:result', { from: local, to: remote }).t(dbKey));
    }
    out.queue.push(stanza);
  };

  const bidi = () => {
    if (!d.bidi) {
      close({ condition: 'unsupported-stanza-type', text: 'Bidirectional streams are not offered' });
      return;
    }
    if (state.bidi) return; // asked again (after a stream restart): nothing changes
    state.bidi = true;
    module.log('%s: %s asked for a bidirectional stream', session.id, state.peer ?? '?');
  };

  stream.parser.on('stanza', (el) => {
    if (session.notopen || !session.host) return;
    const colon = el.name.indexOf(':');
    const local = colon < 0 ? el.name : el.name.slice(colon + 1);
    const ns = colon < 0 ? (attrsOf(el).xmlns ?? NS.server) : (attrsOf(el)[`xmlns:${el.name.slice(0, colon)}`] ?? (el.name.startsWith('db:') ? NS_DIALBACK : undefined));
    if (ns === NS.tls && local === 'starttls') return starttls();
    if (!conn.secure && d.requireEncryption(session.host)) {
      close({ condition: 'policy-violation', text: 'STARTTLS is required' });
      return;
    }
    if (ns === NS.sasl && local === 'auth') return saslExternal(el);
    if (ns === NS_BIDI && local === 'bidi') return bidi();
    if (ns === NS_DIALBACK && local === 'result') return dialbackResult(el);
    if (ns === NS_DIALBACK && local === 'verify') return dialbackVerify(el);
    if ((ns === NS.server || ns === NS.client) && isStanzaKind(local) && colon < 0) return stanza(el as Stanza);
    close({ condition: 'unsupported-stanza-type', text: `Unexpected <${el.name}/>${ns ? ` in ${ns}` : ''}` });
  });
}
