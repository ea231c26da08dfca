// Accounts: SCRAM credentials only (RFC 5802/7677: salted, iterated; the password is never
// stored). One keyval record per account in the host's `accounts` store.
import { timingSafeEqual, createHmac, createHash } from 'node:crypto';
import { CoreError } from './errors.ts';
import type { EventBus } from './events.ts';
import { nodeprep } from './jid.ts';
import { getLogger } from './log.ts';
import { deriveCredentials, saltPasswordAsync, type ScramCredentials, type ScramHash } from './scram.ts';
import type { Json, KeyValStore, StorageManager } from './storagemanager.ts';

export interface AccountRecord {
  scram: Partial<Record<ScramHash, ScramCredentials>>;
  created: number;
}

export const SCRAM_HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256'];

export interface UserDeletedEvent {
  host: string;
  username: string;
}

export class UserManager {
  private readonly log = getLogger('core:usermanager');

  constructor(
    private readonly storage: StorageManager,
    private readonly events: EventBus,
    private readonly hostEvents: (host: string) => EventBus | undefined,
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
    if (await this.exists(host, u)) throw new CoreError('USER_EXISTS', `${u}@${host} already exists`);
    await this.writeCredentials(host, u, password, Date.now());
    this.log.info('created account %s@%s', u, host);
    this.fire('user-created', host, { host, username: u });
  }

  async setPassword(host: string, username: string, password: string): Promise<void> {
    const u = this.prepUsername(username);
    const existing = await this.getRecord(host, u);
    if (!existing) throw new CoreError('USER_NOT_FOUND', `${u}@${host} does not exist`);
    await this.writeCredentials(host, u, password, existing.created);
    this.log.info('changed password of %s@%s', u, host);
    this.fire('user-password-changed', host, { host, username: u });
  }

  private async writeCredentials(host: string, username: string, password: string, created: number): Promise<void> {
    const scram: AccountRecord['scram'] = {};
    for (const hash of SCRAM_HASHES) scram[hash] = deriveCredentials(hash, password);
    const record: AccountRecord = { scram, created };
    await this.accounts(host).set(username, record as unknown as Json);
  }

  /**
   * Delete the account: its sessions are closed, then `user-deleted` is fired (awaited, so
   * modules can notify contacts while the data still exists), then every store of the user is
   * purged.
   */
  async delete(host: string, username: string): Promise<void> {
    const u = this.prepUsername(username);
    if (!(await this.exists(host, u))) throw new CoreError('USER_NOT_FOUND', `${u}@${host} does not exist`);
    this.closeSessions(host, u);
    const event: UserDeletedEvent = { host, username: u };
    await this.hostEvents(host)?.fireAsync('user-deleted', event);
    await this.events.fireAsync('user-deleted', event);
    await this.storage.purgeUser(host, u);
    this.log.info('deleted account %s@%s', u, host);
  }

  async getRecord(host: string, username: string): Promise<AccountRecord | undefined> {
    return (await this.accounts(host).get(username)) as AccountRecord | undefined;
  }

  async getScram(host: string, username: string, hash: ScramHash): Promise<ScramCredentials | undefined> {
    return (await this.getRecord(host, username))?.scram[hash];
  }

  /** Verify a plaintext password (SASL PLAIN) against the stored SCRAM-SHA-256 (or SHA-1) keys. */
  async checkPassword(host: string, username: string, password: string): Promise<boolean> {
    const record = await this.getRecord(host, username);
    // Either record proves the password; SHA-1's (4096 iterations) costs less than SHA-256's.
    const hash: ScramHash = record?.scram['SHA-1'] ? 'SHA-1' : 'SHA-256';
    const creds = record?.scram[hash];
    if (!creds) return false;
    let salted: Buffer;
    try {
      salted = await saltPasswordAsync(hash, password, Buffer.from(creds.salt, 'base64'), creds.iterations);
    } catch {
      return false;
    }
    const alg = hash === 'SHA-1' ? 'sha1' : 'sha256';
    const clientKey = createHmac(alg, salted).update('Client Key').digest();
    const storedKey = createHash(alg).update(clientKey).digest();
    const expected = Buffer.from(creds.storedKey, 'base64');
    return expected.length === storedKey.length && timingSafeEqual(expected, storedKey);
  }

  async list(host: string): Promise<string[]> {
    return this.accounts(host).users();
  }

  private fire(name: string, host: string, event: UserDeletedEvent): void {
    this.hostEvents(host)?.emit(name, event);
    this.events.emit(name, event);
  }
}
