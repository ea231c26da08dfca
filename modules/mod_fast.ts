//% requires_core_features: sessions-v1, sasl-mechanisms, sasl-mechanisms-per-host, tls-channel-binding, storage-map, user-deleted-event, module-exports, module-capabilities
// FAST (XEP-0484): a client that authenticated over SASL2 (mod_sasl2) asks for a token with
// <request-token/> and later logs in with it in one round trip, with the Hashed Token mechanisms
// HT-SHA-256-NONE and, where the connection has the binding, -EXPR (tls-exporter), -UNIQ
// (tls-unique) and -ENDP (tls-server-end-point). Tokens are per account and client installation
// (the SASL2 user-agent id) and bound to the mechanism they were requested for; a token is
// replaced by a new one once it is older than `tokenRotation`, the old one staying valid until the
// new one is used (XEP-0484 §3.4, the two-slot scheme of §5.1). Password change, account deletion
// and `revoke` (admin shell) end them. A token is never stored: the store keeps a random id per
// token and the token is HMAC(server key, id), with the server key in <dataDir>/fast.key, so the
// database and its backups never reveal one. Tokens are never logged.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { attrsOf, defineModule, nodeprep, type AccountRecord, type AdmitUser, type StreamTransport, type Json, type ModuleApi, type SaslContext, type SaslExchange, type SaslMechanism, type SaslStep } from '../core/api.ts';

const NS_FAST = 'urn:xmpp:fast:0';

/** The HT mechanisms (draft-schmaus-kitten-sasl-ht / draft-ietf-kitten-sasl-ht), best first, with their channel binding. */
const HT_MECHANISMS: readonly { name: string; binding?: string }[] = [
  { name: 'HT-SHA-256-EXPR', binding: 'tls-exporter' },
  { name: 'HT-SHA-256-UNIQ', binding: 'tls-unique' },
  { name: 'HT-SHA-256-ENDP', binding: 'tls-server-end-point' },
  { name: 'HT-SHA-256-NONE' },
];
const HMAC_LENGTH = 32;

/** One issued token: its id (the token is derived from it), mechanism and lifetime. */
interface TokenSlot {
  id: string;
  mechanism: string;
  issued: number;
  expiry: number;
  /** Which credentials the account had when the token was issued (`hash:digest of its salt`): a password change ends it. */
  credential: string;
}

/** A client installation's tokens (XEP-0484 §5.1): `current` is in use, `new` issued and not used yet. */
interface ClientTokens {
  current?: TokenSlot;
  new?: TokenSlot;
  software?: string;
  device?: string;
}

/** A successful token login on a connection, for the success handler (rotation). */
interface TokenLogin {
  slot: TokenSlot;
  invalidated: boolean;
}

