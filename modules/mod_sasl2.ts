//% requires_core_features: sessions-v1, sasl-mechanisms, tls-channel-binding, scram-sha-512, module-capabilities
// The Extensible SASL Profile (XEP-0388) on the core's SASL mechanisms (core/sasl.ts: channel-binding
// policy, XEP-0474 and throttling included), offered beside the RFC 6120 profile (mod_saslauth):
// the <authentication/> feature with an <inline/>
// element other modules fill (Bind2, FAST), <authenticate/> with <user-agent/> (remembered per
// account), challenges and responses, <continue/> with XEP-0480 SCRAM upgrade tasks, and
// <success/> with the authorization identifier and what the inline features did — without a
// stream restart. Failures answer <failure/> with the RFC 6120 condition and are logged with the
// client's address; payloads, passwords and tokens are never logged.
import { randomBytes } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { advertisedChannelBindings, attrsOf, credentialsFromSaltedPassword, decodeSaslPayload, DEFAULT_ITERATIONS, defineModule, hashLength, nodeprep, NS, SCRAM_HASHES, type Json, type ModuleApi, type Sasl2InlineFeaturesEvent, type Sasl2SuccessEvent, type SaslCondition, type SaslContext, type SaslExchange, type SaslStep, type ScramHash, type Session, type StreamFeaturesEvent, type UserAgent } from '../core/api.ts';

export type { UserAgent };

const NS_SASL2 = 'urn:xmpp:sasl:2';
const NS_SASL_CB = 'urn:xmpp:sasl-cb:0';
const NS_UPGRADE = 'urn:xmpp:sasl:upgrade:0';
const NS_SCRAM_UPGRADE = 'urn:xmpp:scram-upgrade:0';

/** What a SASL2 client installation is remembered as, per account and user-agent id. */
interface KnownClient {
  software?: string;
  device?: string;
  firstSeen: number;
  lastSeen: number;
}

/** A XEP-0480 SCRAM upgrade task: the client sends SaltedPassword for a hash the account lacks. */
interface UpgradeTask {
  name: string;
  hash: ScramHash;
  /** Set once the client chose the task with <next/> and we sent the salt. */
  salt?: Buffer;
  iterations?: number;
}

