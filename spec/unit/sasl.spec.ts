// core/sasl.ts and the account side of core/usermanager.ts: brute-force throttling with a
// controlled clock (memory storage), SCRAM credential upgrades and the SHA-512 offer, and the
// mechanisms a stream is offered.
import assert from 'node:assert/strict';
import { addLogSink, setLogLevel } from '../../core/util/log.ts';
import { AuthThrottle, addressKey, type AuthThrottleOptions, type SaslExchange, type SaslStep } from '../../core/sasl.ts';
import { deriveCredentials, verifyPassword } from '../../core/util/scram.ts';
import type { Server } from '../../core/server.ts';
import { StorageManager, type Json } from '../../core/storage/manager.ts';
import { makeServer } from '../helpers/core.ts';

const HOST = 'example.org';
const OPTIONS: AuthThrottleOptions = {
  addressDelayAfter: 5,
  addressLockAfter: 8,
  accountDelayAfter: 10,
  accountLockAfter: 20,
  delay: 0,
  lockout: 900,
  window: 3600,
};

/** An exchange that answers its one step with `result`, claiming `user`. */
function exchange(user: string, result: SaslStep): SaslExchange {
  return { claimedUser: user, step: async () => result };
}
const wrong: SaslStep = { status: 'failure', condition: 'not-authorized', text: 'authentication failed', wrongCredentials: true };
const right = (user: string): SaslStep => ({ status: 'success', data: Buffer.alloc(0), username: user });

