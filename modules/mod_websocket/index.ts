//% requires_core_features: sessions-v1, stanza-events-v1, stanza-dispatch-ordered, module-capabilities, http-routes
// XMPP over WebSocket (RFC 7395) at /xmpp-websocket: the `xmpp` sub-protocol, one element per
// message (framing.ts), and the same client connection as TCP (core ClientStreams: header checks,
// features, SASL, bind, stanzas to the router in order, the <close/> behind them, limits, stream
// resumption to and from any transport, shutdown), so a WebSocket session is a normal session.
// Stanza limits and the unauthenticated timeout are the c2s ones (options `websocket: { … }`,
// same names and defaults as `c2s`); rate shaping pauses the socket under the WebSocket; the send
// queue counts frames the socket has not taken yet; keepalives are WebSocket pings. doc/web.md.
import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { WebSocket } from 'ws';
import { ClientStreams, defineModule, isStanzaKind, ReadShaper, STALL_MS, streamLimits, STREAM_OPTIONS, tlsChannelBinding, tlsChannelBindingTypes, type CloseReason, type GlobalModuleApi, type Stanza, type StreamLimits, type StreamTransport, type WebSocketContext } from '../../core/api.ts';
import { closeFrame, FrameReader, frameElement, openFrame, streamErrorFrames, WS_SUBPROTOCOL } from './framing.ts';

export const WEBSOCKET_PATH = '/xmpp-websocket';

const OPTIONS = {
  ...STREAM_OPTIONS,
  origins: { type: 'string[]', description: "Origins of web pages allowed to connect ('*': any; XMPP authenticates in-band, no cookies)", default: ['*'] },
} as const;

/** How long we wait for the client's <close/> after ours before closing the WebSocket. */
const CLOSE_WAIT_MS = 2000;

let nextId = 1;
/** Messages held in memory while an asynchronous SASL step runs, before the socket is paused. */
const HOLD_BACKLOG = 32;

/** A WebSocket as a session's transport (`session.conn`). */
class WebSocketTransport implements StreamTransport {
  readonly id = `websocket${nextId++}`;
  readonly created = Date.now();
  lastActivity = Date.now();
  readonly service = 'websocket';
  readonly ip: string;
  readonly port: number;
  readonly secure: boolean;
  private readonly tls: TLSSocket | undefined;
  private readonly clientTls: TLSSocket | undefined;
  /** Paused by its owner (an asynchronous SASL step), apart from rate shaping. */
  private held = false;
  /** Inbound rate shaping (limits `rate`): pauses the socket under the WebSocket. */
  readonly shaper = new ReadShaper({
    pause: () => this.ws.pause(),
    resume: () => {
      if (this.held) return;
      this.ws.resume();
      this.onReadable();
    },
  });
  /**
   * Messages may be read now. Pausing stops the socket, but the messages of a chunk already read
   * still arrive: they wait (the owner's backlog) until this is true again.
   */
  get readable(): boolean {
    return !this.held && !this.shaper.shaped;
  }

  /** Called when reading may go on (the owner handles its backlog). */
  onReadable: () => void = () => undefined;

  /** The owner's backlog, told by the owner: what arrived while reading was held, in order. */
  backlog: [Buffer, boolean][] = [];

  constructor(private readonly ws: WebSocket, ctx: WebSocketContext) {
    this.ip = ctx.ip;
    this.port = ctx.tlsSocket?.remotePort ?? 0;
    this.secure = ctx.secure;
    this.tls = ctx.tlsSocket;
    this.clientTls = ctx.clientTls;
  }

  get tlsInfo(): { protocol: string | null; cipher: string } | undefined {
    const s = this.tls;
    return s ? { protocol: s.getProtocol(), cipher: s.getCipher()?.name ?? 'unknown' } : undefined;
  }

  // Channel binding (SCRAM-*-PLUS, XEP-0440) to the TLS connection under the WebSocket, when the
  // client negotiated it with us (wss:// straight to Cadence): the whole stream runs on it, as on
  // TCP. None on plain ws:// or behind a trusted proxy (`clientTls` is undefined there), so no
  // -PLUS mechanisms are offered.
  channelBinding(type: string): Buffer | undefined {
    return tlsChannelBinding(this.clientTls, type);
  }

  channelBindingTypes(): string[] {
    return tlsChannelBindingTypes(this.clientTls);
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
   * Held by the owner (an asynchronous SASL step): messages keep arriving into the backlog, so
   * that everything the client sent before the step's outcome can be told apart (and dropped on
   * success, `discardReceived`). Only a client that pipelines more than HOLD_BACKLOG messages
   * has its socket paused.
   */
  pause(): void {
    this.held = true;
  }

