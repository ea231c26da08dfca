//% requires_core_features: sessions-v1, stanza-events-v1, stanza-dispatch-ordered, module-capabilities, http-routes
// BOSH (XEP-0124) carrying XMPP (XEP-0206) at /http-bind: each POSTed body goes to the session
// engine (session.ts), which answers in rid order and holds requests; behind each BOSH session is
// a normal client session on the core's client connections (ClientStreams: header checks,
// features, SASL, bind, stanzas to the router in order, the terminate behind them, limits, stream
// resumption to and from any transport, shutdown). CORS for browsers. doc/web.md.
// Limits: the inbound rate applies to request bodies — a request past the allowance waits (in
// order) until the bucket has refilled, and more waiting requests than the session's `requests`
// is overactivity (policy-violation, XEP-0124 §11); the send queue bounds payloads no request came
// for; a session dropped for inactivity is a lost connection (stream management may resume it).
import type { TLSSocket } from 'node:tls';
import type { Element } from '@xmpp/xml';
import { ClientStreams, defineModule, isStanzaKind, ReadShaper, STALL_MS, streamErrorElement, tlsChannelBinding, type ClientStream, type CloseReason, type GlobalModuleApi, type HttpRequest, type Stanza, type StreamTransport } from '../../core/api.ts';
import { BOSH_DEFAULTS, BoshManager, DEFAULT_CONTENT_TYPE, legacyHttpStatus, terminateBody, type BoshCreation, type BoshSession, type BoshSessionHooks } from './session.ts';

export const BOSH_PATH = '/http-bind';

const OPTIONS = {
  maxWait: { type: 'integer', description: 'Longest time (s) a request is held (a client asking less gets less)', default: BOSH_DEFAULTS.maxWait, min: 1 },
  maxHold: { type: 'integer', description: 'Most requests held at once per session', default: BOSH_DEFAULTS.maxHold, min: 1 },
  inactivity: { type: 'integer', description: 'Seconds without a request after which a session is dropped', default: BOSH_DEFAULTS.inactivity, min: 1 },
  polling: { type: 'integer', description: 'Shortest polling interval (s) allowed', default: BOSH_DEFAULTS.polling, min: 0 },
  maxPause: { type: 'integer', description: 'Longest pause (s) a client may ask for (0: none)', default: BOSH_DEFAULTS.maxPause, min: 0 },
  maxBodySize: { type: 'integer', description: 'Largest request body, in bytes', default: BOSH_DEFAULTS.maxBodyBytes, min: 1024 },
  unauthenticatedTimeout: { type: 'integer', description: 'Seconds a session may stay unauthenticated', default: 60, min: 1 },
  origins: { type: 'string[]', description: "Origins of web pages allowed to use it (CORS; '*': any — XMPP authenticates in-band, no cookies)", default: ['*'] },
} as const;

let nextId = 1;

/** tls-server-end-point of a client's TLS connection to us, computed once per connection. */
const endPoints = new WeakMap<TLSSocket, Buffer | undefined>();
function endPointOf(s: TLSSocket | undefined): Buffer | undefined {
  if (!s) return undefined;
  if (!endPoints.has(s)) endPoints.set(s, tlsChannelBinding(s, 'tls-server-end-point'));
  return endPoints.get(s);
}

/** A BOSH session as a client session's transport (`session.conn`). */
class BoshTransport implements StreamTransport {
  readonly id = `bosh${nextId++}`;
  readonly created = Date.now();
  lastActivity = Date.now();
  readonly service = 'bosh';
  readonly port = 0;
  readonly tlsInfo = undefined;
  /** Requests waiting for the rate limit, in arrival order. */
  private readonly waiting: { bytes: number; go: () => void }[] = [];
  /** Inbound rate shaping (limits `rate`) over request bodies: past the allowance requests wait. */
  readonly shaper = new ReadShaper({ pause: () => undefined, resume: () => this.release() });

  /**
   * @param endPoint tls-server-end-point (RFC 5929 §4) of the certificate this server presented on
   * the creation request's TLS connection, when the client negotiated TLS with us (not a proxy).
   */
  constructor(readonly ip: string, readonly secure: boolean, private readonly bosh: BoshSession, readonly endPoint: Buffer | undefined) {}