export default defineModule({
  description: 'FAST authentication tokens (XEP-0484) with the HT-SHA-256 mechanisms',
  capabilities: ['users'],
  options: {
    tokenLifetime: { type: 'integer', description: 'Seconds a token is valid', default: 21 * 86400, min: 60 },
    tokenRotation: { type: 'integer', description: 'Seconds after which a token login gets a new token', default: 86400, min: 0 },
    maxClients: { type: 'integer', description: 'Client installations with tokens per account (the least recently issued are dropped)', default: 50, min: 1 },
  },
  load(module) {
    const key = serverKey(path.join(module.dataDir, 'fast.key'));
    const store = module.storage.map();
    const getClient = async (username: string, client: string) => (await store.get<Json>(username, client)) as ClientTokens | undefined;
    const getClients = async (username: string) => (await store.getAll<Json>(username)) as unknown as Map<string, ClientTokens>;
    const logins = new WeakMap<StreamTransport, TokenLogin>();

    const tokenOf = (username: string, client: string, slot: TokenSlot) =>
      createHmac('sha256', key).update(`${module.host}\0${username}\0${client}\0${slot.id}`).digest('base64url');

    const credentialOf = async (username: string, hash?: string): Promise<string> =>
      credentialTag(await module.privileged.users.getRecord(module.host, username), hash);

    const bindingsOf = (conn: StreamTransport | undefined) => (conn?.secure ? conn.channelBindingTypes() : undefined);

    const mechanism = (name: string, binding: string | undefined): SaslMechanism => ({
      name,
      preference: 5,
      // Only in SASL2 with <fast/> (XEP-0484 §3.3), over TLS, with the binding on this connection.
      available: (ctx) =>
        ctx.profile === 'SASL2' && !!ctx.conn?.secure && !!ctx.sasl2?.request.getChild('fast', NS_FAST) && (!binding || ctx.channelBindings.includes(binding)),
      start: (ctx, admit) => exchange(ctx, admit, name, binding),
    });

    const exchange = (ctx: SaslContext, admit: AdmitUser, name: string, binding: string | undefined): SaslExchange => {
      let claimedUser: string | undefined;
      let done = false;
      // A wrong token is a failed guess: the core's throttle counts it.
      const refuse = (text = 'Invalid or expired token'): SaslStep => ({ status: 'failure', condition: 'not-authorized', text, wrongCredentials: true });
      return {
        get claimedUser() {
          return claimedUser;
        },
        async step(data) {
          if (done) return { status: 'failure', condition: 'malformed-request', text: 'HT takes one message' };
          done = true;
          const msg = parseInitiator(data);
          if (!msg) return { status: 'failure', condition: 'malformed-request', text: 'Malformed HT message' };
          const username = nodeprep(msg.authcid);
          claimedUser = username ?? msg.authcid.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);
          const client = ctx.sasl2?.userAgent?.id;
          if (!username || !client) return refuse();
          const refused = await admit(username);
          if (refused) return refused;
          const cb = binding ? ctx.conn?.channelBinding(binding) : Buffer.alloc(0);
          if (!cb) return { status: 'failure', condition: 'not-authorized', text: `No ${binding ?? ''} channel binding on this connection` };
          const record = await getClient(username, client);
          let used: { slot: TokenSlot; which: 'new' | 'current'; token: string } | undefined;
          // The new slot first: using it retires the current one (XEP-0484 §5.1).
          for (const which of ['new', 'current'] as const) {
            const slot = record?.[which];
            if (!slot || slot.mechanism !== name) continue;
            const token = tokenOf(username, client, slot);
            const expected = createHmac('sha256', token).update(Buffer.concat([Buffer.from('Initiator'), cb, msg.extras])).digest();
            if (timingSafeEqual(expected, msg.proof)) {
              used = { slot, which, token };
              break;
            }
          }
          if (!used || !record) return refuse();
          // A token the server no longer trusts fails with credentials-expired (XEP-0484 §4.2).
          const expired = used.slot.expiry <= Date.now();
          if (expired || used.slot.credential !== (await credentialOf(username, used.slot.credential.split(':')[0]))) {
            return { status: 'failure', condition: 'credentials-expired', text: expired ? 'The token has expired' : 'The token was issued before the password changed' };
          }
          const fast = ctx.sasl2!.request.getChild('fast', NS_FAST)!;
          const invalidated = fast.attrs.invalidate === 'true' || fast.attrs.invalidate === '1';
          // Durable before <success/>: a log-out request ends the client's tokens, a first use of the new one retires the old.
          if (invalidated) await store.set(username, client, undefined);
          else if (used.which === 'new') await store.set(username, client, asJson({ ...record, current: used.slot, new: undefined }));
          if (ctx.conn) logins.set(ctx.conn, { slot: used.slot, invalidated });
          const proof = createHmac('sha256', used.token).update(Buffer.concat([Buffer.from('Responder'), cb])).digest();
          // The responder message in the format the client used: draft-ietf-kitten-sasl-ht frames it as NUL extras NUL hmac.
          const reply = msg.framed ? Buffer.concat([Buffer.from([0, 0]), proof]) : proof;
          return { status: 'success', data: reply, username };
        },
      };
    };

    for (const m of HT_MECHANISMS) module.sasl.register(mechanism(m.name, m.binding));

    module.hook('sasl2-inline-features', ({ origin, inline }) => {
      const bindings = bindingsOf(origin.conn);
      if (!bindings) return;
      const fast = inline.c('fast', { xmlns: NS_FAST });
      for (const m of HT_MECHANISMS) if (!m.binding || bindings.includes(m.binding)) fast.c('mechanism').t(m.name);
    });

    module.hook('sasl2-success', async ({ session, request, userAgent, success }) => {
      const login = session.conn ? logins.get(session.conn) : undefined;
      if (session.conn) logins.delete(session.conn);
      const requested = attrsOf(request.getChild('request-token', NS_FAST)).mechanism;
      const bindings = bindingsOf(session.conn) ?? [];
      const offered = HT_MECHANISMS.filter((m) => !m.binding || bindings.includes(m.binding)).map((m) => m.name);
      let mechanism: string | undefined;
      if (requested !== undefined) {
        if (offered.includes(requested)) mechanism = requested;
        else module.log('%s: token requested for %s, which is not offered', session.id, requested);
      } else if (login && !login.invalidated && Date.now() - login.slot.issued >= module.option('tokenRotation') * 1000) {
        mechanism = login.slot.mechanism;
      }
      const client = userAgent?.id;
      if (!mechanism) return undefined;
      if (!client) {
        module.log('%s: no user-agent id, so no FAST token', session.id);
        return undefined;
      }
      const username = session.username;
      if (username === undefined) return undefined;
      const now = Date.now();
      const slot: TokenSlot = {
        id: randomBytes(16).toString('base64url'),
        mechanism,
        issued: now,
        expiry: now + module.option('tokenLifetime') * 1000,
        credential: await credentialOf(username),
      };
      const all = await getClients(username);
      const record: ClientTokens = { ...all.get(client), new: slot };
      if (userAgent.software) record.software = userAgent.software;
      if (userAgent.device) record.device = userAgent.device;
      all.set(client, record);
      await store.setKeys(username, { ...prune(all, now, module.option('maxClients')), [client]: asJson(record) });
      success.c('token', { xmlns: NS_FAST, expiry: dateTime(slot.expiry), token: tokenOf(username, client, slot) });
      module.log('%s: issued a %s token to %s@%s (client %s)', session.id, mechanism, username, module.host, userAgent.software ?? client);
      return undefined;
    });

    const forget = async (username: string) => store.clear(username);
    module.hook('user-password-changed', ({ username }) => forget(username));
    module.hook('user-deleted', async ({ username }) => {
      await forget(username);
    });

    module.export('list', async (user: unknown) => {
      const username = userArg(module, user);
      const all = await getClients(username);
      return [...all.entries()].map(([client, r]) => {
        const latest = r.new ?? r.current;
        return {
          client,
          software: r.software ?? '',
          device: r.device ?? '',
          mechanism: latest?.mechanism ?? '',
          issued: latest ? dateTime(latest.issued) : '',
          expiry: latest ? dateTime(Math.max(r.new?.expiry ?? 0, r.current?.expiry ?? 0)) : '',
        };
      });
    }, 'FAST clients of an account and their tokens\' mechanism and expiry (USER)');

    module.export('revoke', async (user: unknown, client: unknown) => {
      const username = userArg(module, user);
      const id = String(client ?? '').toLowerCase();
      if (!(await store.get(username, id))) throw new Error(`${username}@${module.host} has no FAST token for client ${id}`);
      await store.set(username, id, undefined);
      module.log.info('revoked the FAST tokens of %s@%s for client %s', username, module.host, id);
      return `revoked the FAST tokens of ${username}@${module.host} for client ${id}`;
    }, 'End the FAST tokens of one client of an account (USER CLIENT-ID)');

    module.export('revokeAll', async (user: unknown) => {
      const username = userArg(module, user);
      await forget(username);
      module.log.info('revoked every FAST token of %s@%s', username, module.host);
      return `revoked every FAST token of ${username}@${module.host}`;
    }, 'End every FAST token of an account (USER)');
  },
});

