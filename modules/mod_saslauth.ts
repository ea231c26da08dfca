//% requires_core_features: sessions-v1, scram-sha-1, scram-sha-256, tls-channel-binding
// SASL authentication (RFC 6120 §6): SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS) with tls-exporter /
// tls-server-end-point channel binding, and PLAIN over TLS only (unless allowUnencryptedPlainAuth).
// Channel-binding types are advertised per XEP-0440. Failures answer <not-authorized/> and are
// logged with the client's address; payloads and passwords are never logged.
import { Element } from '@xmpp/xml';
import { defineModule, type ModuleApi } from '../core/moduleapi.ts';
import { nodeprep } from '../core/jid.ts';
import { ScramServer, saslPrep, type ScramHash, type ScramStep } from '../core/scram.ts';
import type { Session } from '../core/sessionmanager.ts';
import { NS } from '../core/stanza.ts';
import type { StreamElementEvent, StreamFeaturesEvent } from './mod_c2s.ts';

const NS_SASL_CB = 'urn:xmpp:sasl-cb:0';
type Mechanism = 'SCRAM-SHA-256-PLUS' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1' | 'PLAIN';
const ALL_MECHANISMS: readonly Mechanism[] = ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];

interface SaslState {
  mechanism: Mechanism;
  scram?: ScramServer;
  /** Who is trying (for the log only). */
  who?: string;
}

type Outcome = { status: 'challenge'; data: Buffer } | { status: 'success'; data: Buffer; username: string } | { status: 'failure'; condition: string; text: string };