  // Requests of one session come over whichever connections the client's HTTP stack picks (two
  // at once with hold=1, new ones after a keep-alive timeout): a binding unique to one TLS
  // connection (tls-exporter, tls-unique) cannot be known to both sides. tls-server-end-point
  // names the server's certificate, the same on every connection to it, so it is the one type
  // offered (doc/web.md, "Channel binding over WebSocket and BOSH").
  channelBinding(type: string): Buffer | undefined {
    return type === 'tls-server-end-point' ? this.endPoint : undefined;
  }

  channelBindingTypes(): string[] {
    return this.endPoint ? ['tls-server-end-point'] : [];
  }

  get readRate(): number {
    return this.shaper.rate;
  }

  get shaped(): boolean {
    return this.shaper.shaped;
  }

  get throttled(): number {
    return this.shaper.throttled;
  }

  /**
   * A request body of `bytes` may be handled: at once, or once the rate allows (in order). False
   * when more requests wait than the session allows (XEP-0124 §11 overactivity).
   */
  admit(bytes: number): Promise<boolean> {
    if (this.waiting.length === 0 && !this.shaper.shaped) {
      this.shaper.take(bytes);
      return Promise.resolve(true);
    }
    // A client never has more than `requests` outstanding, plus one to pause or terminate (§11).
    if (this.waiting.length > this.bosh.requests) return Promise.resolve(false);
    return new Promise((resolve) => this.waiting.push({ bytes, go: () => resolve(true) }));
  }

  private release(): void {
    while (this.waiting.length && !this.shaper.shaped) {
      const next = this.waiting.shift()!;
      this.shaper.take(next.bytes);
      next.go();
    }
  }

  // Payloads are delivered in rid order by the engine already.
  pause(): void {}
  resume(): void {}

  destroy(): void {
    this.bosh.close('undefined-condition');
  }

  /** The session is over: waiting requests go on (the engine answers them with its terminal body). */
  stop(): void {
    this.shaper.stop();
    for (const w of this.waiting.splice(0)) w.go();
  }
}