/** The server key tokens are derived from: made once, kept in the data directory (mode 0600). */
function serverKey(file: string): Buffer {
  mkdirSync(path.dirname(file), { recursive: true });
  // Written whole under a private name, then linked into place: a CLI process and the server
  // starting at once never read a half-written key, and the first link wins.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length < 32) throw new Error(`${file} does not hold a FAST server key (32 bytes, base64)`);
  return key;
}

/**
 * The HT initiator message: `authcid NUL hmac` (draft-schmaus-kitten-sasl-ht, what clients send
 * today) or `authcid NUL extra-values NUL hmac` (draft-ietf-kitten-sasl-ht). The HMAC is 32 raw
 * bytes for SHA-256, so the two forms differ by length.
 */
function parseInitiator(data: Buffer): { authcid: string; extras: Buffer; proof: Buffer; framed: boolean } | undefined {
  const nul = data.indexOf(0);
  if (nul <= 0 || nul > 1023) return undefined;
  let authcid: string;
  try {
    authcid = new TextDecoder('utf-8', { fatal: true }).decode(data.subarray(0, nul));
  } catch {
    return undefined;
  }
  const rest = data.subarray(nul + 1);
  if (rest.length === HMAC_LENGTH) return { authcid, extras: Buffer.alloc(0), proof: rest, framed: false };
  const sep = rest.length - HMAC_LENGTH - 1;
  if (sep < 0 || rest[sep] !== 0) return undefined;
  const extras = rest.subarray(0, sep);
  if (extras.length && !/^[A-Za-z0-9/+_-]+=[A-Za-z0-9/+_-]+(,[A-Za-z0-9/+_-]+=[A-Za-z0-9/+_-]+)*$/.test(extras.toString('latin1'))) return undefined;
  return { authcid, extras, proof: rest.subarray(sep + 1), framed: true };
}