  /** A message arrived while held: past HOLD_BACKLOG of them the socket is paused too. */
  heldMessage(): void {
    if (this.backlog.length >= HOLD_BACKLOG) this.ws.pause();
  }

  discardReceived(): number {
    const frames = this.backlog.length;
    this.backlog.length = 0;
    return frames;
  }

  resume(): void {
    this.held = false;
    if (this.shaper.shaped) return;
    this.ws.resume();
    // Asynchronously: the owner resumes from inside its handler of the message before.
    queueMicrotask(() => this.onReadable());
  }

  destroy(): void {
    this.shaper.stop();
    this.ws.terminate();
  }
}

export default defineModule({
  scope: 'global',
  description: 'XMPP over WebSocket (RFC 7395) at /xmpp-websocket',
  capabilities: ['sessions', 'routing'],
  options: OPTIONS,
  load(module) {
    const settings = {
      stanzaSizeLimit: module.option('stanzaSizeLimit'),
      preauthStanzaSizeLimit: module.option('preauthStanzaSizeLimit'),
      maxDepth: module.option('maxDepth'),
    };
    const limits = (authenticated: boolean): StreamLimits => streamLimits(settings, authenticated);
    const clients = new ClientStreams(module, { unauthenticatedTimeout: module.option('unauthenticatedTimeout') });
    const origins = module.option('origins');
    const keepalive = module.option('keepaliveInterval') * 1000;

    module.http.websocket(WEBSOCKET_PATH, (ws, ctx) => accept(module, clients, ws, ctx, limits), {
      protocols: [WS_SUBPROTOCOL],
      requireProtocol: true,
      origins: origins.includes('*') ? '*' : origins,
      // One frame is one element: the authenticated stanza limit plus room for the framing.
      maxPayload: settings.stanzaSizeLimit + 4096,
      pingIntervalMs: keepalive > 0 ? keepalive : undefined,
    });
    // People who open the endpoint in a browser see what it is.
    module.http.route('GET', WEBSOCKET_PATH, () => ({
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
      body: 'This is an XMPP over WebSocket (RFC 7395) endpoint: connect with an XMPP client and the sub-protocol "xmpp".\n',
    }));

    // XEP-0156: listed in host-meta as ws(s)://…/xmpp-websocket.
    module.hookGlobal('connection-methods', ({ base, methods }) => {
      methods.push({ rel: 'urn:xmpp:alt-connections:websocket', href: `${base.replace(/^http/, 'ws')}${WEBSOCKET_PATH}` });
    });
  },
});

