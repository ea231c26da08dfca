// BOSH (XEP-0124) carrying XMPP (XEP-0206): the session engine, without HTTP or XMPP of its own.
// The glue (mod_bosh, doc/web.md) hands it each POSTed body as text and answers the HTTP request
// with the string the returned Promise resolves to; the engine tells the glue, through
// BoshSessionHooks, what the client sent (in rid order), when it asks for a stream restart and
// when the session ends, and takes what the XMPP session sends with `send()`. Time comes from an
// injected clock, so every rule is testable without waiting.
//
// Covered: session creation (wait, hold, requests, inactivity, polling, maxpause, ver, secure, ack,
// XEP-0206's xmpp:version/restartlogic/authid), the rid window and in-order processing,
// retransmission of the buffered response for a repeated rid, item-not-found for a rid outside the
// window or no longer buffered, overactivity and too-frequent polling (policy-violation), request
// acknowledgements (ack) and response reports (report/time), pause, terminate, xmpp:restart,
// holding requests and answering them with queued payloads or empty bodies after `wait`, the
// inactivity timeout, terminal errors from the server's side (remote-stream-error, shutdown), the
// session's 'content' type, and which terminal conditions a client without 'ver' gets as HTTP
// error codes (§17.1, legacyHttpStatus; the glue sends them).
// Not covered: key sequencing (§15, optional), multiple streams per session (§16, optional).
import { randomBytes } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { NS, XmppStreamParser, isStanzaKind, stanzaWithClientNs } from '../../core/api.ts';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';
/** The newest XEP-0124 version implemented. */
export const BOSH_VERSION = '1.11';
/** Content-Type of responses unless the session asked for another (XEP-0124 §7.1). */
export const DEFAULT_CONTENT_TYPE = 'text/xml; charset=utf-8';
/** A media type with parameters (RFC 9110 §8.3.1): what 'content' may be. */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \t]*;[ \t]*${TOKEN}=(?:${TOKEN}|"[ !#-[\\]-~]*"))*$`);
/** The largest rid a client may use (2^53 - 1, XEP-0124 §14.1). */
const MAX_RID = Number.MAX_SAFE_INTEGER;

/** Terminal binding conditions (XEP-0124 §17.2). */
export type BoshCondition =
  | 'bad-request' | 'host-gone' | 'host-unknown' | 'improper-addressing' | 'internal-server-error'
  | 'item-not-found' | 'other-request' | 'policy-violation' | 'remote-connection-failed'
  | 'remote-stream-error' | 'see-other-uri' | 'system-shutdown' | 'undefined-condition';

export interface BoshOptions {
  /** Longest time (s) a request is held; a client's smaller `wait` wins. */
  maxWait: number;
  /** Most requests held at once; a client's smaller `hold` wins. */
  maxHold: number;
  /** Seconds without any request held after which the session is dropped. */
  inactivity: number;
  /** Shortest allowed polling interval (s). */
  polling: number;
  /** Longest pause (s) a client may ask for; 0 offers no pause. */
  maxPause: number;
  /** A response the client has not acknowledged after this long is reported (ms). */
  reportAfterMs: number;
  /** Responses kept for retransmission beyond `requests`, while unacknowledged. */
  maxBufferedResponses: number;
  /** Largest request body (bytes), and the size limit of each payload in it. */
  maxBodyBytes: number;
  /** Element nesting limit inside a body. */
  maxDepth: number;
}

export const BOSH_DEFAULTS: BoshOptions = {
  maxWait: 60,
  maxHold: 1,
  inactivity: 60,
  polling: 5,
  maxPause: 120,
  reportAfterMs: 2000,
  maxBufferedResponses: 16,
  maxBodyBytes: 256 * 1024,
  maxDepth: 64,
};

export type BoshTimer = unknown;

export interface BoshClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): BoshTimer;
  clearTimeout(timer: BoshTimer): void;
}

export const systemClock: BoshClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};

/** How the engine talks to the XMPP session behind it. */
export interface BoshSessionHooks {
  /** Payloads from the client, in rid order (stanzas without their jabber:client xmlns, as on TCP). */
  deliver(elements: Element[]): void;
  /** `xmpp:restart='true'` (XEP-0206 §5): restart the stream; send the new features with send(). */
  restart(): void;
  /** The session is over (client terminate, inactivity, an error, close()); called once. */
  ended(reason: BoshEnd): void;
}

export interface BoshEnd {
  /** The client terminated it (type='terminate'). */
  graceful: boolean;
  /** Why, when not graceful: a terminal condition, or 'inactivity'. */
  condition?: BoshCondition | 'inactivity';
  /** What the session still had queued for the client and no response carried (inactivity). */
  undelivered: (Element | string)[];
}

/** The session creation request's attributes the glue needs to open the XMPP session. */
export interface BoshCreation {
  to: string;
  lang: string;
  /** xmpp:version (XEP-0206), if given. */
  xmppVersion: string | undefined;
  from: string | undefined;
}

export interface BoshManagerCallbacks {
  /** Whether `to` names a host served here (else host-unknown). */
  isHost(to: string): boolean;
  /** A session is created: open the XMPP session behind it and return its hooks. May send() right away (stream features). */
  open(session: BoshSession, creation: BoshCreation): BoshSessionHooks;
}

/** A parsed request body. */
type Parsed = { ok: true; body: Element } | { ok: false; text: string };

/**
 * XEP-0124 §17.1: a client that sent no 'ver' at session creation predates terminal binding
 * conditions; it gets these three as the HTTP status they superseded (the session is over all the same).
 */
export function legacyHttpStatus(xml: string): number | undefined {
  const m = /^<body [^>]*\btype='terminate' condition='(bad-request|policy-violation|item-not-found)'/.exec(xml);
  return m ? ({ 'bad-request': 400, 'policy-violation': 403, 'item-not-found': 404 } as const)[m[1] as 'bad-request'] : undefined;
}

/** A terminal binding error body. */
export function terminateBody(condition?: BoshCondition, payload = ''): string {
  const c = condition ? ` condition='${condition}'` : '';
  const streamNs = payload ? ` xmlns:stream='${NS.streams}'` : '';
  return `<body xmlns='${NS_HTTPBIND}'${streamNs} type='terminate'${c}${payload ? `>${payload}</body>` : '/>'}`;
}

/**
 * Parse one POSTed body with the stream parser (restricted XML, size and depth limits as on TCP):
 * exactly one `<body/>` in the httpbind namespace. Payloads without their own xmlns are in the
 * httpbind namespace (XML namespace rules), and get it written out; stanzas in jabber:client lose
 * their xmlns, as the TCP parser gives them.
 */
export function parseBody(text: string, maxBytes: number, maxDepth: number): Parsed {
  const parser = new XmppStreamParser({ maxStanzaSize: maxBytes, maxDepth: maxDepth + 1 });
  const got: Element[] = [];
  let error: string | undefined;
  let ended = false;
  parser.on('stanza', (el) => got.push(el));
  parser.on('error', (_c, t) => (error ??= t));
  parser.on('streamEnd', () => (ended = true));
  let body = text;
  const decl = /^\s*<\?xml\s[^?]*\?>/.exec(body);
  if (decl) {
    if (/encoding\s*=\s*['"](?!utf-8['"])/i.test(decl[0])) return { ok: false, text: 'bodies are UTF-8' };
    body = body.slice(decl[0].length);
  }
  parser.write(`<stream:stream xmlns='${NS.client}' xmlns:stream='${NS.streams}'>`);
  parser.write(body);
  parser.write('</stream:stream>');
  if (error) return { ok: false, text: error };
  if (!ended || got.length !== 1) return { ok: false, text: 'the request must be one <body/> element' };
  const el = got[0]!;
  if (el.name !== 'body' || el.attrs.xmlns !== NS_HTTPBIND) return { ok: false, text: `the request must be <body xmlns='${NS_HTTPBIND}'/>` };
  for (const child of el.children) {
    if (typeof child === 'string') {
      if (child.trim()) return { ok: false, text: 'text is not allowed directly inside <body/>' };
      continue;
    }
    const ns = child.attrs.xmlns as string | undefined;
    if (ns === undefined && !child.name.includes(':')) child.attrs.xmlns = NS_HTTPBIND;
    else if (ns === NS.client && isStanzaKind(child.name)) delete child.attrs.xmlns;
  }
  return { ok: true, body: el };
}

/**
 * Serialise a payload for a response: stanzas in jabber:client (the declaration written first,
 * after the name), `stream:` elements as they are (the body binds the prefix). `serialised` is
 * `el.toString()` when stream management already made it (ClientStreamIo.send): a stanza is then
 * that string with the declaration inserted after the tag name, as it is inserted into a fresh
 * serialisation otherwise — the same text, without serialising twice.
 */
export function payloadXml(el: Element | string, serialised?: string): string {
  if (typeof el === 'string') return el;
  if (!isStanzaKind(el.name)) return el.toString();
  return stanzaWithClientNs(el, serialised);
}

/** A payload waiting for a response, with its XML when stream management made it. */
interface Queued {
  payload: Element | string;
  serialised: string | undefined;
}

const queuedXml = (q: Queued): string => payloadXml(q.payload, q.serialised);

function escapeAttr(v: string): string {
  return v.replace(/[&<>'"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === "'" ? '&apos;' : '&quot;'));
}

function intAttr(v: unknown, max = MAX_RID): number | undefined {
  if (typeof v !== 'string' || !/^\d{1,16}$/.test(v)) return undefined;
  const n = Number(v);
  return n <= max ? n : undefined;
}

function versionNumber(v: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** The lower of the client's `ver` and ours (XEP-0124 §7.2). */
function negotiateVersion(clientVer: string | undefined): string {
  const ours = versionNumber(BOSH_VERSION)!;
  const theirs = clientVer ? versionNumber(clientVer) : undefined;
  if (!theirs) return BOSH_VERSION;
  return theirs[0] < ours[0] || (theirs[0] === ours[0] && theirs[1] < ours[1]) ? `${theirs[0]}.${theirs[1]}` : BOSH_VERSION;
}

/** An HTTP request waiting for its answer. */
interface Held {
  rid: number;
  resolve(xml: string): void;
  timer: BoshTimer | undefined;
  /** A pause request: answered without payloads, and not buffered. */
  pause: boolean;
}

/** A request received ahead of a missing rid. */
interface Early {
  body: Element;
  resolve(xml: string): void;
}

export class BoshManager {
  private readonly sessions = new Map<string, BoshSession>();
  readonly options: BoshOptions;

  constructor(
    options: Partial<BoshOptions>,
    private readonly callbacks: BoshManagerCallbacks,
    private readonly clock: BoshClock = systemClock,
  ) {
    this.options = { ...BOSH_DEFAULTS, ...options };
  }

  get size(): number {
    return this.sessions.size;
  }

  get(sid: string): BoshSession | undefined {
    return this.sessions.get(sid);
  }

  /** One POSTed body → the response body (always HTTP 200, XEP-0124 §17). */
  handle(text: string): Promise<string> {
    const parsed = parseBody(text, this.options.maxBodyBytes, this.options.maxDepth);
    if (!parsed.ok) return Promise.resolve(terminateBody('bad-request'));
    const body = parsed.body;
    const sid = body.attrs.sid as string | undefined;
    if (sid === undefined) return Promise.resolve(this.create(body));
    const session = this.sessions.get(sid);
    if (!session) return Promise.resolve(terminateBody('item-not-found'));
    return session.request(body);
  }

  /** End every session (server shutdown): held requests get the terminal body. */
  closeAll(condition: BoshCondition = 'system-shutdown'): void {
    for (const s of [...this.sessions.values()]) s.close(condition);
  }

  private create(body: Element): string {
    const a = body.attrs as Record<string, string | undefined>;
    const rid = intAttr(a.rid);
    const wait = intAttr(a.wait, 86_400);
    const hold = intAttr(a.hold, 1000);
    const to = a.to;
    if (rid === undefined || wait === undefined || hold === undefined) return terminateBody('bad-request');
    // §17.2: the domain is required (no 'route' to another server is served).
    if (!to) return terminateBody('improper-addressing');
    if (body.children.some((c) => typeof c !== 'string')) return terminateBody('bad-request');
    // §7.1: 'content' is the Content-Type of every response of the session (a header value: only
    // a well-formed media type).
    if (a.content !== undefined && !MEDIA_TYPE.test(a.content)) return terminateBody('bad-request');
    if (!this.callbacks.isHost(to)) return terminateBody('host-unknown');
    const o = this.options;
    const session = new BoshSession(this.clock, o, {
      rid,
      wait: Math.min(wait, o.maxWait),
      hold: Math.min(hold, o.maxHold),
      ack: a.ack === '1',
      ver: negotiateVersion(a.ver),
      contentType: a.content ?? DEFAULT_CONTENT_TYPE,
      legacy: a.ver === undefined,
    }, () => this.sessions.delete(session.sid));
    this.sessions.set(session.sid, session);
    return session.start(this.callbacks, { to, lang: a['xml:lang'] ?? 'en', xmppVersion: a['xmpp:version'], from: a.from });
  }
}

interface SessionParams {
  rid: number;
  wait: number;
  hold: number;
  ack: boolean;
  ver: string;
  contentType: string;
  legacy: boolean;
}

export class BoshSession {
  /** Unpredictable session id (XEP-0124 §7.2, §15.1). */
  readonly sid = randomBytes(16).toString('base64url');
  /** The stream id of the XMPP stream inside (XEP-0206 authid). */
  readonly streamId = randomBytes(12).toString('base64url');
  readonly wait: number;
  readonly hold: number;
  readonly requests: number;
  readonly ver: string;
  /** The HTTP Content-Type of every response (the creation request's 'content', §7.1). */
  readonly contentType: string;
  /** The client sent no 'ver': it gets §17.1's HTTP error codes instead of some terminal conditions. */
  readonly legacy: boolean;
  private hooks: BoshSessionHooks | undefined;
  private readonly ackMode: boolean;
  /** Highest rid processed, all lower ones too. */
  private lastRid: number;
  private readonly held: Held[] = [];
  private readonly early = new Map<number, Early>();
  private readonly buffer = new Map<number, { xml: string; sentAt: number }>();
  private queue: Queued[] = [];
  private flushScheduled = false;
  private inactivityTimer: BoshTimer | undefined;
  private pauseSeconds: number | undefined;
  private lastArrival: number | undefined;
  /** The previous new request was empty, and whether its response carried payloads (polling rule, §12). */
  private previousWasEmpty = false;
  private previousGotPayload = false;
  private report: { rid: number; time: number } | undefined;
  private ended = false;

  constructor(
    private readonly clock: BoshClock,
    private readonly options: BoshOptions,
    params: SessionParams,
    private readonly remove: () => void,
  ) {
    this.lastRid = params.rid;
    this.wait = params.wait;
    this.hold = params.hold;
    this.requests = params.hold + 1;
    this.ackMode = params.ack;
    this.ver = params.ver;
    this.contentType = params.contentType;
    this.legacy = params.legacy;
  }

  /** @internal The session creation response (XEP-0124 §7.2, XEP-0206 §3). */
  start(callbacks: BoshManagerCallbacks, creation: BoshCreation): string {
    const o = this.options;
    const attrs: Record<string, string> = {
      xmlns: NS_HTTPBIND,
      'xmlns:xmpp': NS_XBOSH,
      'xmlns:stream': NS.streams,
      sid: this.sid,
      wait: String(this.wait),
      hold: String(this.hold),
      requests: String(this.requests),
      inactivity: String(o.inactivity),
      polling: String(o.polling),
      ver: this.ver,
      from: creation.to,
      secure: 'true',
      authid: this.streamId,
      'xmpp:version': '1.0',
      'xmpp:restartlogic': 'true',
    };
    if (o.maxPause > 0) attrs.maxpause = String(o.maxPause);
    if (this.ackMode) attrs.ack = String(this.lastRid);
    // What the XMPP session sends while it opens (the stream features) goes in this response.
    this.hooks = callbacks.open(this, creation);
    if (this.ended) {
      // Refused while opening (a stream error: too many connections, …): that is the answer.
      this.remove();
      return this.terminal ?? terminateBody('undefined-condition');
    }
    const payload = this.queue.map(queuedXml).join('');
    this.queue = [];
    const xml = `<body${Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeAttr(v)}'`).join('')}>${payload}</body>`;
    this.buffer.set(this.lastRid, { xml, sentAt: this.clock.now() });
    this.lastArrival = this.clock.now();
    this.armInactivity();
    return xml;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Requests being held now. */
  get heldCount(): number {
    return this.held.length;
  }

  /** What the XMPP session sends to the client: queued, and sent with the next response. */
  send(x: Element | string, serialised?: string): boolean {
    if (this.ended) return false;
    this.queue.push({ payload: x, serialised });
    this.scheduleFlush();
    return true;
  }

  /** Payloads waiting for a request to carry them. */
  get queued(): number {
    return this.queue.length;
  }

  /** Take the payloads waiting for a request (the client is given up on; the caller routes them). */
  takeQueued(): (Element | string)[] {
    return this.queue.splice(0).map((q) => q.payload);
  }

  /**
   * End the session from the server's side: the oldest held request (or the next request, within
   * the inactivity time) gets queued payloads and `type='terminate'` with the condition —
   * `remote-stream-error` when `streamError` (a `<stream:error/>`) is included (XEP-0206 §4).
   */
  close(condition?: BoshCondition, streamError?: Element): void {
    if (this.ended) return;
    const payload = [...this.queue.map(queuedXml), streamError ? payloadXml(streamError) : ''].join('');
    this.queue = [];
    const final = terminateBody(streamError ? 'remote-stream-error' : condition, payload);
    this.finish({ graceful: false, condition: streamError ? 'remote-stream-error' : condition ?? 'undefined-condition', undelivered: [] }, final);
  }

  /** @internal One request of this session (already parsed). */
  request(body: Element): Promise<string> {
    return new Promise<string>((resolve) => {
      if (this.ended) return resolve(this.terminal ?? terminateBody('item-not-found'));
      const a = body.attrs as Record<string, string | undefined>;
      const rid = intAttr(a.rid);
      if (rid === undefined) return resolve(this.fail('bad-request'));
      this.clearInactivity();
      // The same rid again while we still have its request (resent after a broken connection):
      // the newer HTTP request takes over, the older one gets an empty body.
      const heldTwin = this.held.find((h) => h.rid === rid);
      if (heldTwin) {
        const old = heldTwin.resolve;
        heldTwin.resolve = resolve;
        return old(this.wrap(''));
      }
      const earlyTwin = this.early.get(rid);
      if (earlyTwin) {
        this.early.set(rid, { body, resolve });
        return earlyTwin.resolve(this.wrap(''));
      }
      if (rid <= this.lastRid) return resolve(this.repeat(rid));
      // XEP-0124 §14.2: the window is `requests` rids above the last one processed.
      if (rid > this.lastRid + this.requests) return resolve(this.fail('item-not-found'));
      // §11: more unanswered new requests than `requests`, unless the last pauses or terminates.
      const outstanding = this.held.length + this.early.size + 1;
      if (outstanding > this.requests && a.pause === undefined && a.type !== 'terminate') return resolve(this.fail('policy-violation'));
      if (rid !== this.lastRid + 1) {
        this.early.set(rid, { body, resolve });
        return;
      }
      this.process(body, resolve);
      // Requests that arrived ahead of this one, now in order.
      for (let next = this.early.get(this.lastRid + 1); next && !this.ended; next = this.early.get(this.lastRid + 1)) {
        this.early.delete(this.lastRid + 1);
        this.process(next.body, next.resolve);
      }
      if (!this.ended && this.held.length === 0 && this.early.size === 0) this.armInactivity();
    });
  }

  /** A request in rid order. */
  private process(body: Element, resolve: (xml: string) => void): void {
    const a = body.attrs as Record<string, string | undefined>;
    const rid = this.lastRid + 1;
    this.lastRid = rid;
    const now = this.clock.now();
    const payloads = body.children.filter((c): c is Element => typeof c !== 'string');
    const isPause = a.pause !== undefined;
    const isTerminate = a.type === 'terminate';
    const isRestart = a['xmpp:restart'] === 'true' || a['xmpp:restart'] === '1';
    const empty = payloads.length === 0 && !isPause && !isTerminate && !isRestart;
    const previousArrival = this.lastArrival;
    this.lastArrival = now;
    this.pauseSeconds = undefined;

    // §11 and §12: polling faster than `polling` allows.
    const tooSoon = previousArrival !== undefined && now - previousArrival < this.options.polling * 1000;
    if (empty && tooSoon) {
      const polling = this.hold === 0 || this.wait === 0;
      if (polling ? this.previousWasEmpty && !this.previousGotPayload : this.held.length + 1 >= this.requests) {
        resolve(this.fail('policy-violation'));
        return;
      }
    }

    // §9.2: the client acknowledges responses; an old unacknowledged one is reported.
    if (this.ackMode) {
      // No ack: the client has every response to its earlier requests (§9.2).
      const ack = a.ack === undefined ? rid - 1 : intAttr(a.ack);
      if (ack !== undefined) {
        for (const r of [...this.buffer.keys()]) if (r <= ack) this.buffer.delete(r);
        const missing = this.buffer.get(ack + 1);
        if (missing && ack + 1 < rid && now - missing.sentAt >= this.options.reportAfterMs) {
          this.report = { rid: ack + 1, time: now - missing.sentAt };
        }
      }
    }

    // §10: a pause no longer than maxpause (none offered: no pause at all). XEP-0124 names no
    // condition for a longer one; the client broke the session's rules: policy-violation (§17.2).
    const pause = isPause ? intAttr(a.pause, 86_400) : undefined;
    if (isPause && (pause === undefined || this.options.maxPause === 0 || pause > this.options.maxPause)) {
      resolve(this.fail('policy-violation'));
      return;
    }

    if (isRestart && payloads.length) {
      resolve(this.fail('bad-request'));
      return;
    }

    this.previousWasEmpty = empty;
    this.previousGotPayload = false;
    // Payloads are forwarded whatever else the request asks (a pause or terminate may carry some).
    if (payloads.length) this.hooks?.deliver(payloads);
    if (this.ended) {
      // Delivering closed the session (e.g. a stream error): this request gets the final body.
      resolve(this.terminal ?? terminateBody('undefined-condition'));
      return;
    }

    if (pause !== undefined) {
      // §10: answer everything held now; the pause response carries no payloads (what is queued
      // waits for the first request after the pause). The inactivity period is the pause until
      // the next request.
      while (this.held.length) this.respondOldest();
      this.pauseSeconds = pause;
      this.held.push({ rid, resolve, timer: undefined, pause: true });
      this.respondOldest();
      return;
    }

    if (isTerminate) {
      // §13: payloads forwarded above; everything held is answered, then this one.
      while (this.held.length) this.respondOldest();
      const final = terminateBody(undefined, this.queue.map(queuedXml).join(''));
      this.queue = [];
      resolve(final);
      this.finish({ graceful: true, undelivered: [] }, final);
      return;
    }

    if (isRestart) this.hooks?.restart();

    const entry: Held = { rid, resolve, timer: undefined, pause: false };
    this.held.push(entry);
    if (this.report) {
      this.respondOldest();
      return;
    }
    // §8: never hold more than `hold`; the oldest is answered first.
    while (this.held.length > this.hold) this.respondOldest();
    if (this.held.includes(entry)) {
      if (this.queue.length) this.scheduleFlush();
      else entry.timer = this.clock.setTimeout(() => this.expire(entry), this.wait * 1000);
    }
  }

  /** `wait` passed with nothing to send: an empty body. */
  private expire(entry: Held): void {
    entry.timer = undefined;
    if (!this.held.includes(entry)) return;
    while (this.held.length && this.held[0] !== entry) this.respondOldest();
    this.respondOldest();
    if (this.held.length === 0 && this.early.size === 0) this.armInactivity();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Stanzas sent in the same tick leave in one response.
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (this.ended || this.queue.length === 0 || this.held.length === 0) return;
      this.respondOldest();
      if (this.held.length === 0 && this.early.size === 0) this.armInactivity();
    });
  }

  /** Answer the oldest held request with what is queued (nothing for a pause request). */
  private respondOldest(): void {
    const entry = this.held.shift();
    if (!entry) return;
    if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
    let payload = '';
    if (!entry.pause) {
      payload = this.queue.map(queuedXml).join('');
      this.queue = [];
    }
    const extra: Record<string, string> = {};
    // §9.1: ack = highest rid received in order, when it is not the one answered.
    if (this.ackMode && this.lastRid !== entry.rid) extra.ack = String(this.lastRid);
    if (this.report && !entry.pause) {
      extra.report = String(this.report.rid);
      extra.time = String(this.report.time);
      this.report = undefined;
    }
    const xml = this.wrap(payload, extra);
    if (!entry.pause) {
      this.buffer.set(entry.rid, { xml, sentAt: this.clock.now() });
      this.trimBuffer();
      if (entry.rid === this.lastRid && payload) this.previousGotPayload = true;
    }
    entry.resolve(xml);
  }

  private wrap(payload: string, extra: Record<string, string> = {}): string {
    let attrs = `xmlns='${NS_HTTPBIND}'`;
    if (payload) attrs += ` xmlns:stream='${NS.streams}'`;
    for (const [k, v] of Object.entries(extra)) attrs += ` ${k}='${v}'`;
    return payload ? `<body ${attrs}>${payload}</body>` : `<body ${attrs}/>`;
  }

  /** Keep `requests` responses, or more while unacknowledged, at most maxBufferedResponses. */
  private trimBuffer(): void {
    const keep = this.ackMode ? Math.max(this.requests, this.options.maxBufferedResponses) : this.requests;
    while (this.buffer.size > keep) this.buffer.delete(this.buffer.keys().next().value!);
  }

  /** §14.3: a rid already processed gets its buffered response again, or item-not-found. */
  private repeat(rid: number): string {
    const buffered = this.buffer.get(rid);
    if (buffered) {
      this.armInactivityIfIdle();
      return buffered.xml;
    }
    return this.fail('item-not-found');
  }

  private fail(condition: BoshCondition): string {
    const final = terminateBody(condition);
    this.finish({ graceful: false, condition, undelivered: [] }, final);
    return final;
  }

  /** The body the next request gets after the session ended from our side. */
  private terminal: string | undefined;

  private finish(reason: BoshEnd, final: string): void {
    if (this.ended) return;
    this.ended = true;
    this.clearInactivity();
    // The oldest held request carries the final body; others (and early ones) are told too.
    const condition = reason.condition === 'inactivity' ? undefined : reason.condition;
    const first = this.held.shift();
    for (const h of this.held.splice(0)) {
      if (h.timer !== undefined) this.clock.clearTimeout(h.timer);
      h.resolve(terminateBody(condition));
    }
    for (const e of this.early.values()) e.resolve(terminateBody('other-request'));
    this.early.clear();
    this.queue = [];
    if (first) {
      if (first.timer !== undefined) this.clock.clearTimeout(first.timer);
      first.resolve(final);
      // A request still being processed (its payload made us close) gets the condition alone.
      this.terminal = terminateBody(condition);
      this.remove();
    } else if (reason.graceful || reason.condition === 'inactivity') {
      this.remove();
    } else {
      // Nobody is waiting: keep the final body for the client's next request, for a while.
      this.terminal = final;
      this.clock.setTimeout(() => this.remove(), (this.pauseSeconds ?? this.options.inactivity) * 1000);
    }
    this.hooks?.ended(reason);
  }

  private armInactivity(): void {
    this.clearInactivity();
    if (this.ended) return;
    const seconds = this.pauseSeconds ?? this.options.inactivity;
    // §10: terminated without telling the client.
    this.inactivityTimer = this.clock.setTimeout(() => {
      this.inactivityTimer = undefined;
      if (this.held.length === 0) this.finish({ graceful: false, condition: 'inactivity', undelivered: this.queue.map((q) => q.payload) }, terminateBody());
    }, seconds * 1000);
  }

  private armInactivityIfIdle(): void {
    if (this.held.length === 0 && this.early.size === 0) this.armInactivity();
  }

  private clearInactivity(): void {
    if (this.inactivityTimer !== undefined) this.clock.clearTimeout(this.inactivityTimer);
    this.inactivityTimer = undefined;
  }
}
