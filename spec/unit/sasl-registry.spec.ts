// The SASL mechanism registry (core/sasl.ts) as modules use it: mechanisms registered for every
// host or for one host, offered and started per host; and SCRAM credentials from a SaltedPassword.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SaslManager, type SaslContext, type SaslMechanism } from '../../core/sasl.ts';
import { credentialsFromSaltedPassword, deriveCredentials, saltPassword } from '../../core/util/scram.ts';
import { StorageManager } from '../../core/storage/manager.ts';
import type { UserManager } from '../../core/usermanager.ts';

const mech = (name: string, marker: string): SaslMechanism => ({
  name,
  preference: 1,
  available: () => true,
  start: () => ({ claimedUser: marker, step: async () => ({ status: 'failure' as const, condition: 'not-authorized' as const, text: marker }) }),
});

describe('unit: SASL mechanism registry', function () {
  const policy = { allowUnencryptedPlain: () => true, channelBindingPolicy: () => 'compatible' as const, authThrottle: () => undefined };
  const manager = () => new SaslManager({ hasEveryAccount: () => true } as unknown as UserManager, policy, new StorageManager({ driver: 'memory', dataDir: '' }));
  const ctx = (host: string, offered: string[] = []): SaslContext => ({ host, conn: undefined, profile: 'SASL2', offered, channelBindings: [] });

  it('keeps a host module\'s mechanism to its host, so each host may register its own of the same name', function () {
    const sm = manager();
    const offA = sm.register(mech('X-TEST', 'a'), 'a.example');
    sm.register(mech('X-TEST', 'b'), 'b.example');
    assert.ok(sm.offer(ctx('a.example')).includes('X-TEST'));
    assert.ok(sm.offer(ctx('b.example')).includes('X-TEST'));
    assert.ok(!sm.offer(ctx('c.example')).includes('X-TEST'));
    assert.equal(sm.start('X-TEST', ctx('a.example', ['X-TEST']))?.claimedUser, 'a');
    assert.equal(sm.start('X-TEST', ctx('b.example', ['X-TEST']))?.claimedUser, 'b');
    assert.equal(sm.get('X-TEST', 'b.example')?.name, 'X-TEST');
    assert.equal(sm.get('X-TEST'), undefined);
    assert.throws(() => sm.register(mech('X-TEST', 'again'), 'a.example'), /already registered/);
    offA();
    assert.ok(!sm.offer(ctx('a.example')).includes('X-TEST'));
    assert.ok(sm.offer(ctx('b.example')).includes('X-TEST'));
  });

  it('refuses a host mechanism named like a server-wide one, and the reverse', function () {
    const sm = manager();
    assert.throws(() => sm.register(mech('PLAIN', 'x'), 'a.example'), /already registered/);
    sm.register(mech('X-HOST', 'h'), 'a.example');
    sm.register(mech('X-ALL', 'g'));
    assert.throws(() => sm.register(mech('X-ALL', 'again'), 'a.example'), /already registered/);
    assert.ok(sm.offer(ctx('z.example')).includes('X-ALL'));
  });
});

describe('unit: SCRAM credentials from a SaltedPassword (XEP-0480 upgrade)', function () {
  it('equal the credentials derived from the password', function () {
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      const salt = randomBytes(16);
      const direct = deriveCredentials(hash, 'pencil', { salt, iterations: 4096 });
      const viaClient = credentialsFromSaltedPassword(hash, saltPassword(hash, 'pencil', salt, 4096), salt, 4096);
      assert.deepEqual(viaClient, direct);
    }
  });
});
