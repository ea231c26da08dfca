//% requires_core_features: sessions-v1, stanza-events-v1
// Client-to-server streams (RFC 6120 §4): listeners on c2sPorts (STARTTLS) and
// c2sDirectTlsPorts (XEP-0368), the stream header and features, stream errors, limits,
// whitespace keepalives, and the hand-over of stanzas to the router. Stanzas before
// authentication are offered to `unauthenticated-stanza/<kind>` on the host (XEP-0077), never routed.
import { Element } from '@xmpp/xml';
import type { Connection } from '../core/connection.ts';
import { DEFAULTS } from '../core/config.ts';
import { prep } from '../core/jid.ts';
import { HANDLER_ERROR } from '../core/events.ts';
import { defineModule, type ModuleApi } from '../core/moduleapi.ts';
import type { CloseReason, Session, SessionEvent } from '../core/sessionmanager.ts';
import { NS, isStanzaKind, streamErrorElement } from '../core/stanza.ts';
import { XmppStreamParser, streamHeader, type StreamLimits } from '../core/xmppstream.ts';

export interface StreamFeaturesEvent {
  origin: Session;
  features: Element;
}

export interface StreamElementEvent {
  origin: Session;
  element: Element;
}

/**
 * A stanza from a client that has not authenticated yet, fired on the host as
 * `unauthenticated-stanza/<kind>` (e.g. In-Band Registration, XEP-0077). A handler that returns
 * a value has answered it; otherwise the stream is closed with not-authorized. Such stanzas are
 * never routed.
 */
export interface UnauthenticatedStanzaEvent {
  origin: Session;
  stanza: Element;
}

interface C2sState {
  parser: XmppStreamParser;
  headerSent: boolean;
  closing: boolean;
  authTimer: NodeJS.Timeout | undefined;
}

export default defineModule({
  scope: 'global',
  description: 'Client connections: streams, features, limits and keepalives',
  async load(module) {
    const limits = (authenticated: boolean): StreamLimits => ({
      maxStanzaSize: authenticated
        ? module.config('c2sStanzaSizeLimit', DEFAULTS.c2sStanzaSizeLimit)
        : module.config('c2sPreauthStanzaSizeLimit', DEFAULTS.c2sPreauthStanzaSizeLimit),
      maxDepth: module.config('c2sMaxDepth', DEFAULTS.c2sMaxDepth),
    });
    const states = new Map<Session, C2sState>();

    const accept = (conn: Connection) => acceptConnection(module, conn, states, limits);
    await module.listen({ name: 'c2s', ports: module.config('c2sPorts', DEFAULTS.c2sPorts), onConnection: accept });
    const tlsPorts = module.config('c2sDirectTlsPorts', DEFAULTS.c2sDirectTlsPorts);
    if (tlsPorts.length) {
      await module.listen({ name: 'c2s_direct_tls', ports: tlsPorts, directTls: true, onConnection: accept });
    }

    // Authenticated clients get the larger stanza size limit.
    module.hookGlobal<SessionEvent>('authentication-success', ({ session }) => {
      states.get(session)?.parser.setLimits(limits(true));
    });

    // Whitespace keepalives keep NAT mappings and idle-killing proxies from dropping clients.
    const keepalive = module.config('c2sKeepaliveInterval', DEFAULTS.c2sKeepaliveInterval) * 1000;
    if (keepalive > 0) {
      module.setInterval(() => {
        const now = Date.now();
        for (const session of states.keys()) {
          const conn = session.conn;
          if (conn && !session.notopen && now - conn.lastActivity >= keepalive) conn.write(' ');
        }
      }, Math.min(keepalive, 30_000));
    }

    module.hookGlobal('server-stopping', () => {
      for (const session of [...states.keys()]) session.close({ condition: 'system-shutdown', text: 'Server is shutting down' });
    });
  },
  unload() {
    // Sessions close with their listeners' owner: server-stopping (or the process) handles them.
  },
});