/** One authentication attempt on a stream, from <authenticate/> to <success/> or <failure/>. */
interface Attempt {
  request: Element;
  userAgent: UserAgent | undefined;
  mechanism: string;
  exchange: SaslExchange;
  /** 'mechanism': SASL exchange; 'task': <continue/> sent; 'finishing': building <success/>. */
  phase: 'mechanism' | 'task' | 'finishing';
  /** A step is being processed (the connection is paused meanwhile). */
  busy: boolean;
  username?: string;
  /** Success data of the mechanism, sent in the first <continue/> or in <success/>. */
  additionalData?: Buffer;
  tasks: UpgradeTask[];
  /** Whether a <continue/> was sent (the mechanism's data went with it). */
  continued: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Known clients remembered per account (the least recently seen are forgotten). */
const MAX_KNOWN_CLIENTS = 50;

export default defineModule({
  description: 'Extensible SASL Profile (XEP-0388) with SCRAM upgrade tasks (XEP-0480)',
  capabilities: ['sessions', 'users'],
  options: {
    mechanisms: {
      type: 'string[]',
      description: 'Mechanisms offered over SASL2 (default: every mechanism available on the stream, as for SASL1)',
    },
    maxFailures: { type: 'integer', description: 'Failed attempts before the stream is closed (as saslauth.maxFailures)', default: 5, min: 1 },
  },
  load(module) {
    const attempts = new WeakMap<Session, Attempt>();
    const failures = new WeakMap<Session, number>();
    /** What the stream's features offered: <authenticate/> is checked (and XEP-0474 hashes) against exactly that. */
    const advertised = new WeakMap<Session, SaslContext>();
    const knownClients = module.storage.map();

    /** The stream's SASL2 context, or undefined when SASL2 is not offered on it (no TLS: XEP-0388 §4). */
    const context = (session: Session, sasl2?: SaslContext['sasl2']): SaslContext | undefined => {
      const conn = session.conn;
      if (!conn?.secure) return undefined;
      const base = { host: module.host, conn, profile: 'SASL2' as const, channelBindings: conn.channelBindingTypes(), sasl2 };
      const configured = module.option('mechanisms') as string[] | undefined;
      const offered = module.sasl.offer(base, configured ? new Set(configured) : undefined);
      return offered.length ? { ...base, offered } : undefined;
    };

    /**
     * The context to authenticate with: the advertised one, with the request. A mechanism that is
     * not in <authentication/> but announced elsewhere in the features — FAST's, in <inline/> —
     * becomes available with a request that asks for it (a <fast/> element).
     */
    const requestContext = (session: Session, mechanism: string, sasl2: NonNullable<SaslContext['sasl2']>): SaslContext | undefined => {
      const shown = advertised.get(session) ?? context(session);
      if (!shown) return undefined;
      if (shown.offered.includes(mechanism)) return { ...shown, sasl2 };
      const withRequest = context(session, sasl2);
      return withRequest?.offered.includes(mechanism) ? { ...shown, sasl2, offered: [...shown.offered, mechanism] } : undefined;
    };

    module.hook('stream-features', ({ origin, features }) => {
      if (origin.type !== 'c2s_unauthed') return;
      const ctx = context(origin);
      if (!ctx) return;
      advertised.set(origin, ctx);
      const auth = features.c('authentication', { xmlns: NS_SASL2 });
      for (const m of ctx.offered) auth.c('mechanism').t(m);
      const inline = new Element('inline');
      module.emit('sasl2-inline-features', { origin, inline } satisfies Sasl2InlineFeaturesEvent);
      if (inline.children.length) auth.cnode(inline);
      if (ctx.offered.some(passwordBased)) {
        for (const hash of SCRAM_HASHES) auth.c('upgrade', { xmlns: NS_UPGRADE }).t(upgradeTaskName(hash));
      }
      // XEP-0440, next to the SASL features; mod_saslauth may have added it already.
      const bindings = advertisedChannelBindings(ctx);
      if (bindings.length && !features.getChild('sasl-channel-binding', NS_SASL_CB)) {
        const cb = features.c('sasl-channel-binding', { xmlns: NS_SASL_CB });
        for (const t of bindings) cb.c('channel-binding', { type: t });
      }
    }, 45);

    const send = (session: Session, name: string, build?: (el: Element) => void) => {
      const el = new Element(name, { xmlns: NS_SASL2 });
      build?.(el);
      session.send(el);
    };

    const who = (attempt: Attempt | undefined) => {
      const user = attempt?.username ?? attempt?.exchange.claimedUser;
      return user ? `${user}@${module.host}` : 'unknown user';
    };

    const fail = (session: Session, condition: SaslCondition, text: string) => {
      const attempt = attempts.get(session);
      attempts.delete(session);
      send(session, 'failure', (el) => {
        el.c(condition, { xmlns: NS.sasl });
        if (text) el.c('text', { 'xml:lang': 'en' }).t(text);
      });
      const n = (failures.get(session) ?? 0) + 1;
      failures.set(session, n);
      module.log.warn('authentication failure for %s from %s: %s (%s)', who(attempt), session.conn?.ip, condition, text);
      module.emit('authentication-failure', { session, condition });
      if (n >= module.option('maxFailures')) session.close({ condition: 'policy-violation', text: 'Too many failed authentication attempts' });
    };

    /** Run one asynchronous step with the connection paused: nothing the client pipelines is read before its outcome is sent. */
    const runStep = (session: Session, attempt: Attempt, work: () => Promise<void>) => {
      attempt.busy = true;
      session.conn?.pause();
      work().catch((err: unknown) => {
        module.log.error('SASL2 error: %s', err);
        if (!current(session, attempt)) return;
        // Authenticated already: no <failure/> can undo that.
        if (session.type !== 'c2s_unauthed') session.close({ condition: 'internal-server-error' });
        else fail(session, 'temporary-auth-failure', 'Internal error');
      }).finally(() => {
        attempt.busy = false;
        const conn = session.conn;
        if (session.destroyed || !conn) return;
        // Authenticated now: what the client sent before it could see <success/> was pipelined
        // behind the state change and never runs as authenticated (there is no stream restart).
        if (session.type !== 'c2s_unauthed') {
          const dropped = conn.discardReceived?.() ?? 0;
          if (dropped) module.log.warn('discarded %d %s from %s sent ahead of SASL2 <success/> (never processed)', dropped, conn.service === 'websocket' ? 'messages' : 'bytes', conn.ip);
        }
        conn.resume();
      });
    };

    const current = (session: Session, attempt: Attempt) => !session.destroyed && attempts.get(session) === attempt;

    const mechanismStep = (session: Session, attempt: Attempt, data: Buffer) => {
      runStep(session, attempt, async () => {
        const r: SaslStep = await attempt.exchange.step(data);
        if (!current(session, attempt)) return;
        if (r.status === 'challenge') {
          send(session, 'challenge', (el) => void (r.data.length && el.t(r.data.toString('base64'))));
          return;
        }
        if (r.status === 'failure') {
          fail(session, r.condition, r.text);
          return;
        }
        attempt.username = r.username;
        attempt.additionalData = r.data;
        attempt.tasks = await upgradeTasks(attempt);
        if (!current(session, attempt)) return;
        if (attempt.tasks.length) sendContinue(session, attempt);
        else await finish(session, attempt);
      });
    };

    /** XEP-0480: the upgrades the client asked for that the account lacks, after a password-based mechanism only. */
    const upgradeTasks = async (attempt: Attempt): Promise<UpgradeTask[]> => {
      if (!passwordBased(attempt.mechanism)) return [];
      const requested = new Set(attempt.request.getChildren('upgrade', NS_UPGRADE).map((u) => u.text().trim()));
      const wanted = SCRAM_HASHES.filter((h) => requested.has(upgradeTaskName(h)));
      if (!wanted.length) return [];
      const record = await module.privileged.users.getRecord(module.host, attempt.username!);
      return wanted.filter((h) => !record?.scram[h]).map((hash) => ({ name: upgradeTaskName(hash), hash }));
    };

    const sendContinue = (session: Session, attempt: Attempt) => {
      attempt.phase = 'task';
      const data = attempt.continued ? undefined : attempt.additionalData;
      attempt.continued = true;
      const task = attempt.tasks[0]!;
      send(session, 'continue', (el) => {
        if (data?.length) el.c('additional-data').t(data.toString('base64'));
        el.c('tasks').c('task').t(task.name);
        el.c('text', { 'xml:lang': 'en' }).t(`Add ${task.hash} credentials to the account, as requested`);
      });
    };

    /** Authenticated: inline features, then <success/> and the stream features (no stream restart). */
    const finish = async (session: Session, attempt: Attempt) => {
      attempt.phase = 'finishing';
      if (session.type !== 'c2s_unauthed') {
        session.close({ condition: 'policy-violation', text: 'Already authenticated' });
        return;
      }
      const username = attempt.username!;
      module.privileged.sessions.makeAuthenticated(session, username);
      const extensions = new Element('success', { xmlns: NS_SASL2 });
      const event: Sasl2SuccessEvent = { session, request: attempt.request, userAgent: attempt.userAgent, mechanism: attempt.mechanism, success: extensions };
      await module.fireAsync('sasl2-success', event);
      await rememberClient(username, attempt.userAgent).catch((err: unknown) => module.log.error('cannot remember the client of %s: %s', username, err));
      attempts.delete(session);
      // Stream management resumed an earlier session on this connection (XEP-0198 inline).
      const resumed = event.resumed;
      if (resumed) session = resumed;
      if (session.destroyed) return;
      const success = new Element('success', { xmlns: NS_SASL2 });
      if (!attempt.continued && attempt.additionalData?.length) success.c('additional-data').t(attempt.additionalData.toString('base64'));
      success.c('authorization-identifier').t(session.full_jid ?? `${username}@${module.host}`);
      for (const child of extensions.children) if (typeof child !== 'string') success.cnode(child);
      session.send(success);
      // One info line per login, as mod_saslauth's: operators see who logged in how; tests count SASL attempts by it.
      module.log.info('authenticated %s@%s from %s with %s (SASL2)', username, module.host, session.conn?.ip, attempt.mechanism);
      if (resumed) return;
      const features = new Element('stream:features');
      module.emit('stream-features', { origin: session, features } satisfies StreamFeaturesEvent);
      session.send(features);
    };

    const rememberClient = async (username: string, ua: UserAgent | undefined) => {
      if (!ua?.id) return;
      const now = Date.now();
      const seen = (await knownClients.getAll<Json>(username)) as unknown as Map<string, KnownClient>;
      const entry: KnownClient = { firstSeen: seen.get(ua.id)?.firstSeen ?? now, lastSeen: now };
      if (ua.software) entry.software = ua.software;
      if (ua.device) entry.device = ua.device;
      const changes: Record<string, Json | undefined> = { [ua.id]: { ...entry } };
      seen.delete(ua.id);
      const stale = [...seen.entries()].sort((a, b) => a[1].lastSeen - b[1].lastSeen).slice(0, Math.max(0, seen.size + 1 - MAX_KNOWN_CLIENTS));
      for (const [id] of stale) changes[id] = undefined;
      await knownClients.setKeys(username, changes);
    };

    /** SASL2 elements on an authenticated stream end it (XEP-0388 §3.8 for <authenticate/>). */
    const authenticated = (session: Session) => {
      if (session.type === 'c2s_unauthed') return false;
      session.close({ condition: 'policy-violation', text: 'Already authenticated' });
      return true;
    };

    module.hook(`stream-element/${NS_SASL2}:authenticate`, ({ origin, element }) => {
      if (authenticated(origin)) return true;
      if (attempts.has(origin)) {
        origin.close({ condition: 'policy-violation', text: 'Authentication already in progress' });
        return true;
      }
      if (!origin.conn?.secure) {
        fail(origin, 'encryption-required', 'SASL2 needs TLS');
        return true;
      }
      const mechanism = attrsOf(element).mechanism;
      const userAgent = parseUserAgent(element.getChild('user-agent'), module);
      const ctx = mechanism ? requestContext(origin, mechanism, { request: element, userAgent }) : undefined;
      const exchange = mechanism && ctx ? module.sasl.start(mechanism, ctx) : undefined;
      if (!mechanism || !exchange) {
        fail(origin, 'invalid-mechanism', `Mechanism ${mechanism ?? '(none)'} is not offered`);
        return true;
      }
      const ir = element.getChild('initial-response');
      const initial = ir ? decodeSaslPayload(ir.text().replace(/\s+/g, '')) : undefined;
      if (ir && initial === undefined) {
        fail(origin, 'incorrect-encoding', 'Invalid base64');
        return true;
      }
      const attempt: Attempt = { request: element, userAgent, mechanism, exchange, phase: 'mechanism', busy: false, tasks: [], continued: false };
      attempts.set(origin, attempt);
      // No initial response: an empty challenge asks for it (RFC 4422 §3.3; every mechanism here is client-first).
      if (initial === undefined) send(origin, 'challenge');
      else mechanismStep(origin, attempt, initial);
      return true;
    });

    module.hook(`stream-element/${NS_SASL2}:response`, ({ origin, element }) => {
      if (authenticated(origin)) return true;
      const attempt = attempts.get(origin);
      if (!attempt || attempt.phase !== 'mechanism' || attempt.busy) {
        fail(origin, 'malformed-request', attempt ? 'Unexpected response' : 'No authentication in progress');
        return true;
      }
      const data = decodeSaslPayload(element.text().replace(/\s+/g, ''));
      if (data === undefined) {
        fail(origin, 'incorrect-encoding', 'Invalid base64');
        return true;
      }
      mechanismStep(origin, attempt, data);
      return true;
    });

    module.hook(`stream-element/${NS_SASL2}:next`, ({ origin, element }) => {
      if (authenticated(origin)) return true;
      const attempt = attempts.get(origin);
      const task = attempt?.tasks[0];
      if (!attempt || attempt.phase !== 'task' || attempt.busy || !task || task.salt) {
        fail(origin, 'malformed-request', 'No task was offered');
        return true;
      }
      if (element.attrs.task !== task.name) {
        fail(origin, 'invalid-mechanism', `Task ${String(element.attrs.task)} was not offered`);
        return true;
      }
      // XEP-0480 §3: the salt and iteration count of the new credentials; the client answers with SaltedPassword.
      task.salt = randomBytes(16);
      task.iterations = DEFAULT_ITERATIONS[task.hash];
      send(origin, 'task-data', (el) => el.c('salt', { xmlns: NS_SCRAM_UPGRADE, iterations: String(task.iterations) }).t(task.salt!.toString('base64')));
      return true;
    });

    module.hook(`stream-element/${NS_SASL2}:task-data`, ({ origin, element }) => {
      if (authenticated(origin)) return true;
      const attempt = attempts.get(origin);
      const task = attempt?.tasks[0];
      if (!attempt || attempt.phase !== 'task' || attempt.busy || !task?.salt) {
        fail(origin, 'malformed-request', 'No task in progress');
        return true;
      }
      const hashEl = element.getChild('hash', NS_SCRAM_UPGRADE);
      const salted = hashEl ? decodeSaslPayload(hashEl.text().replace(/\s+/g, '')) : undefined;
      if (!salted || salted.length !== hashLength(task.hash)) {
        fail(origin, 'malformed-request', `Expected a base64 SCRAM-${task.hash} SaltedPassword`);
        return true;
      }
      runStep(origin, attempt, async () => {
        await module.privileged.users.addScramCredentials(module.host, attempt.username!, task.hash, credentialsFromSaltedPassword(task.hash, salted, task.salt!, task.iterations!));
        if (!current(origin, attempt)) return;
        attempt.tasks.shift();
        if (attempt.tasks.length) sendContinue(origin, attempt);
        else await finish(origin, attempt);
      });
      return true;
    });

    module.hook(`stream-element/${NS_SASL2}:abort`, ({ origin }) => {
      if (authenticated(origin)) return true;
      const attempt = attempts.get(origin);
      if (attempt) module.log.info('authentication aborted by %s from %s (%s)', who(attempt), origin.conn?.ip, attempt.mechanism);
      attempts.delete(origin);
      send(origin, 'failure', (el) => el.c('aborted', { xmlns: NS.sasl }));
      return true;
    });

    // XEP-0388 §2.5: while authentication is in progress, anything but SASL2 elements ends the stream.
    const interrupt = ({ origin }: { origin: Session }) => {
      if (!attempts.has(origin)) return undefined;
      origin.close({ condition: 'policy-violation', text: 'Only SASL2 elements are allowed during authentication' });
      return true;
    };
    for (const kind of ['message', 'presence', 'iq'] as const) module.hook(`unauthenticated-stanza/${kind}`, interrupt, 100);
    for (const name of ['auth', 'response', 'abort']) module.hook(`stream-element/${NS.sasl}:${name}`, interrupt, 100);

    module.export('clients', (jid: unknown) => listClients(module, knownClients, String(jid)), 'SASL2 client installations seen for an account (USER)');
  },
});

/** PLAIN and SCRAM prove the password: only after them may the client add credentials (XEP-0480). */
function passwordBased(mechanism: string): boolean {
  return mechanism === 'PLAIN' || mechanism.startsWith('SCRAM-');
}

function upgradeTaskName(hash: ScramHash): string {
  return `UPGR-SCRAM-${hash}`;
}

/** <user-agent/>: an id that is not a UUID is ignored (and logged); texts are trimmed to printable, short strings. */
function parseUserAgent(el: Element | undefined, module: ModuleApi): UserAgent | undefined {
  if (!el) return undefined;
  const ua: UserAgent = {};
  const id = attrsOf(el).id;
  if (id !== undefined) {
    if (UUID.test(id)) ua.id = id.toLowerCase();
    else module.log('ignoring a user-agent id that is not a UUID');
  }
  const software = cleanText(el.getChildText('software'));
  const device = cleanText(el.getChildText('device'));
  if (software) ua.software = software;
  if (device) ua.device = device;
  return ua;
}

function cleanText(s: string | null): string | undefined {
  // Control characters cannot occur in XML text anyway, except tab and line breaks.
  const t = s?.replace(/\s+/g, ' ').trim().slice(0, 100);
  return t || undefined;
}

async function listClients(module: ModuleApi, store: ReturnType<ModuleApi['storage']['map']>, jid: string) {
  const user = nodeprep(jid.includes('@') ? jid.slice(0, jid.indexOf('@')) : jid);
  if (!user) throw new Error('expected a user (USER or USER@HOST)');
  const all = (await store.getAll<Json>(user)) as unknown as Map<string, KnownClient>;
  return [...all.entries()].map(([id, c]) => ({
    id,
    software: c.software ?? '',
    device: c.device ?? '',
    firstSeen: new Date(c.firstSeen).toISOString(),
    lastSeen: new Date(c.lastSeen).toISOString(),
    host: module.host,
  }));
}
