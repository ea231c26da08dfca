//% requires_core_features: sessions-v1, sasl-mechanisms, tls-channel-binding, module-capabilities
// SASL authentication, the RFC 6120 §6 profile: <mechanisms/> in the stream features, then
// <auth/>, <challenge/>, <response/>, <success/>, <failure/>, <abort/>. The mechanisms themselves
// (SCRAM with channel binding and XEP-0474 downgrade protection, PLAIN over TLS), the
// channel-binding policy and brute-force throttling are the core's (core/sasl.ts), shared with
// SASL2. Channel-binding types are advertised per XEP-0440. Failures answer <failure/> and are
// logged with the client's address; payloads and passwords are never logged.
import { Element } from '@xmpp/xml';
import { advertisedChannelBindings, attrsOf, decodeSaslPayload, defineModule, encodeSaslPayload, NS, type SaslCondition, type SaslContext, type SaslExchange, type SaslStep, type Session } from '../core/api.ts';

const NS_SASL_CB = 'urn:xmpp:sasl-cb:0';
const KNOWN_MECHANISMS = [
  'SCRAM-SHA-512-PLUS',
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-512',
  'SCRAM-SHA-256',
  'SCRAM-SHA-1',
  'PLAIN',
];

interface InProgress {
  mechanism: string;
  exchange: SaslExchange;
}

export default defineModule({
  description: 'SASL authentication (RFC 6120 §6): SCRAM (with channel binding) and PLAIN',
  capabilities: ['sessions'],
  options: {
    mechanisms: {
      type: 'string[]',
      description: 'Mechanisms offered (others are never offered)',
      default: KNOWN_MECHANISMS,
      allowed: KNOWN_MECHANISMS,
    },
    maxFailures: { type: 'integer', description: 'Failed attempts before the stream is closed', default: 5, min: 1 },
  },
  load(module) {
    const inProgress = new WeakMap<Session, InProgress>();
    const failures = new WeakMap<Session, number>();
    /** What the stream's features offered: <auth/> is checked (and XEP-0474 hashes) against exactly that. */
    const advertised = new WeakMap<Session, SaslContext>();

    /** The stream's SASL context: what may be offered on it now. */
    const context = (session: Session): SaslContext | undefined => {
      const conn = session.conn;
      if (!conn?.secure && module.config('c2sRequireEncryption')) return undefined;
      const base = { host: module.host, conn, profile: 'SASL1' as const, channelBindings: conn?.channelBindingTypes() ?? [] };
      const offered = module.sasl.offer(base, new Set(module.option('mechanisms')));
      return offered.length ? { ...base, offered } : undefined;
    };

    module.hook('stream-features', ({ origin, features }) => {
      if (origin.type !== 'c2s_unauthed') return;
      const ctx = context(origin);
      if (!ctx) return;
      advertised.set(origin, ctx);
      const el = features.c('mechanisms', { xmlns: NS.sasl });
      for (const m of ctx.offered) el.c('mechanism').t(m);
      const bindings = advertisedChannelBindings(ctx);
      if (bindings.length) {
        const cb = features.c('sasl-channel-binding', { xmlns: NS_SASL_CB });
        for (const t of bindings) cb.c('channel-binding', { type: t });
      }
    }, 50);

    const send = (session: Session, name: string, data?: Buffer) => {
      const el = new Element(name, { xmlns: NS.sasl });
      if (data !== undefined) el.t(encodeSaslPayload(data));
      session.send(el);
    };

    const fail = (session: Session, condition: SaslCondition, text: string) => {
      const who = inProgress.get(session)?.exchange.claimedUser;
      inProgress.delete(session);
      const el = new Element('failure', { xmlns: NS.sasl });
      el.c(condition);
      if (text) el.c('text', { 'xml:lang': 'en' }).t(text);
      session.send(el);
      const n = (failures.get(session) ?? 0) + 1;
      failures.set(session, n);
      module.log.warn('authentication failure for %s from %s: %s (%s)', who ? `${who}@${module.host}` : 'unknown user', session.conn?.ip, condition, text);
      module.emit('authentication-failure', { session, condition });
      if (n >= module.option('maxFailures')) session.close({ condition: 'policy-violation', text: 'Too many failed authentication attempts' });
    };

    const finish = (session: Session, current: InProgress, r: SaslStep) => {
      // The stream may have closed, or the client aborted, while the step was awaited.
      if (session.destroyed || inProgress.get(session) !== current) return;
      if (r.status === 'challenge') {
        send(session, 'challenge', r.data);
        return;
      }
      if (r.status === 'failure') {
        fail(session, r.condition, r.text);
        return;
      }
      inProgress.delete(session);
      send(session, 'success', r.data);
      // One info line per login: operators see who logged in how; tests count SASL attempts by it.
      module.log.info('authenticated %s@%s from %s with %s (SASL1)', r.username, module.host, session.conn?.ip, current.mechanism);
      module.privileged.sessions.makeAuthenticated(session, r.username);
      session.resetStream();
    };

    const step = (session: Session, current: InProgress, data: Buffer) => {
      current.exchange.step(data).then((r) => finish(session, current, r), (err: unknown) => {
        module.log.error('SASL error: %s', err);
        finish(session, current, { status: 'failure', condition: 'temporary-auth-failure', text: 'Internal error' });
      });
    };

    module.hook(`stream-element/${NS.sasl}:auth`, ({ origin, element }) => {
      if (origin.type !== 'c2s_unauthed') {
        origin.close({ condition: 'policy-violation', text: 'Already authenticated' });
        return true;
      }
      const mechanism = attrsOf(element).mechanism;
      if (!origin.conn?.secure && module.config('c2sRequireEncryption')) {
        fail(origin, 'encryption-required', 'Use STARTTLS first');
        return true;
      }
      const ctx = advertised.get(origin) ?? context(origin);
      const exchange = mechanism && ctx ? module.sasl.start(mechanism, ctx) : undefined;
      if (!mechanism || !exchange) {
        fail(origin, 'invalid-mechanism', `Mechanism ${mechanism ?? '(none)'} is not offered`);
        return true;
      }
      const data = decodeSaslPayload(element.text());
      if (data === undefined) {
        fail(origin, 'incorrect-encoding', 'Invalid base64');
        return true;
      }
      const current: InProgress = { mechanism, exchange };
      inProgress.set(origin, current);
      step(origin, current, data);
      return true;
    });

    module.hook(`stream-element/${NS.sasl}:response`, ({ origin, element }) => {
      const current = inProgress.get(origin);
      if (!current) {
        fail(origin, 'malformed-request', 'No authentication in progress');
        return true;
      }
      const data = decodeSaslPayload(element.text());
      if (data === undefined) {
        fail(origin, 'incorrect-encoding', 'Invalid base64');
        return true;
      }
      step(origin, current, data);
      return true;
    });

    module.hook(`stream-element/${NS.sasl}:abort`, ({ origin }) => {
      const current = inProgress.get(origin);
      if (current) {
        const who = current.exchange.claimedUser;
        module.log.info('authentication aborted by %s from %s (%s)', who ? `${who}@${module.host}` : 'unknown user', origin.conn?.ip, current.mechanism);
      }
      inProgress.delete(origin);
      const el = new Element('failure', { xmlns: NS.sasl });
      el.c('aborted');
      origin.send(el);
      return true;
    });
  },
});