function accept(
  module: GlobalModuleApi<typeof OPTIONS>,
  clients: ClientStreams,
  ws: WebSocket,
  ctx: WebSocketContext,
  limits: (authenticated: boolean) => StreamLimits,
): void {
  const transport = new WebSocketTransport(ws, ctx);
  const reader = new FrameReader(limits(false));
  /** We sent our <close/> (or a stream error): only the client's answering <close/> matters now. */
  let closing = false;
  /** The client sent <close/>: nothing after it is read. */
  let peerClosing = false;
  /** The connection's end was reported. */
  let ended = false;
  let closeTimer: NodeJS.Timeout | undefined;

  // The send queue: frames handed to the WebSocket whose bytes have not left for the kernel (the
  // client does not read), and the stanzas among them.
  let inFlight = 0;
  const unflushed = new Set<Stanza>();
  let lastProgress = Date.now();
  let stallTimer: NodeJS.Timeout | undefined;
  /** limits.sendQueue, read at most once a second (not on every write). */
  let limit = { value: Infinity, at: 0 };
  const sendQueueLimit = () => {
    const now = Date.now();
    if (now - limit.at >= 1000) limit = { value: module.limits(client.session.host).sendQueue || Infinity, at: now };
    return limit.value;
  };
  const watchStall = () => {
    if (stallTimer !== undefined) return;
    // Past the bound the client gets STALL_MS to take something: a burst the server itself makes
    // (offline messages, the presence of a large roster) is not a stalled reader.
    stallTimer = setTimeout(() => {
      stallTimer = undefined;
      if (ended || inFlight <= sendQueueLimit()) return;
      if (Date.now() - lastProgress >= STALL_MS) client.sendQueueFull();
      else watchStall();
    }, Math.max(STALL_MS - (Date.now() - lastProgress), 10));
    stallTimer.unref();
  };

  const write = (frame: string, stanza?: Stanza): boolean => {
    if (ws.readyState !== ws.OPEN) return false;
    transport.lastActivity = Date.now();
    if (inFlight === 0) lastProgress = Date.now();
    inFlight++;
    if (stanza) unflushed.add(stanza);
    // The frames of one tick leave together (as on TCP).
    ctx.batchWrites();
    ws.send(frame, () => {
      inFlight--;
      lastProgress = Date.now();
      if (stanza) unflushed.delete(stanza);
    });
    if (inFlight > sendQueueLimit()) watchStall();
    return true;
  };
  const describe = () => {
    const s = client.session;
    return s.full_jid ?? (s.username ? `${s.username}@${s.host}` : 'unauthenticated client');
  };

  const end = (graceful: boolean, reason?: CloseReason, terminate = false) => {
    if (ended) return;
    ended = true;
    clearTimeout(stallTimer);
    transport.shaper.stop();
    if (terminate) ws.terminate();
    client.ended(graceful, reason);
  };

  /** Our close: a stream error if a reason is given, then <close/>; the client answers with its own. */
  const close = (reason?: CloseReason) => {
    if (closing || ended) return;
    closing = true;
    if (reason) {
      const quiet = reason.condition === 'system-shutdown' || reason.condition === 'conflict';
      module.log[quiet ? 'info' : 'warn']('closing WebSocket stream of %s from %s: %s%s', describe(), transport.ip, reason.condition, reason.text ? ` (${reason.text})` : '');
      for (const f of streamErrorFrames(reason.condition, reason.text)) write(f);
    } else {
      write(closeFrame());
    }
    closeTimer = setTimeout(() => ws.close(1000), CLOSE_WAIT_MS);
    closeTimer.unref();
    end(true, reason);
  };

  const client = clients.accept(transport, {
    sendHeader: () => {
      const id = randomUUID();
      write(openFrame({ from: client.session.host ?? '', id, lang: 'en' }));
      return id;
    },
    // `serialised`: the stanza's XML when stream management made it (framed without serialising again).
    send: (x, serialised) => {
      if (closing || ended) return false;
      if (typeof x === 'string') return write(x);
      return write(frameElement(x, serialised), isStanzaKind(x.name) ? (x as Stanza) : undefined);
    },
    close,
    // After SASL success the client opens a new stream with <open/> (RFC 7395 §3.5).
    reset: () => reader.restart(),
    queued: () => inFlight,
    abandon: (reason, beforeEnd) => {
      if (ended) return;
      closing = true;
      module.log.warn('closing WebSocket stream of %s from %s: %s (%s; %d frames waiting)', describe(), transport.ip, reason.condition, reason.text ?? '', inFlight);
      const undelivered = [...unflushed];
      unflushed.clear();
      ws.terminate();
      beforeEnd(undelivered);
      end(true, reason);
    },
    setReadRate: (rate, burst) => transport.shaper.set(rate, burst),
    authenticated: () => reader.setLimits(limits(true)),
  });

  /** Messages that arrived while reading was paused or held, in order. */
  const backlog = transport.backlog;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (backlog.length > 0 || !transport.readable) {
      backlog.push([data, isBinary]);
      transport.heldMessage();
    } else read(data, isBinary);
  });
  transport.onReadable = () => {
    while (backlog.length > 0 && transport.readable) {
      const [data, isBinary] = backlog.shift()!;
      read(data, isBinary);
    }
  };
  const read = (data: Buffer, isBinary: boolean) => {
    if (closing || ended || peerClosing) {
      // Only the client's answering <close/> matters now.
      if (closing && !isBinary && /^\s*<close[\s/>]/.test(data.toString('utf8'))) ws.close(1000);
      return;
    }
    transport.lastActivity = Date.now();
    transport.shaper.take(data.length);
    const frame = reader.read(data, isBinary);
    switch (frame.kind) {
      case 'open':
        client.streamStart(frame.attrs);
        return;
      case 'element':
        client.element(frame.element);
        return;
      case 'close':
        // The client ends the stream (RFC 7395 §3.6), behind what it sent before: we answer
        // with ours and close the socket.
        peerClosing = true;
        client.peerClosed(() => {
          if (ended) return;
          module.log('%s closed its WebSocket stream', describe());
          closing = true;
          write(closeFrame());
          end(true);
          ws.close(1000);
        });
        return;
      case 'error':
        close({ condition: frame.condition, text: frame.text });
        return;
      case 'websocket-close':
        module.log.warn('closing WebSocket of %s from %s: %s', describe(), transport.ip, frame.text);
        closing = true;
        end(true, { condition: 'unsupported-stanza-type', text: frame.text });
        ws.close(frame.code, frame.text);
        return;
    }
  };
  ws.on('close', (code: number) => {
    clearTimeout(closeTimer);
    if (!ended) {
      // Like a dropped TCP connection (unless the client's <close/> still waits its turn): stream
      // management may keep the session for resumption.
      module.log('WebSocket of %s from %s closed (%d) without a stream close', describe(), transport.ip, code);
      end(peerClosing, { condition: 'connection-timeout', text: 'WebSocket closed' });
    }
  });
  ws.on('error', (err: Error) => module.log('WebSocket of %s from %s failed: %s', describe(), transport.ip, err.message));
}