/** `hash:digest` of one SCRAM salt of the account (the given hash, else SHA-256, else any): changes when the password does. */
function credentialTag(record: AccountRecord | undefined, hash?: string): string {
  const scram = (record?.scram ?? {}) as Record<string, { salt: string } | undefined>;
  const h = hash ?? (scram['SHA-256'] ? 'SHA-256' : Object.keys(scram).find((k) => scram[k]));
  const salt = h ? scram[h]?.salt : undefined;
  return h && salt ? `${h}:${createHash('sha256').update(salt).digest('base64url').slice(0, 22)}` : '';
}

/** Keys to delete so that at most `max` clients with unexpired tokens remain (the least recently issued go). */
function prune(all: Map<string, ClientTokens>, now: number, max: number): Record<string, undefined> {
  const out: Record<string, undefined> = {};
  const live: [string, number][] = [];
  for (const [client, r] of all) {
    const slots = [r.current, r.new].filter((s): s is TokenSlot => !!s && s.expiry > now);
    if (!slots.length) out[client] = undefined;
    else live.push([client, Math.max(...slots.map((s) => s.issued))]);
  }
  live.sort((a, b) => b[1] - a[1]);
  for (const [client] of live.slice(max)) out[client] = undefined;
  return out;
}

function asJson(record: ClientTokens): Json {
  return JSON.parse(JSON.stringify(record)) as Json;
}

function dateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function userArg(module: ModuleApi, user: unknown): string {
  const s = String(user ?? '');
  const at = s.indexOf('@');
  if (at >= 0 && s.slice(at + 1) !== module.host) throw new Error(`${s} is not an account of ${module.host}`);
  const username = nodeprep(at >= 0 ? s.slice(0, at) : s);
  if (!username) throw new Error('expected a user (USER or USER@HOST)');
  return username;
}