describe('core/sasl: AuthThrottle', () => {
  let storage: StorageManager;
  let throttle: AuthThrottle;
  let now: number;
  let warnings: string[];
  let removeSink: () => void;

  const guess = async (ip: string, user: string, result: SaslStep = wrong): Promise<string> => {
    const r = await throttle.attempt(HOST, ip).run(exchange(user, result)).step(Buffer.alloc(0));
    return r.status === 'failure' ? r.condition : r.status;
  };

  beforeEach(() => {
    storage = new StorageManager({ driver: 'memory', dataDir: '' });
    now = 1_000_000_000;
    throttle = new AuthThrottle(storage, () => OPTIONS, () => now);
    warnings = [];
    removeSink = addLogSink((level, _ns, line) => {
      if (level === 'warn') warnings.push(line);
    });
    setLogLevel('error'); // the warnings are asserted on, not printed
  });
  afterEach(async () => {
    setLogLevel('info');
    removeSink();
    await storage.close();
  });

  it('lets 5 failures from an address through, delays the next ones, then locks the address', async () => {
    const results: string[] = [];
    for (let i = 0; i < 10; i++) results.push(await guess('192.0.2.1', 'alice'));
    assert.deepEqual(results, [...Array(8).fill('not-authorized'), 'temporary-auth-failure', 'temporary-auth-failure']);
    assert.equal(warnings.filter((w) => /^authentication from 192\.0\.2\.1 delayed/.test(w)).length, 3);
    assert.ok(warnings.some((w) => w.startsWith('address 192.0.2.1 locked out of authentication on example.org for 900 s after 8 failed attempts')));
    // The lock holds for a correct password too, and other addresses are not affected.
    assert.equal(await guess('192.0.2.1', 'alice', right('alice')), 'temporary-auth-failure');
    assert.equal(await guess('192.0.2.2', 'alice', right('alice')), 'success');
  });

  it('after the lockout, one more failure locks again; after the window without failures, the count starts over', async () => {
    for (let i = 0; i < 8; i++) await guess('192.0.2.1', 'alice');
    now += 901_000;
    assert.equal(await guess('192.0.2.1', 'alice'), 'not-authorized');
    assert.equal(await guess('192.0.2.1', 'alice'), 'temporary-auth-failure');
    now += 3_601_000 + 900_000;
    warnings = [];
    for (let i = 0; i < 5; i++) assert.equal(await guess('192.0.2.1', 'alice'), 'not-authorized');
    assert.deepEqual(warnings, []);
  });

  it('counts only wrong credentials: protocol failures and successes leave the count alone', async () => {
    const malformed: SaslStep = { status: 'failure', condition: 'malformed-request', text: 'bad' };
    for (let i = 0; i < 20; i++) assert.equal(await guess('192.0.2.1', 'alice', malformed), 'malformed-request');
    for (let i = 0; i < 20; i++) assert.equal(await guess('192.0.2.1', 'alice', right('alice')), 'success');
    assert.deepEqual(warnings, []);
  });

  it('locks an account attacked from many addresses against addresses that failed, not against a clean one', async () => {
    for (let i = 0; i < 20; i++) assert.equal(await guess(`198.51.100.${i}`, 'alice'), 'not-authorized');
    assert.ok(warnings.some((w) => w.startsWith('account alice@example.org locked')));
    assert.ok(warnings.some((w) => /^failed authentication for alice@example\.org from 198\.51\.100\.\d+ answered after/.test(w)));
    // An address that already guessed wrong is refused once the account is locked…
    const attempt = throttle.attempt(HOST, '198.51.100.3');
    const scramLike: SaslExchange = { claimedUser: 'alice', step: async () => ({ status: 'challenge', data: Buffer.from('r=…') }) };
    const r = await attempt.run(scramLike).step(Buffer.alloc(0));
    assert.equal(r.status === 'failure' && r.condition, 'temporary-auth-failure');
    // …the owner on a clean address logs in, and that does not lift the lock for the attackers.
    assert.equal(await guess('203.0.113.9', 'alice', right('alice')), 'success');
    const again = await throttle.attempt(HOST, '198.51.100.5').run(scramLike).step(Buffer.alloc(0));
    assert.equal(again.status === 'failure' && again.condition, 'temporary-auth-failure');
  });

  it('a login clears the account count when no lock runs', async () => {
    for (let i = 0; i < 9; i++) await guess(`198.51.100.${i}`, 'alice');
    await guess('203.0.113.9', 'alice', right('alice'));
    warnings = [];
    for (let i = 0; i < 9; i++) await guess(`198.51.100.${100 + i}`, 'alice');
    assert.deepEqual(warnings.filter((w) => w.includes('answered after')), []);
  });

  it('counts attempts under way: parallel connections cannot outrun the count', async () => {
    for (let i = 0; i < 4; i++) await guess('192.0.2.1', 'alice');
    let release!: () => void;
    const held = new Promise<SaslStep>((resolve) => (release = () => resolve(wrong)));
    const pending = throttle.attempt(HOST, '192.0.2.1').run({ claimedUser: 'alice', step: () => held }).step(Buffer.alloc(0));
    await new Promise((r) => setImmediate(r));
    warnings = [];
    await guess('192.0.2.1', 'alice');
    assert.equal(warnings.filter((w) => w.includes('delayed')).length, 1, 'the 6th attempt is delayed while the 5th is under way');
    release();
    await pending;
  });

  it('re-checks a delayed attempt: a lock that began meanwhile refuses it', async () => {
    for (let i = 0; i < 7; i++) await guess('192.0.2.1', 'alice');
    let release!: () => void;
    const held = new Promise<SaslStep>((resolve) => (release = () => resolve(wrong)));
    const eighth = throttle.attempt(HOST, '192.0.2.1').run({ claimedUser: 'alice', step: () => held }).step(Buffer.alloc(0));
    await new Promise((r) => setImmediate(r));
    const ninth = guess('192.0.2.1', 'alice', right('alice')); // started while the 8th is under way: delayed
    release();
    assert.equal((await eighth).status, 'failure');
    assert.equal(await ninth, 'temporary-auth-failure');
  });

  it('does not slow parallel logins from an address without failures (a busy NAT)', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => guess('192.0.2.9', `user${i}`, right(`user${i}`))));
    assert.deepEqual(results, Array(20).fill('success'));
    assert.deepEqual(warnings, []);
  });

  it('is off when configured so', async () => {
    const off = new AuthThrottle(storage, () => undefined, () => now);
    for (let i = 0; i < 20; i++) {
      const r = await off.attempt(HOST, '192.0.2.1').run(exchange('alice', wrong)).step(Buffer.alloc(0));
      assert.equal(r.status === 'failure' && r.condition, 'not-authorized');
    }
  });

  it('counts IPv4-mapped addresses as IPv4 and IPv6 ones by their /64', () => {
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
  });
});