export default defineModule({
  scope: 'global',
  description: 'BOSH (XEP-0124, XEP-0206) at /http-bind',
  capabilities: ['sessions', 'routing'],
  options: OPTIONS,
  load(module) {
    const clients = new ClientStreams(module, { unauthenticatedTimeout: module.option('unauthenticatedTimeout') });
    // Sessions created over HTTPS (XEP-0124 §15.1).
    const secureSessions = new WeakSet<BoshSession>();
    const transports = new WeakMap<BoshSession, BoshTransport>();
    // The request being handled while the engine opens a session (it does so synchronously).
    let creating: HttpRequest | undefined;
    const manager = new BoshManager({
      maxWait: module.option('maxWait'),
      maxHold: module.option('maxHold'),
      inactivity: module.option('inactivity'),
      polling: module.option('polling'),
      maxPause: module.option('maxPause'),
      maxBodyBytes: module.option('maxBodySize'),
    }, {
      isHost: (to) => module.hosts.kind(to) === 'virtualhost',
      open: (bosh, creation) => {
        if (creating!.secure) secureSessions.add(bosh);
        const transport = new BoshTransport(creating!.ip, creating!.secure, bosh, endPointOf(creating!.clientTls));
        transports.set(bosh, transport);
        return open(module, clients, bosh, transport, creation);
      },
    });
    const origins = module.option('origins');
    const cors = { origins: origins.includes('*') ? '*' as const : origins, headers: ['Content-Type'] };

    // XEP-0124 §7.1: the session's 'content' (default text/xml). Whatever type a client asks for,
    // the response is never a document a browser runs: it carries payloads other people wrote
    // (and error replies echo what was sent), so a page navigated here must not execute them.
    const reply = (body: string, contentType = DEFAULT_CONTENT_TYPE) => ({
      status: 200,
      headers: {
        'Content-Type': contentType,
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
      },
      body,
    });
    module.http.route('POST', BOSH_PATH, async (req) => {
      const text = await req.text();
      const sid = /^\s*(?:<\?xml[^>]*>\s*)?<body\s[^>]*?\bsid\s*=\s*(['"])([^'"]*)\1/.exec(text)?.[2];
      const session = sid === undefined ? undefined : manager.get(sid);
      // XEP-0124 §15.1: a session is secure only if every request of it is. One created over
      // HTTPS is never continued over plain HTTP (where its sid and payloads would be readable).
      if (session && !req.secure && secureSessions.has(session)) {
        module.log.warn('BOSH session from %s continued over plain HTTP: terminated', req.ip);
        session.close('policy-violation');
        return reply(terminateBody('policy-violation'), session.contentType);
      }
      // §20.1: the requests of a session created over TLS at this server come over connections
      // presenting the same certificate (which also keeps its one channel binding true). Another
      // one: the connection is closed, the session is not terminated (that would hand whoever can
      // make the client connect elsewhere a way to end it).
      const expected = session && transports.get(session)?.endPoint;
      if (expected && req.clientTls && !expected.equals(endPointOf(req.clientTls) ?? Buffer.alloc(0))) {
        module.log.warn('BOSH request from %s over a connection with another certificate than its session: connection closed', req.ip);
        req.raw.socket.destroy();
        return reply('');
      }
      // The session's inbound rate (limits): this request waits its turn.
      const transport = session && transports.get(session);
      if (transport && !(await transport.admit(Buffer.byteLength(text)))) {
        module.log.warn('BOSH session from %s sent more requests than allowed while rate limited: terminated', req.ip);
        session!.close('policy-violation');
        return reply(terminateBody('policy-violation'), session!.contentType);
      }
      // One debug line per request, in the order the engine takes them (never the sid: it is a capability).
      module.log('BOSH request rid=%s %s from %s', /\brid\s*=\s*(['"])(\d{1,16})\1/.exec(text.slice(0, 1024))?.[2] ?? '-', session ? 'in a session' : 'to create one', req.ip);
      creating = req;
      let answer: Promise<string>;
      try {
        answer = manager.handle(text);
      } finally {
        creating = undefined;
      }
      const xml = await answer;
      // A creation response names its new session.
      const of = session ?? (sid === undefined ? manager.get(/^<body [^>]*?\bsid='([^']+)'/.exec(xml)?.[1] ?? '') : undefined);
      // §17.1: clients without 'ver' get the HTTP error codes (a failed creation: from its own body).
      const legacy = of ? of.legacy : sid === undefined && !/^\s*(?:<\?xml[^>]*>\s*)?<body\s[^>]*?\bver\s*=/.test(text);
      const status = legacy ? legacyHttpStatus(xml) : undefined;
      if (status !== undefined) return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }, body: '' };
      return reply(xml, of?.contentType);
    }, { cors, timeoutMs: (module.option('maxWait') + 15) * 1000, maxBodyBytes: module.option('maxBodySize') });
    module.http.route('GET', BOSH_PATH, () => ({
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
      body: 'This is an XMPP over BOSH (XEP-0124, XEP-0206) endpoint: POST <body/> requests to it with an XMPP client.\n',
    }), { cors });

    // XEP-0156: listed in host-meta.
    module.hookGlobal('connection-methods', ({ base, methods }) => {
      methods.push({ rel: 'urn:xmpp:alt-connections:xbosh', href: `${base}${BOSH_PATH}` });
    });
  },
  unload() {
    // Sessions end with the server (server-stopping) or when their clients stop polling.
  },
});

/** The stanzas among payloads (stream-level elements are not re-routed). */
function stanzasOf(payloads: (Element | string)[]): Stanza[] {
  return payloads.filter((p): p is Stanza => typeof p !== 'string' && isStanzaKind(p.name));
}

function open(
  module: GlobalModuleApi<typeof OPTIONS>,
  clients: ClientStreams,
  bosh: BoshSession,
  transport: BoshTransport,
  creation: BoshCreation,
): BoshSessionHooks {
  /** The end was reported to the client connection. */
  let done = false;
  /** We ended it (close, abandon): the engine's report of the end is ours. */
  let closing = false;
  let stallTimer: NodeJS.Timeout | undefined;
  const describe = () => client.session.full_jid ?? client.session.username ?? 'unauthenticated client';
  const end = (graceful: boolean, reason?: CloseReason, undelivered?: Stanza[]) => {
    if (done) return;
    done = true;
    clearTimeout(stallTimer);
    transport.stop();
    client.ended(graceful, reason, undelivered);
  };
  const close = (reason?: CloseReason) => {
    if (closing || done) return;
    closing = true;
    if (reason) {
      const quiet = reason.condition === 'system-shutdown' || reason.condition === 'conflict';
      module.log[quiet ? 'info' : 'warn']('closing BOSH session of %s from %s: %s%s', describe(), transport.ip, reason.condition, reason.text ? ` (${reason.text})` : '');
      // XEP-0124's own condition for a server going down; any other stream error inside a
      // terminate body with remote-stream-error (XEP-0206 §4).
      if (reason.condition === 'system-shutdown') bosh.close('system-shutdown');
      else bosh.close(undefined, streamErrorElement(reason.condition, reason.text));
    } else {
      bosh.close();
    }
    end(true, reason);
  };
  const sendQueueLimit = () => module.limits(client.session.host).sendQueue || Infinity;

  const client: ClientStream = clients.accept(transport, {
    // The session creation response (and each restart's) is the stream header (XEP-0206 §3).
    sendHeader: () => bosh.streamId,
    // `serialised`: the stanza's XML when stream management made it (written without serialising again).
    send: (x, serialised) => {
      if (closing || done) return false;
      transport.lastActivity = Date.now();
      const ok = bosh.send(x, serialised);
      // Past the bound, no request came for STALL_MS to take them: the client does not poll.
      if (bosh.queued > sendQueueLimit() && stallTimer === undefined) {
        stallTimer = setTimeout(() => {
          stallTimer = undefined;
          if (!done && bosh.queued > sendQueueLimit()) client.sendQueueFull();
        }, STALL_MS);
        stallTimer.unref();
      }
      return ok;
    },
    close,
    queued: () => bosh.queued,
    abandon: (reason, beforeEnd) => {
      if (done) return;
      closing = true;
      const undelivered = stanzasOf(bosh.takeQueued());
      module.log.warn('closing BOSH session of %s from %s: %s (%s; %d payloads waiting)', describe(), transport.ip, reason.condition, reason.text ?? '', undelivered.length);
      bosh.close(undefined, streamErrorElement(reason.condition, reason.text));
      beforeEnd(undelivered);
      end(true, reason);
    },
    setReadRate: (rate, burst) => transport.shaper.set(rate, burst),
  });
  const header = { to: creation.to, version: creation.xmppVersion, 'xml:lang': creation.lang, from: creation.from };
  client.streamStart(header);

  return {
    deliver: (elements: Element[]) => {
      transport.lastActivity = Date.now();
      for (const el of elements) client.element(el);
    },
    restart: () => {
      // XEP-0206 §5: after SASL success the client asks for a restart; the response carries the new features.
      client.session.notopen = true;
      client.streamStart(header);
    },
    ended: (reason) => {
      if (closing || done) return;
      if (reason.graceful) {
        // The client terminated: behind what it sent before (its last payloads, an SM <a/>).
        module.log('BOSH session of %s from %s terminated by the client', describe(), transport.ip);
        transport.stop();
        client.peerClosed(() => end(true));
        return;
      }
      module.log('BOSH session of %s from %s ended: %s', describe(), transport.ip, reason.condition);
      // No request for `inactivity` seconds: like a dropped connection (stream management may keep
      // the session for resumption; otherwise what it held goes where an unavailable resource's goes).
      if (reason.condition === 'inactivity') end(false, { condition: 'connection-timeout', text: 'BOSH session inactive' }, stanzasOf(reason.undelivered));
      else end(true, { condition: 'connection-timeout', text: `BOSH ${reason.condition ?? 'error'}` });
    },
  };
}
