//% requires_core_features: sessions-v1, stanza-events-v1, stanza-dispatch-ordered, module-capabilities, http-routes
// BOSH (XEP-0124) carrying XMPP (XEP-0206) at /http-bind: each POSTed body goes to the session
// engine (session.ts), which answers in rid order and holds requests; behind each BOSH session is
// a normal client session on the core client stream (clientStream: header checks, features, SASL,
// bind, stanzas to the router). CORS for browsers. doc/web.md.
import type { Element } from '@xmpp/xml';
import { clientStream, defineModule, streamErrorElement, type CloseReason, type GlobalModuleApi, type HttpRequest, type Session, type StreamTransport } from '../../core/api.ts';
import { BOSH_DEFAULTS, BoshManager, terminateBody, type BoshCreation, type BoshSession, type BoshSessionHooks } from './session.ts';

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

/** A BOSH session as a client session's transport (`session.conn`). */
class BoshTransport implements StreamTransport {
  readonly id = `bosh${nextId++}`;
  readonly created = Date.now();
  lastActivity = Date.now();
  readonly service = 'bosh';
  readonly port = 0;
  readonly tlsInfo = undefined;

  constructor(readonly ip: string, readonly secure: boolean, private readonly bosh: BoshSession) {}

  // Requests of one session may come over different TLS connections: no channel binding.
  channelBinding(): Buffer | undefined {
    return undefined;
  }

  channelBindingTypes(): string[] {
    return [];
  }

  // Payloads are delivered in rid order by the engine already.
  pause(): void {}
  resume(): void {}

  destroy(): void {
    this.bosh.close('undefined-condition');
  }
}

export default defineModule({
  scope: 'global',
  description: 'BOSH (XEP-0124, XEP-0206) at /http-bind',
  capabilities: ['sessions', 'routing'],
  options: OPTIONS,
  load(module) {
    const unauthenticated = new Map<Session, NodeJS.Timeout>();
    // Sessions created over HTTPS (XEP-0124 §15.1).
    const secureSessions = new WeakSet<BoshSession>();
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
        return open(module, bosh, creation, creating!, unauthenticated);
      },
    });
    const origins = module.option('origins');
    const cors = { origins: origins.includes('*') ? '*' as const : origins, headers: ['Content-Type'] };

    const reply = (body: string) => ({ status: 200, headers: { 'Content-Type': 'text/xml; charset=utf-8', 'Cache-Control': 'no-store' }, body });
    module.http.route('POST', BOSH_PATH, async (req) => {
      const text = await req.text();
      // XEP-0124 §15.1: a session is secure only if every request of it is. One created over
      // HTTPS is never continued over plain HTTP (where its sid and payloads would be readable).
      const sid = req.secure ? undefined : /^\s*<body\s[^>]*?\bsid\s*=\s*(['"])([^'"]*)\1/.exec(text)?.[2];
      const session = sid === undefined ? undefined : manager.get(sid);
      if (session && secureSessions.has(session)) {
        module.log.warn('BOSH session from %s continued over plain HTTP: terminated', req.ip);
        session.close('policy-violation');
        return reply(terminateBody('policy-violation'));
      }
      creating = req;
      let answer: Promise<string>;
      try {
        answer = manager.handle(text);
      } finally {
        creating = undefined;
      }
      return reply(await answer);
    }, { cors, timeoutMs: (module.option('maxWait') + 15) * 1000, maxBodyBytes: module.option('maxBodySize') });
    module.http.route('GET', BOSH_PATH, () => ({
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
      body: 'This is an XMPP over BOSH (XEP-0124, XEP-0206) endpoint: POST <body/> requests to it with an XMPP client.\n',
    }), { cors });

    // XEP-0156: listed in host-meta.
    module.hookGlobal('connection-methods', ({ base, methods }) => {
      methods.push({ rel: 'urn:xmpp:alt-connections:xbosh', href: `${base}${BOSH_PATH}` });
    });
    module.hookGlobal('authentication-success', ({ session }) => {
      clearTimeout(unauthenticated.get(session));
      unauthenticated.delete(session);
    });
    module.hookGlobal('server-stopping', () => manager.closeAll('system-shutdown'));
  },
  unload() {
    // Sessions end with the server (server-stopping) or when their clients stop polling.
  },
});

function open(
  module: GlobalModuleApi<typeof OPTIONS>,
  bosh: BoshSession,
  creation: BoshCreation,
  req: HttpRequest,
  unauthenticated: Map<Session, NodeJS.Timeout>,
): BoshSessionHooks {
  const { sessions } = module.privileged;
  const transport = new BoshTransport(req.ip, req.secure, bosh);
  let ended = false;
  const end = (reason?: CloseReason) => {
    if (ended) return;
    ended = true;
    clearTimeout(unauthenticated.get(session));
    unauthenticated.delete(session);
    sessions.destroy(session, reason);
  };
  const close = (reason?: CloseReason) => {
    if (reason) {
      const quiet = reason.condition === 'system-shutdown' || reason.condition === 'conflict';
      module.log[quiet ? 'info' : 'warn']('closing BOSH session of %s from %s: %s%s', session.full_jid ?? session.username ?? 'unauthenticated client', transport.ip, reason.condition, reason.text ? ` (${reason.text})` : '');
      // XEP-0206 §4: the stream error inside a terminate body with remote-stream-error.
      bosh.close(undefined, streamErrorElement(reason.condition, reason.text));
    } else {
      bosh.close();
    }
    end(reason);
  };
  const session = sessions.create('c2s_unauthed', transport, {
    send: (x) => {
      transport.lastActivity = Date.now();
      return bosh.send(x);
    },
    close,
  });
  const timer = setTimeout(() => close({ condition: 'connection-timeout', text: 'Not authenticated in time' }), module.option('unauthenticatedTimeout') * 1000);
  timer.unref();
  unauthenticated.set(session, timer);

  const client = clientStream(module, session, {
    // The session creation response (and each restart's) is the stream header (XEP-0206 §3).
    sendHeader: () => bosh.streamId,
    close,
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
      session.notopen = true;
      client.streamStart(header);
    },
    ended: (reason) => {
      if (!ended) module.log('BOSH session of %s from %s ended: %s', session.full_jid ?? 'unauthenticated client', transport.ip, reason.graceful ? 'terminated by the client' : reason.condition);
      end(reason.graceful ? undefined : { condition: 'connection-timeout', text: reason.condition === 'inactivity' ? 'BOSH session inactive' : `BOSH ${reason.condition ?? 'error'}` });
    },
  };
}
