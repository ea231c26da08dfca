// Accounts: SCRAM credentials only (RFC 5802/7677: salted, iterated; the password is never
// stored). One keyval record per account in the host's `accounts` store. New passwords get every
// hash of SCRAM_HASHES; older records gain missing ones when the password is next seen (PLAIN
// login, password change) or through addScramCredentials (XEP-0480 upgrade tasks).
import { CoreError } from './util/errors.ts';
import type { EventBus } from './util/events.ts';
import type { GlobalEvents, HostEvents, UserEvent } from './event-types.ts';
import { nodeprep } from './util/jid.ts';
import { getLogger } from './util/log.ts';
import { credentialsProblem, deriveCredentialsAsync, SCRAM_HASHES, verifyPassword, type ScramCredentials, type ScramHash } from './util/scram.ts';
import type { Json, KeyValStore, StorageManager } from './storage/manager.ts';

export interface AccountRecord {
  scram: Partial<Record<ScramHash, ScramCredentials>>;
  created: number;
}

export class UserManager {
  private readonly log = getLogger('core:usermanager');
  /** Per host, how many accounts lack each hash's credentials (known once countCredentials ran). */
  private readonly lacking = new Map<string, Record<ScramHash, number>>();
  /** Per account, the tail of its queued record updates (read-modify-write never interleaves). */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly storage: StorageManager,
    private readonly events: EventBus<GlobalEvents>,
    private readonly hostEvents: (host: string) => EventBus<HostEvents> | undefined,
    /** Close the account's sessions (before its data goes). */
    private readonly closeSessions: (host: string, username: string) => void = () => undefined,
  ) {}

  private accounts(host: string): KeyValStore {
    return this.storage.keyval(host, 'accounts');
  }

  private prepUsername(username: string): string {
    const u = nodeprep(username);
    if (!u) throw new CoreError('JID_INVALID', `invalid username '${username}'`);
    return u;
  }

  async exists(host: string, username: string): Promise<boolean> {
    const u = nodeprep(username);
    if (!u) return false;
    return (await this.accounts(host).get(u)) !== undefined;
  }

  async create(host: string, username: string, password: string): Promise<void> {
    const u = this.prepUsername(username);
    await this.serialized(host, u, async () => {
      if (await this.exists(host, u)) throw new CoreError('USER_EXISTS', `${u}@${host} already exists`);
      await this.writeCredentials(host, u, password, Date.now());
    });
    this.log.info('created account %s@%s', u, host);
    this.fire('user-created', host, { host, username: u });
  }

  async setPassword(host: string, username: string, password: string): Promise<void> {
    const u = this.prepUsername(username);
    await this.serialized(host, u, async () => {
      const existing = await this.getRecord(host, u);
      if (!existing) throw new CoreError('USER_NOT_FOUND', `${u}@${host} does not exist`);
      await this.writeCredentials(host, u, password, existing.created, existing);
    });
    this.log.info('changed password of %s@%s', u, host);
    this.fire('user-password-changed', host, { host, username: u });
  }

  private async writeCredentials(host: string, username: string, password: string, created: number, before?: AccountRecord): Promise<void> {
    const scram: AccountRecord['scram'] = {};
    for (const hash of SCRAM_HASHES) scram[hash] = await deriveCredentialsAsync(hash, password);
    const record: AccountRecord = { scram, created };
    await this.accounts(host).set(username, record as unknown as Json);
    if (before) this.countChange(host, before, record);
  }

  /**
   * Add (or replace) one hash's credentials of an existing account: the XEP-0480 upgrade path,
   * where the client sends the SaltedPassword for a hash the account lacks.
   */
  async addScramCredentials(host: string, username: string, hash: ScramHash, creds: ScramCredentials): Promise<void> {
    const u = this.prepUsername(username);
    const problem = credentialsProblem(hash, creds);
    if (problem) throw new CoreError('CREDENTIALS_INVALID', `SCRAM-${hash} credentials for ${u}@${host}: ${problem}`);
    await this.serialized(host, u, async () => {
      const before = await this.getRecord(host, u);
      if (!before) throw new CoreError('USER_NOT_FOUND', `${u}@${host} does not exist`);
      const record: AccountRecord = { ...before, scram: { ...before.scram, [hash]: { ...creds } } };
      await this.accounts(host).set(u, record as unknown as Json);
      this.countChange(host, before, record);
    });
    this.log.info('added SCRAM-%s credentials to %s@%s', hash, u, host);
  }

  /**
   * After the password was verified (SASL PLAIN): store the credentials of every hash the account
   * lacks. Returns the hashes added (none for an up-to-date account, which costs nothing).
   */
  async upgradeCredentials(host: string, username: string, password: string): Promise<ScramHash[]> {
    const u = nodeprep(username);
    if (!u) return [];
    const missing = SCRAM_HASHES.filter((h) => !this.lacking.has(host) || (this.lacking.get(host)?.[h] ?? 0) > 0);
    if (!missing.length) return [];
    return this.serialized(host, u, async () => {
      const before = await this.getRecord(host, u);
      const add = before ? SCRAM_HASHES.filter((h) => !before.scram[h]) : [];
      if (!before || !add.length || !(await this.verify(before, password))) return [];
      const scram = { ...before.scram };
      for (const hash of add) scram[hash] = await deriveCredentialsAsync(hash, password);
      const record: AccountRecord = { ...before, scram };
      await this.accounts(host).set(u, record as unknown as Json);
      this.countChange(host, before, record);
      this.log.info('added SCRAM-%s credentials to %s@%s', add.join(', SCRAM-'), u, host);
      return add;
    });
  }

  /**
   * Count, for a host, the accounts lacking each hash (one pass over the accounts; afterwards kept
   * current by every change made through this manager). Until then hasEveryAccount() is false.
   */
  async countCredentials(host: string): Promise<void> {
    const counts = Object.fromEntries(SCRAM_HASHES.map((h) => [h, 0])) as Record<ScramHash, number>;
    for (const u of await this.list(host)) {
      const record = await this.getRecord(host, u);
      for (const h of SCRAM_HASHES) if (!record?.scram[h]) counts[h]++;
    }
    this.lacking.set(host, counts);
    for (const h of SCRAM_HASHES) {
      if (counts[h]) this.log.info('%s: %d accounts without SCRAM-%s credentials; SCRAM-%s is offered once every account has them (added at its next PLAIN login or password change)', host, counts[h], h, h);
    }
  }

  /** Whether every account of the host has credentials for `hash` (false until counted). */
  hasEveryAccount(host: string, hash: ScramHash): boolean {
    return this.lacking.get(host)?.[hash] === 0;
  }

  private countChange(host: string, before: AccountRecord | undefined, after: AccountRecord | undefined): void {
    const counts = this.lacking.get(host);
    if (!counts) return;
    for (const h of SCRAM_HASHES) {
      const was = before ? !before.scram[h] : false;
      const is = after ? !after.scram[h] : false;
      counts[h] += Number(is) - Number(was);
    }
  }

  private serialized<T>(host: string, username: string, fn: () => Promise<T>): Promise<T> {
    const key = `${host}\u0000${username}`;
    const run = (this.queues.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.then(() => undefined, () => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  /**
   * Delete the account: its sessions are closed, then `user-deleted` is fired (awaited, so
   * modules can notify contacts while the data still exists), then every store of the user is
   * purged.
   */
  async delete(host: string, username: string): Promise<void> {
    const u = this.prepUsername(username);
    const before = await this.getRecord(host, u);
    if (!before) throw new CoreError('USER_NOT_FOUND', `${u}@${host} does not exist`);
    this.closeSessions(host, u);
    const event: UserEvent = { host, username: u };
    await this.hostEvents(host)?.fireAsync('user-deleted', event);
    await this.events.fireAsync('user-deleted', event);
    await this.storage.purgeUser(host, u);
    this.countChange(host, before, undefined);
    this.log.info('deleted account %s@%s', u, host);
  }

  async getRecord(host: string, username: string): Promise<AccountRecord | undefined> {
    return (await this.accounts(host).get(username)) as AccountRecord | undefined;
  }

  async getScram(host: string, username: string, hash: ScramHash): Promise<ScramCredentials | undefined> {
    return (await this.getRecord(host, username))?.scram[hash];
  }

  /** Verify a plaintext password (SASL PLAIN) against the stored SCRAM keys. */
  async checkPassword(host: string, username: string, password: string): Promise<boolean> {
    const record = await this.getRecord(host, username);
    return record ? this.verify(record, password) : false;
  }

  /** Any hash's keys prove the password; the one with the fewest iterations costs least. */
  private verify(record: AccountRecord, password: string): Promise<boolean> {
    const stored = SCRAM_HASHES.flatMap((h) => (record.scram[h] ? [{ hash: h, creds: record.scram[h] }] : []));
    const cheapest = stored.sort((a, b) => a.creds.iterations - b.creds.iterations)[0];
    return cheapest ? verifyPassword(cheapest.hash, cheapest.creds, password) : Promise.resolve(false);
  }

  async list(host: string): Promise<string[]> {
    return this.accounts(host).users();
  }

  // ---- disabled accounts (XEP-0133 disable-user / reenable-user) ---------------------------------
  // A separate store, 'accounts_disabled' (user → { since: ms }), so account records stay as they
  // are; SASL refuses a disabled account with account-disabled (RFC 6120 §6.5.2), after its
  // credentials were proven. Purged with the user's other data when the account is deleted.

  private disabledStore(host: string): KeyValStore {
    return this.storage.keyval(host, 'accounts_disabled');
  }

  /** Disable or re-enable an existing account (closing its sessions is the caller's). */
  async setDisabled(host: string, username: string, disabled: boolean): Promise<void> {
    const u = this.prepUsername(username);
    await this.serialized(host, u, async () => {
      if (!(await this.exists(host, u))) throw new CoreError('USER_NOT_FOUND', `${u}@${host} does not exist`);
      if (disabled) await this.disabledStore(host).set(u, { since: Date.now() });
      else await this.disabledStore(host).set(u, undefined);
    });
    this.log.info('%s account %s@%s', disabled ? 'disabled' : 're-enabled', u, host);
  }

  async isDisabled(host: string, username: string): Promise<boolean> {
    const u = nodeprep(username);
    return u ? (await this.disabledStore(host).get(u)) !== undefined : false;
  }

  async listDisabled(host: string): Promise<string[]> {
    return this.disabledStore(host).users();
  }

  private fire(name: 'user-created' | 'user-password-changed', host: string, event: UserEvent): void {
    this.hostEvents(host)?.emit(name, event);
    this.events.emit(name, event);
  }
}