export default defineModule({
  description: 'SASL authentication: SCRAM (with channel binding) and PLAIN',
  options: {
    mechanisms: {
      type: 'string[]',
      description: 'Mechanisms offered (others are never offered)',
      default: [...ALL_MECHANISMS],
      allowed: ALL_MECHANISMS,
    },
    maxFailures: { type: 'integer', description: 'Failed attempts before the stream is closed', default: 5, min: 1 },
  },
  load(module) {
    const inProgress = new WeakMap<Session, SaslState>();
    const failures = new WeakMap<Session, number>();
    const enabled = () => new Set(module.option('mechanisms'));

    const offered = (session: Session): Mechanism[] => {
      const conn = session.conn;
      const secure = conn?.secure ?? false;
      if (!secure && module.config('c2sRequireEncryption', true)) return [];
      const list: Mechanism[] = [];
      const on = enabled();
      const cb = conn?.channelBindingTypes() ?? [];
      const canPlus = secure && cb.length > 0;
      for (const m of ALL_MECHANISMS) {
        if (!on.has(m)) continue;
        if (m.endsWith('-PLUS') && !canPlus) continue;
        if (m === 'PLAIN' && !secure && !module.config('allowUnencryptedPlainAuth', false)) continue;
        list.push(m);
      }
      return list;
    };

    module.hook<StreamFeaturesEvent>('stream-features', ({ origin, features }) => {
      if (origin.type !== 'c2s_unauthed') return;
      const mechs = offered(origin);
      if (!mechs.length) return;
      const el = features.c('mechanisms', { xmlns: NS.sasl });
      for (const m of mechs) el.c('mechanism').t(m);
      const types = origin.conn?.channelBindingTypes() ?? [];
      if (types.length && mechs.some((m) => m.endsWith('-PLUS'))) {
        const cb = features.c('sasl-channel-binding', { xmlns: NS_SASL_CB });
        for (const t of types) cb.c('channel-binding', { type: t });
      }
    }, 50);

    const send = (session: Session, name: string, data?: Buffer) => {
      const el = new Element(name, { xmlns: NS.sasl });
      if (data !== undefined) el.t(data.length ? data.toString('base64') : '=');
      session.send(el);
    };

    const fail = (session: Session, condition: string, text: string) => {
      const who = inProgress.get(session)?.who;
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

    const finish = (session: Session, outcome: Outcome) => {
      if (session.destroyed) return;
      if (outcome.status === 'challenge') {
        send(session, 'challenge', outcome.data);
        return;
      }
      if (outcome.status === 'failure') {
        fail(session, outcome.condition, outcome.text);
        return;
      }
      const mechanism = inProgress.get(session)?.mechanism;
      inProgress.delete(session);
      send(session, 'success', outcome.data);
      // One info line per login: operators see who logged in how; tests count SASL attempts by it.
      module.log.info('authenticated %s@%s from %s with %s (SASL1)', outcome.username, module.host, session.conn?.ip, mechanism);
      module.sessions.makeAuthenticated(session, outcome.username);
      session.resetStream();
    };

    const run = (session: Session, p: Promise<Outcome>) => {
      p.then((o) => finish(session, o), (err: unknown) => {
        module.log.error('SASL error: %s', err);
        finish(session, { status: 'failure', condition: 'temporary-auth-failure', text: 'Internal error' });
      });
    };

    module.hook<StreamElementEvent>(`stream-element/${NS.sasl}:auth`, ({ origin, element }) => {
      if (origin.type !== 'c2s_unauthed') {
        origin.close({ condition: 'policy-violation', text: 'Already authenticated' });
        return true;
      }
      const mechanism = element.attrs.mechanism as string | undefined;
      if (!origin.conn?.secure && module.config('c2sRequireEncryption', true)) {
        fail(origin, 'encryption-required', 'Use STARTTLS first');
        return true;
      }
      if (!mechanism || !(offered(origin) as string[]).includes(mechanism)) {
        fail(origin, 'invalid-mechanism', `Mechanism ${mechanism ?? '(none)'} is not offered`);
        return true;
      }
      const data = decode(element.text());
      if (data === undefined) {
        fail(origin, 'incorrect-encoding', 'Invalid base64');
        return true;
      }
      const state: SaslState = { mechanism: mechanism as Mechanism, who: claimedUser(mechanism, data) };
      inProgress.set(origin, state);
      if (mechanism === 'PLAIN') {
        run(origin, plain(module, data));
        return true;
      }
      const hash: ScramHash = mechanism.startsWith('SCRAM-SHA-256') ? 'SHA-256' : 'SHA-1';
      const conn = origin.conn;
      state.scram = new ScramServer({
        hash,
        plus: mechanism.endsWith('-PLUS'),
        serverSupportsPlus: offered(origin).some((m) => m.endsWith('-PLUS')),
        channelBinding: (type) => conn?.channelBinding(type),
        lookup: async (username) => {
          const node = nodeprep(username);
          return node ? module.users.getScram(module.host, node, hash) : undefined;
        },
      });
      run(origin, scramStep(state.scram, data));
      return true;
    });

    module.hook<StreamElementEvent>(`stream-element/${NS.sasl}:response`, ({ origin, element }) => {
      const state = inProgress.get(origin);
      if (!state?.scram) {
        fail(origin, 'malformed-request', 'No authentication in progress');
        return true;
      }
      const data = decode(element.text());
      if (data === undefined) {
        fail(origin, 'incorrect-encoding', 'Invalid base64');
        return true;
      }
      run(origin, scramStep(state.scram, data));
      return true;
    });

    module.hook<StreamElementEvent>(`stream-element/${NS.sasl}:abort`, ({ origin }) => {
      const state = inProgress.get(origin);
      if (state) module.log.info('authentication aborted by %s from %s (%s)', state.who ? `${state.who}@${module.host}` : 'unknown user', origin.conn?.ip, state.mechanism);
      inProgress.delete(origin);
      const el = new Element('failure', { xmlns: NS.sasl });
      el.c('aborted');
      origin.send(el);
      return true;
    });
  },
});

async function scramStep(scram: ScramServer, data: Buffer): Promise<Outcome> {
  const r: ScramStep = await scram.step(data);
  if (r.status === 'challenge') return { status: 'challenge', data: r.data };
  if (r.status === 'failure') return { status: 'failure', condition: r.condition, text: r.text };
  if (r.authzid !== undefined) {
    // Only authorization as oneself is allowed.
    const node = nodeprep(r.username);
    const self = node ? `${node}@` : undefined;
    if (!self || !r.authzid.startsWith(self)) return { status: 'failure', condition: 'invalid-authzid', text: 'Cannot act as another user' };
  }
  const node = nodeprep(r.username);
  if (!node) return { status: 'failure', condition: 'not-authorized', text: 'Invalid username' };
  return { status: 'success', data: r.data, username: node };
}

async function plain(module: ModuleApi, data: Buffer): Promise<Outcome> {
  const parts = data.toString('utf8').split('\u0000');
  if (parts.length !== 3) return { status: 'failure', condition: 'malformed-request', text: 'Malformed PLAIN message' };
  const [authzid, authcid, password] = parts as [string, string, string];
  let node: string | null;
  try {
    node = nodeprep(saslPrep(authcid));
  } catch {
    node = null;
  }
  if (!node || !password) return { status: 'failure', condition: 'not-authorized', text: 'Invalid username or password' };
  if (authzid && authzid !== `${node}@${module.host}`) return { status: 'failure', condition: 'invalid-authzid', text: 'Cannot act as another user' };
  const ok = await module.users.checkPassword(module.host, node, password);
  if (!ok) return { status: 'failure', condition: 'not-authorized', text: 'Invalid username or password' };
  return { status: 'success', data: Buffer.alloc(0), username: node };
}

/** The username a client claims (logged on failure; never trusted). */
function claimedUser(mechanism: string, data: Buffer): string | undefined {
  const text = data.toString('utf8');
  const name = mechanism === 'PLAIN' ? text.split('\u0000')[1] : /^[^,]*,[^,]*,n=([^,]*)/.exec(text)?.[1]?.replace(/=2C/g, ',').replace(/=3D/g, '=');
  return name ? name.replace(/[^\x21-\x7e]/g, '?').slice(0, 64) : undefined;
}

function decode(text: string): Buffer | undefined {
  const t = text.trim();
  if (t === '' || t === '=') return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) return undefined;
  return Buffer.from(t, 'base64');
}