describe('core/usermanager: SCRAM credentials', () => {
  let server: Server;

  beforeEach(async () => {
    server = makeServer({ log: { level: 'error' } });
    await server.users.countCredentials(HOST);
  });
  afterEach(async () => {
    await server.storage.close();
  });

  it('stores SHA-1, SHA-256 and SHA-512 credentials for new passwords', async () => {
    await server.users.create(HOST, 'alice', 'pencil');
    const record = await server.users.getRecord(HOST, 'alice');
    assert.deepEqual(Object.keys(record!.scram).sort(), ['SHA-1', 'SHA-256', 'SHA-512']);
    assert.equal(await verifyPassword('SHA-512', record!.scram['SHA-512']!, 'pencil'), true);
    assert.equal(server.users.hasEveryAccount(HOST, 'SHA-512'), true);
  });

  it('offers SCRAM-SHA-512 only while every account has its credentials', async () => {
    const offered = () => server.sasl.offer({ host: HOST, conn: undefined, profile: 'SASL1', channelBindings: [] });
    await server.users.create(HOST, 'alice', 'pencil');
    assert.ok(offered().includes('SCRAM-SHA-512'));
    // An account from before SHA-512 (as stored by an older version).
    const old = { created: 1, scram: { 'SHA-1': deriveCredentials('SHA-1', 'old'), 'SHA-256': deriveCredentials('SHA-256', 'old') } };
    await server.storage.keyval(HOST, 'accounts').set('bob', old as unknown as Json);
    await server.users.countCredentials(HOST);
    assert.equal(server.users.hasEveryAccount(HOST, 'SHA-512'), false);
    assert.deepEqual(offered(), ['SCRAM-SHA-256', 'SCRAM-SHA-1']);

    // The wrong password upgrades nothing; the right one adds exactly what is missing.
    assert.deepEqual(await server.users.upgradeCredentials(HOST, 'bob', 'wrong'), []);
    assert.deepEqual(await server.users.upgradeCredentials(HOST, 'bob', 'old'), ['SHA-512']);
    assert.deepEqual(await server.users.upgradeCredentials(HOST, 'bob', 'old'), []);
    assert.equal((await server.users.getRecord(HOST, 'bob'))!.scram['SHA-1']!.storedKey, old.scram['SHA-1'].storedKey, 'existing credentials are kept');
    assert.ok(offered().includes('SCRAM-SHA-512'));
  });

  it('adds one hash’s credentials (XEP-0480 upgrade), and counts deletions and password changes', async () => {
    const old = { created: 1, scram: { 'SHA-1': deriveCredentials('SHA-1', 'old'), 'SHA-256': deriveCredentials('SHA-256', 'old') } };
    for (const u of ['bob', 'carol', 'dave']) await server.storage.keyval(HOST, 'accounts').set(u, old as unknown as Json);
    await server.users.countCredentials(HOST);
    await server.users.addScramCredentials(HOST, 'bob', 'SHA-512', deriveCredentials('SHA-512', 'old'));
    assert.equal(await verifyPassword('SHA-512', (await server.users.getRecord(HOST, 'bob'))!.scram['SHA-512']!, 'old'), true);
    await server.users.setPassword(HOST, 'carol', 'new');
    assert.equal(server.users.hasEveryAccount(HOST, 'SHA-512'), false);
    await server.users.delete(HOST, 'dave');
    assert.equal(server.users.hasEveryAccount(HOST, 'SHA-512'), true);
    await assert.rejects(server.users.addScramCredentials(HOST, 'nobody', 'SHA-512', deriveCredentials('SHA-512', 'x')), { code: 'USER_NOT_FOUND' });
    await assert.rejects(server.users.addScramCredentials(HOST, 'bob', 'SHA-512', deriveCredentials('SHA-256', 'x')), { code: 'CREDENTIALS_INVALID' });
    await assert.rejects(server.users.addScramCredentials(HOST, 'bob', 'SHA-512', { ...deriveCredentials('SHA-512', 'x'), iterations: 100 }), { code: 'CREDENTIALS_INVALID' });
  });

  it('does not offer SCRAM-SHA-512 before the accounts were counted', () => {
    const fresh = makeServer({ log: { level: 'error' } });
    try {
      assert.ok(!fresh.sasl.offer({ host: HOST, conn: undefined, profile: 'SASL1', channelBindings: [] }).includes('SCRAM-SHA-512'));
    } finally {
      void fresh.storage.close();
    }
  });
});
