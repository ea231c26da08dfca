//% requires_core_features: sessions-v1, stanza-events-v1, stanza-dispatch-ordered, module-capabilities, http-routes
// XMPP over WebSocket (RFC 7395) at /xmpp-websocket: the `xmpp` sub-protocol, one element per
// message (framing.ts), and the same client stream as TCP (core clientStream: header checks,
// features, SASL, bind, stanzas to the router), so a WebSocket session is a normal session.
// Limits and the unauthenticated timeout are the c2s ones (options `websocket: { … }`, same
// names and defaults as `c2s`); keepalives are WebSocket pings. doc/web.md.
import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { WebSocket } from 'ws';
import { clientStream, defineModule, streamLimits, STREAM_OPTIONS, type CloseReason, type GlobalModuleApi, type Session, type StreamLimits, type StreamTransport, type WebSocketContext } from '../../core/api.ts';
import { closeFrame, FrameReader, frameElement, openFrame, streamErrorFrames, WS_SUBPROTOCOL } from './framing.ts';

export const WEBSOCKET_PATH = '/xmpp-websocket';

const OPTIONS = {
  ...STREAM_OPTIONS,
  origins: { type: 'string[]', description: "Origins of web pages allowed to connect ('*': any; XMPP authenticates in-band, no cookies)", default: ['*'] },
} as const;

/** How long we wait for the client's <close/> after ours before closing the WebSocket. */
const CLOSE_WAIT_MS = 2000;

let nextId = 1;

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

  constructor(private readonly ws: WebSocket, ctx: WebSocketContext) {
    this.ip = ctx.ip;
    this.port = ctx.tlsSocket?.remotePort ?? 0;
    this.secure = ctx.secure;
    this.tls = ctx.tlsSocket;
  }

  get tlsInfo(): { protocol: string | null; cipher: string } | undefined {
    const s = this.tls;
    return s ? { protocol: s.getProtocol(), cipher: s.getCipher()?.name ?? 'unknown' } : undefined;
  }

  // No channel binding over WebSocket, so no -PLUS mechanisms are offered: browsers cannot read
  // TLS channel-binding data at all, and StanzaJS picks a -PLUS mechanism whenever one is offered
  // and then sends no binding (a refused login). SCRAM without binding is what web clients can do.
  channelBinding(): Buffer | undefined {
    return undefined;
  }

  channelBindingTypes(): string[] {
    return [];
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  destroy(): void {
    this.ws.terminate();
  }
}

interface WsStream {
  authenticated(): void;
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
    const streams = new Map<Session, WsStream>();
    const origins = module.option('origins');
    const keepalive = module.option('keepaliveInterval') * 1000;

    module.http.websocket(WEBSOCKET_PATH, (ws, ctx) => accept(module, ws, ctx, streams, limits), {
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
    module.hookGlobal('authentication-success', ({ session }) => {
      streams.get(session)?.authenticated();
    });
    module.hookGlobal('server-stopping', () => {
      for (const session of [...streams.keys()]) session.close({ condition: 'system-shutdown', text: 'Server is shutting down' });
    });
  },
});

function accept(
  module: GlobalModuleApi<typeof OPTIONS>,
  ws: WebSocket,
  ctx: WebSocketContext,
  streams: Map<Session, WsStream>,
  limits: (authenticated: boolean) => StreamLimits,
): void {
  const { sessions } = module.privileged;
  const transport = new WebSocketTransport(ws, ctx);
  const reader = new FrameReader(limits(false));
  let closing = false;
  let ended = false;
  let closeTimer: NodeJS.Timeout | undefined;

  const write = (frame: string): boolean => {
    if (ws.readyState !== ws.OPEN) return false;
    transport.lastActivity = Date.now();
    ws.send(frame);
    return true;
  };
  const describe = () => session.full_jid ?? (session.username ? `${session.username}@${session.host}` : 'unauthenticated client');

  const end = (graceful: boolean, reason?: CloseReason) => {
    if (ended) return;
    ended = true;
    clearTimeout(authTimer);
    streams.delete(session);
    sessions.destroy(session, reason);
    if (!graceful) ws.terminate();
  };

  /** Our close: a stream error if a reason is given, then <close/>; the client answers with its own. */
  const close = (reason?: CloseReason) => {
    if (closing) return;
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

  const session = sessions.create('c2s_unauthed', transport, {
    send: (x) => (closing ? false : write(typeof x === 'string' ? x : frameElement(x))),
    close,
    // After SASL success the client opens a new stream with <open/> (RFC 7395 §3.5).
    reset: () => reader.restart(),
  });
  const authTimer = setTimeout(() => close({ condition: 'connection-timeout', text: 'Not authenticated in time' }), module.option('unauthenticatedTimeout') * 1000);
  authTimer.unref();
  streams.set(session, {
    authenticated: () => {
      clearTimeout(authTimer);
      reader.setLimits(limits(true));
    },
  });

  const client = clientStream(module, session, {
    sendHeader: () => {
      const id = randomUUID();
      write(openFrame({ from: session.host ?? '', id, lang: 'en' }));
      return id;
    },
    close,
  });

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (ended && closing) {
      // Only the client's answering <close/> matters now.
      if (!isBinary && /^\s*<close[\s/>]/.test(data.toString('utf8'))) ws.close(1000);
      return;
    }
    transport.lastActivity = Date.now();
    const frame = reader.read(data, isBinary);
    switch (frame.kind) {
      case 'open':
        client.streamStart(frame.attrs);
        return;
      case 'element':
        client.element(frame.element);
        return;
      case 'close':
        // The client ends the stream (RFC 7395 §3.6): we answer with ours and close the socket.
        module.log('%s closed its WebSocket stream', describe());
        if (!closing) {
          closing = true;
          write(closeFrame());
        }
        end(true);
        ws.close(1000);
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
  });
  ws.on('close', (code: number) => {
    clearTimeout(closeTimer);
    if (!ended) {
      // Like a dropped TCP connection: no <close/> (stream management may resume the session).
      module.log('WebSocket of %s from %s closed (%d) without a stream close', describe(), transport.ip, code);
      closing = true;
      end(true, { condition: 'connection-timeout', text: 'WebSocket closed' });
    }
  });
  ws.on('error', (err: Error) => module.log('WebSocket of %s from %s failed: %s', describe(), transport.ip, err.message));
}