function acceptConnection(
  module: ModuleApi,
  conn: Connection,
  states: Map<Session, C2sState>,
  limits: (authenticated: boolean) => StreamLimits,
): void {
  const parser = new XmppStreamParser(limits(false));
  const state: C2sState = { parser, headerSent: false, closing: false, authTimer: undefined };

  const send = (x: Element | string): boolean => {
    if (state.closing) return false;
    return conn.write(typeof x === 'string' ? x : x.toString());
  };

  const sendHeader = (host: string | undefined, to: string | undefined) => {
    state.headerSent = true;
    session.streamId = Math.random().toString(36).slice(2) + Date.now().toString(36);
    conn.write(
      streamHeader({
        xmlns: NS.client,
        'xmlns:stream': NS.streams,
        id: session.streamId,
        from: host,
        to,
        version: '1.0',
        'xml:lang': 'en',
      }),
    );
  };

  const close = (reason?: CloseReason) => {
    if (state.closing) return;
    if (reason) {
      if (!state.headerSent) sendHeader(session.host, undefined);
      conn.write(streamErrorElement(reason.condition, reason.text).toString());
      const level = reason.condition === 'system-shutdown' || reason.condition === 'conflict' ? 'info' : 'warn';
      session.log[level === 'info' ? 'info' : 'warn']('closing stream of %s from %s: %s%s', session.full_jid ?? session.username ?? 'unauthenticated client', conn.ip, reason.condition, reason.text ? ` (${reason.text})` : '');
    }
    if (state.headerSent) conn.write('</stream:stream>');
    state.closing = true;
    conn.close();
    finish(reason);
  };

  const finish = (reason?: CloseReason) => {
    if (state.authTimer) clearTimeout(state.authTimer);
    states.delete(session);
    module.sessions.destroy(session, reason);
  };

  const session = module.sessions.create('c2s_unauthed', conn, {
    send,
    close,
    reset: () => {
      parser.reset();
      state.headerSent = false;
    },
  });
  states.set(session, state);

  state.authTimer = setTimeout(() => {
    if (session.type === 'c2s_unauthed') close({ condition: 'connection-timeout', text: 'Not authenticated in time' });
  }, module.config('c2sUnauthenticatedTimeout', DEFAULTS.c2sUnauthenticatedTimeout) * 1000);
  state.authTimer.unref();

  conn.onData((chunk) => parser.write(chunk));
  conn.onClose((hadError) => {
    if (state.closing) return;
    state.closing = true;
    session.log('connection from %s %s', conn.ip, hadError ? 'dropped with an error' : 'closed');
    finish({ condition: 'connection-timeout', text: hadError ? 'Connection dropped' : 'Connection closed' });
  });

  parser.on('error', (condition, text) => close({ condition, text }));
  parser.on('streamEnd', () => close());
  parser.on('streamStart', (attrs) => {
    if (attrs.xmlns !== NS.client) {
      close({ condition: 'invalid-namespace', text: `Default namespace must be ${NS.client}` });
      return;
    }
    const to = attrs.to !== undefined ? prep(attrs.to) : undefined;
    const host = to ? module.hosts.get(to) : undefined;
    if (!to || !host || host.kind !== 'virtualhost' || (session.host && session.host !== to)) {
      close({ condition: 'host-unknown', text: to ? `This server does not serve ${to}` : "The stream header has no 'to'" });
      return;
    }
    if (!attrs.version || !/^1\.\d+$/.test(attrs.version)) {
      session.host = to;
      close({ condition: 'unsupported-version', text: 'Only XMPP 1.0 streams are supported' });
      return;
    }
    session.host = to;
    session.notopen = false;
    if (attrs['xml:lang']) session.lang = attrs['xml:lang'];
    sendHeader(to, attrs.from);
    const features = new Element('stream:features');
    module.fireOnHost(to, 'stream-features', { origin: session, features } satisfies StreamFeaturesEvent);
    send(features);
  });
  parser.on('stanza', (el) => {
    if (session.notopen || !session.host) return;
    const ns = el.attrs.xmlns as string | undefined;
    if (ns === undefined && isStanzaKind(el.name)) {
      if (session.type !== 'c2s') {
        if (session.type === 'c2s_unauthed') {
          const claimed = module.fireOnHost(session.host, `unauthenticated-stanza/${el.name}`, { origin: session, stanza: el } satisfies UnauthenticatedStanzaEvent);
          if (claimed !== undefined && claimed !== false && claimed !== HANDLER_ERROR) return;
        }
        close({ condition: 'not-authorized', text: 'Authenticate before sending stanzas' });
        return;
      }
      const r = module.router.fromClient(session, el);
      if (!r.ok) close({ condition: r.condition, text: r.text });
      return;
    }
    const handled = ns !== undefined && module.fireOnHost(session.host, `stream-element/${ns}:${el.name}`, { origin: session, element: el } satisfies StreamElementEvent);
    if (handled === undefined || handled === false) {
      close({ condition: 'unsupported-stanza-type', text: `Unexpected <${el.name}/>${ns ? ` in ${ns}` : ''}` });
    }
  });
}
