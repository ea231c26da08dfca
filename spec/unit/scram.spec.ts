import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import {
  ScramServer,
  channelBindingDecision,
  credentialsFromSaltedPassword,
  deriveCredentials,
  deriveCredentialsAsync,
  downgradeProtectionHash,
  escapeSaslname,
  verifyPassword,
  type ChannelBindingDecision,
  type ChannelBindingPolicy,
  type ChannelBindingProvider,
  type Gs2Flag,
  type ScramCredentials,
  type ScramHash,
  type ScramServerOptions,
  type ScramStep,
} from '../../core/util/scram.ts';

// RFC 5802 §5 (SCRAM-SHA-1)
const RFC5802 = {
  hash: 'SHA-1' as ScramHash,
  user: 'user',
  password: 'pencil',
  clientNonce: 'fyko+d2lbbFgONRv9qkxdawL',
  serverNonce: '3rfcNHYJY1ZVvWVs7j',
  salt: 'QSXCR+Q6sek8bf92',
  iterations: 4096,
  clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
  serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
  clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
};

// RFC 7677 §3 (SCRAM-SHA-256)
const RFC7677 = {
  hash: 'SHA-256' as ScramHash,
  user: 'user',
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  iterations: 4096,
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

// SCRAM-SHA-512 (draft-melnikov-scram-sha-512 defines it as RFC 5802 with SHA-512 but publishes
// no example exchange). This is RFC 7677's exchange run with SHA-512, as published by an
// independent implementation (MailKit's SaslMechanismScramSha512Tests) and recomputed here with
// node:crypto alone (referenceKeys / runClient).
const SHA512 = {
  hash: 'SHA-512' as ScramHash,
  user: 'user',
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  iterations: 4096,
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==',
  serverFinal: 'v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==',
};

const NODE_HASH: Record<ScramHash, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512' };
const HASH_LEN: Record<ScramHash, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-512': 64 };

/** Independent computation of the RFC key material, to check deriveCredentials. */
function referenceKeys(hash: ScramHash, password: string, saltB64: string, iterations: number) {
  const h = NODE_HASH[hash];
  const len = HASH_LEN[hash];
  const salted = pbkdf2Sync(password, Buffer.from(saltB64, 'base64'), iterations, len, h);
  const clientKey = createHmac(h, salted).update('Client Key').digest();
  return {
    storedKey: createHash(h).update(clientKey).digest('base64'),
    serverKey: createHmac(h, salted).update('Server Key').digest('base64'),
  };
}

const noBinding: ChannelBindingProvider = () => undefined;

function lookupFor(users: Record<string, ScramCredentials>): ScramServerOptions['lookup'] {
  return async (username) => users[username];
}

function server(overrides: Partial<ScramServerOptions> & Pick<ScramServerOptions, 'hash' | 'lookup'>): ScramServer {
  return new ScramServer({
    plus: false,
    offeredPlus: false,
    channelBindingTypes: [],
    policy: 'compatible',
    channelBinding: noBinding,
    ...overrides,
  });
}

function expectChallenge(step: ScramStep): string {
  assert.equal(step.status, 'challenge', step.status === 'failure' ? step.text : '');
  return step.data.toString('utf8');
}

function expectFailure(step: ScramStep, condition?: string): void {
  assert.equal(step.status, 'failure');
  if (condition !== undefined && step.status === 'failure') assert.equal(step.condition, condition);
}

/**
 * Minimal SCRAM client used to round-trip with the server. Returns the final server
 * result and checks the server signature.
 */
async function runClient(
  srv: ScramServer,
  hash: ScramHash,
  opts: {
    username: string;
    password: string;
    authzid?: string;
    gs2Flag?: string;
    cbindData?: Buffer;
    /** override the c= value sent in the final message */
    forceC?: string;
  },
): Promise<ScramStep> {
  const h = NODE_HASH[hash];
  const len = HASH_LEN[hash];
  const clientNonce = randomBytes(24).toString('base64');
  const gs2 = `${opts.gs2Flag ?? 'n'},${opts.authzid !== undefined ? `a=${escapeSaslname(opts.authzid)}` : ''},`;
  const bare = `n=${escapeSaslname(opts.username)},r=${clientNonce}`;
  const first = await srv.step(Buffer.from(gs2 + bare));
  if (first.status !== 'challenge') return first;
  const serverFirst = first.data.toString('utf8');
  const m = /^r=([^,]+),s=([^,]+),i=(\d+)(?:,h=[^,]+)?$/.exec(serverFirst);
  assert.ok(m, `bad server-first: ${serverFirst}`);
  const [, nonce = '', salt = '', iter] = m;
  assert.ok(nonce.startsWith(clientNonce));
  assert.ok(nonce.length > clientNonce.length);
  const salted = pbkdf2Sync(opts.password, Buffer.from(salt, 'base64'), Number(iter), len, h);
  const clientKey = createHmac(h, salted).update('Client Key').digest();
  const storedKey = createHash(h).update(clientKey).digest();
  const serverKey = createHmac(h, salted).update('Server Key').digest();
  const c = opts.forceC ?? Buffer.concat([Buffer.from(gs2), opts.cbindData ?? Buffer.alloc(0)]).toString('base64');
  const withoutProof = `c=${c},r=${nonce}`;
  const authMessage = `${bare},${serverFirst},${withoutProof}`;
  const clientSig = createHmac(h, storedKey).update(authMessage).digest();
  const proof = Buffer.alloc(len);
  for (let i = 0; i < len; i++) proof[i] = clientKey[i]! ^ clientSig[i]!;
  const final = await srv.step(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`));
  if (final.status === 'success') {
    const expected = createHmac(h, serverKey).update(authMessage).digest('base64');
    assert.equal(final.data.toString('utf8'), `v=${expected}`);
  }
  return final;
}

describe('core/scram', () => {
  for (const v of [RFC5802, RFC7677, SHA512]) {
    describe(`test vector (SCRAM-${v.hash})`, () => {
      const creds = deriveCredentials(v.hash, v.password, {
        salt: Buffer.from(v.salt, 'base64'),
        iterations: v.iterations,
      });

      it('deriveCredentials produces the expected StoredKey / ServerKey', () => {
        const ref = referenceKeys(v.hash, v.password, v.salt, v.iterations);
        assert.deepEqual(creds, { iterations: v.iterations, salt: v.salt, ...ref });
      });

      it('produces exactly the RFC server-first and server-final messages', async () => {
        const srv = server({ hash: v.hash, lookup: lookupFor({ [v.user]: creds }), nonce: v.serverNonce });
        assert.equal(expectChallenge(await srv.step(Buffer.from(v.clientFirst))), v.serverFirst);
        const final = await srv.step(Buffer.from(v.clientFinal));
        assert.equal(final.status, 'success');
        if (final.status !== 'success') return;
        assert.equal(final.data.toString('utf8'), v.serverFinal);
        assert.equal(final.username, v.user);
        assert.equal(final.authzid, undefined);
        // Exchange is over: further messages are rejected.
        expectFailure(await srv.step(Buffer.from(v.clientFinal)), 'malformed-request');
      });

      it('rejects a wrong proof (wrong password)', async () => {
        const wrong = deriveCredentials(v.hash, 'not-pencil', {
          salt: Buffer.from(v.salt, 'base64'),
          iterations: v.iterations,
        });
        const srv = server({ hash: v.hash, lookup: lookupFor({ [v.user]: wrong }), nonce: v.serverNonce });
        expectChallenge(await srv.step(Buffer.from(v.clientFirst)));
        expectFailure(await srv.step(Buffer.from(v.clientFinal)), 'not-authorized');
      });
    });
  }

  describe('deriveCredentials', () => {
    it('uses a random 16-byte salt and per-hash default iterations', () => {
      const a = deriveCredentials('SHA-256', 'secret');
      const b = deriveCredentials('SHA-256', 'secret');
      assert.equal(Buffer.from(a.salt, 'base64').length, 16);
      assert.notEqual(a.salt, b.salt);
      assert.notEqual(a.storedKey, b.storedKey);
      assert.equal(a.iterations, 10000);
      assert.equal(deriveCredentials('SHA-1', 'secret').iterations, 4096);
    });

    it('rejects iteration counts below 4096', () => {
      assert.throws(() => deriveCredentials('SHA-1', 'x', { iterations: 1000 }), RangeError);
    });

    it('SASLpreps the password', () => {
      const salt = randomBytes(16);
      // U+00AD SOFT HYPHEN maps to nothing; U+00A0 NBSP maps to space.
      assert.deepEqual(
        deriveCredentials('SHA-1', 'pen\u00ADcil a', { salt, iterations: 4096 }),
        deriveCredentials('SHA-1', 'pencil\u00A0a', { salt, iterations: 4096 }),
      );
    });
  });

  describe('exchange', () => {
    const hash: ScramHash = 'SHA-256';
    const creds = deriveCredentials(hash, 'correct horse', { iterations: 4096 });
    const users = { alice: creds, 'we,ird=name': creds };

    it('round-trips with an independent client and a random nonce', async () => {
      const r = await runClient(server({ hash, lookup: lookupFor(users) }), hash, {
        username: 'alice',
        password: 'correct horse',
      });
      assert.equal(r.status, 'success');
      if (r.status === 'success') assert.equal(r.username, 'alice');
    });

    it('round-trips SCRAM-SHA-1 too', async () => {
      const c1 = deriveCredentials('SHA-1', 'pw');
      const r = await runClient(server({ hash: 'SHA-1', lookup: lookupFor({ bob: c1 }) }), 'SHA-1', {
        username: 'bob',
        password: 'pw',
      });
      assert.equal(r.status, 'success');
    });

    it('unescapes usernames and authzids', async () => {
      const seen: string[] = [];
      const r = await runClient(
        server({
          hash,
          lookup: async (u) => {
            seen.push(u);
            return lookupFor(users)(u);
          },
        }),
        hash,
        { username: 'we,ird=name', password: 'correct horse', authzid: 'x=y,z@example.org' },
      );
      assert.deepEqual(seen, ['we,ird=name']);
      assert.equal(r.status, 'success');
      if (r.status === 'success') {
        assert.equal(r.username, 'we,ird=name');
        assert.equal(r.authzid, 'x=y,z@example.org');
      }
    });

    it('rejects a wrong password', async () => {
      const r = await runClient(server({ hash, lookup: lookupFor(users) }), hash, {
        username: 'alice',
        password: 'battery staple',
      });
      expectFailure(r, 'not-authorized');
    });

    it('fails for an unknown user only at the final step, with a stable fake salt', async () => {
      const srv1 = server({ hash, lookup: lookupFor(users) });
      const ch1 = expectChallenge(await srv1.step(Buffer.from('n,,n=mallory,r=abc')));
      const m = /^r=abc[^,]+,s=([^,]+),i=(\d+)$/.exec(ch1);
      assert.ok(m, ch1);
      assert.equal(Buffer.from(m[1]!, 'base64').length, 16);
      const srv2 = server({ hash, lookup: lookupFor(users) });
      const ch2 = expectChallenge(await srv2.step(Buffer.from('n,,n=mallory,r=xyz')));
      assert.equal(/,s=([^,]+),/.exec(ch2)?.[1], m[1], 'fake salt is deterministic per user');

      const r = await runClient(server({ hash, lookup: lookupFor(users) }), hash, {
        username: 'mallory',
        password: 'anything',
      });
      expectFailure(r, 'not-authorized');
    });

    it('rejects a mismatched nonce', async () => {
      const srv = server({ hash, lookup: lookupFor(users), nonce: 'SERVER' });
      expectChallenge(await srv.step(Buffer.from('n,,n=alice,r=client')));
      expectFailure(await srv.step(Buffer.from(`c=biws,r=clientOTHER,p=${Buffer.alloc(32).toString('base64')}`)), 'not-authorized');
    });

    it('maps lookup errors to temporary-auth-failure', async () => {
      const srv = server({
        hash,
        lookup: async () => {
          throw new Error('db down');
        },
      });
      expectFailure(await srv.step(Buffer.from('n,,n=alice,r=abc')), 'temporary-auth-failure');
    });

    describe('malformed client-first messages', () => {
      const bad: Array<[string, string | Buffer]> = [
        ['empty', ''],
        ['no gs2 header', 'n=alice,r=abc'],
        ['bad cbind flag', 'x,,n=alice,r=abc'],
        ['mandatory extension', 'n,,m=ext,n=alice,r=abc'],
        ['missing nonce', 'n,,n=alice'],
        ['attributes out of order', 'n,,r=abc,n=alice'],
        ['bad escape in username', 'n,,n=al=2Dice,r=abc'],
        ['empty username', 'n,,n=,r=abc'],
        ['non-printable nonce', 'n,,n=alice,r=ab\u00e9c'],
        ['control char in nonce', 'n,,n=alice,r=ab\u0007c'],
        ['username failing saslprep', 'n,,n=ali\u0007ce,r=abc'],
        ['garbage attribute', 'n,,n=alice,r=abc,garbage'],
        ['invalid UTF-8', Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61])],
      ];
      for (const [name, msg] of bad) {
        it(`rejects ${name}`, async () => {
          const srv = server({ hash, lookup: lookupFor(users) });
          const step = await srv.step(typeof msg === 'string' ? Buffer.from(msg) : msg);
          assert.equal(step.status, 'failure');
        });
      }

      it('ignores unknown (non-mandatory) extensions', async () => {
        const srv = server({ hash, lookup: lookupFor(users) });
        expectChallenge(await srv.step(Buffer.from('n,,n=alice,r=abc,x=whatever')));
      });
    });

    it('rejects malformed client-final messages', async () => {
      for (const fin of ['', 'c=biws', 'r=x,c=biws,p=AAAA', 'c=biws,r=abcSRV,p=not base64!', 'c=biws,r=abcSRV,p=AAAA']) {
        const srv = server({ hash, lookup: lookupFor(users), nonce: 'SRV' });
        expectChallenge(await srv.step(Buffer.from('n,,n=alice,r=abc')));
        assert.equal((await srv.step(Buffer.from(fin))).status, 'failure', fin);
      }
    });
  });

  describe('channel binding', () => {
    const hash: ScramHash = 'SHA-256';
    const creds = deriveCredentials(hash, 'pw', { iterations: 4096 });
    const users = { alice: creds };
    const exporter = randomBytes(32);
    const provider: ChannelBindingProvider = (type) => (type === 'tls-exporter' ? exporter : undefined);
    const tls13 = { offeredPlus: true, channelBindingTypes: ['tls-exporter', 'tls-server-end-point'], channelBinding: provider };

    it("'y' flag fails when the server offered -PLUS on a connection with tls-unique (downgrade)", async () => {
      const srv = server({ hash, lookup: lookupFor(users), ...tls13, channelBindingTypes: ['tls-unique', 'tls-server-end-point'] });
      expectFailure(await srv.step(Buffer.from('y,,n=alice,r=abc')), 'not-authorized');
    });

    it("'y' flag succeeds after -PLUS was offered on TLS 1.3 in compatible mode, fails in strict mode", async () => {
      const r = await runClient(server({ hash, lookup: lookupFor(users), ...tls13 }), hash, { username: 'alice', password: 'pw', gs2Flag: 'y' });
      assert.equal(r.status, 'success');
      const strict = server({ hash, lookup: lookupFor(users), ...tls13, policy: 'strict' });
      expectFailure(await strict.step(Buffer.from('y,,n=alice,r=abc')), 'not-authorized');
    });

    it("'y' flag is accepted when the server has no -PLUS mechanism", async () => {
      const r = await runClient(server({ hash, lookup: lookupFor(users) }), hash, {
        username: 'alice',
        password: 'pw',
        gs2Flag: 'y',
      });
      assert.equal(r.status, 'success');
    });

    it("'p=' is rejected with a non-PLUS mechanism", async () => {
      const srv = server({ hash, lookup: lookupFor(users), ...tls13 });
      expectFailure(await srv.step(Buffer.from('p=tls-exporter,,n=alice,r=abc')));
    });

    it('-PLUS requires channel binding (strict); the compatible policy takes n as unbound SCRAM', async () => {
      for (const flag of ['n', 'y']) {
        const srv = server({ hash, lookup: lookupFor(users), plus: true, ...tls13, policy: 'strict' });
        expectFailure(await srv.step(Buffer.from(`${flag},,n=alice,r=abc`)));
      }
      expectFailure(await server({ hash, lookup: lookupFor(users), plus: true, ...tls13 }).step(Buffer.from('y,,n=alice,r=abc')));
      const lenient = server({ hash, lookup: lookupFor(users), plus: true, ...tls13 });
      assert.equal((await runClient(lenient, hash, { username: 'alice', password: 'pw', gs2Flag: 'n' })).status, 'success');
    });

    it('-PLUS rejects a binding type the provider does not support', async () => {
      const srv = server({ hash, lookup: lookupFor(users), plus: true, ...tls13 });
      expectFailure(await srv.step(Buffer.from('p=tls-unique,,n=alice,r=abc')));
    });

    it('-PLUS with tls-exporter succeeds with the correct c= binding', async () => {
      const srv = server({ hash, lookup: lookupFor(users), plus: true, ...tls13 });
      const r = await runClient(srv, hash, {
        username: 'alice',
        password: 'pw',
        gs2Flag: 'p=tls-exporter',
        cbindData: exporter,
        authzid: 'alice@example.org',
      });
      assert.equal(r.status, 'success');
      if (r.status === 'success') assert.equal(r.authzid, 'alice@example.org');
    });

    it('-PLUS with tls-exporter fails with wrong binding data', async () => {
      const srv = server({ hash, lookup: lookupFor(users), plus: true, ...tls13 });
      const r = await runClient(srv, hash, {
        username: 'alice',
        password: 'pw',
        gs2Flag: 'p=tls-exporter',
        cbindData: randomBytes(32),
      });
      expectFailure(r, 'not-authorized');
    });

    it('-PLUS fails when c= carries only the gs2 header (binding data stripped)', async () => {
      const srv = server({ hash, lookup: lookupFor(users), plus: true, ...tls13 });
      const r = await runClient(srv, hash, {
        username: 'alice',
        password: 'pw',
        gs2Flag: 'p=tls-exporter',
        forceC: Buffer.from('p=tls-exporter,,').toString('base64'),
      });
      expectFailure(r, 'not-authorized');
    });

    it('non-PLUS fails when c= does not match the gs2 header', async () => {
      const r = await runClient(server({ hash, lookup: lookupFor(users) }), hash, {
        username: 'alice',
        password: 'pw',
        forceC: Buffer.from('y,,').toString('base64'),
      });
      expectFailure(r, 'not-authorized');
    });
  });
  describe('SCRAM-SHA-512 credentials', () => {
    it('are derived with 10000 iterations by default and verify the password', async () => {
      const creds = await deriveCredentialsAsync('SHA-512', 'pencil');
      assert.equal(creds.iterations, 10000);
      assert.equal(Buffer.from(creds.storedKey, 'base64').length, 64);
      assert.equal(await verifyPassword('SHA-512', creds, 'pencil'), true);
      assert.equal(await verifyPassword('SHA-512', creds, 'pencil!'), false);
    });

    it('from a SaltedPassword (XEP-0480 upgrade) equal those from the password', () => {
      const salt = Buffer.from(SHA512.salt, 'base64');
      const salted = pbkdf2Sync('pencil', salt, 4096, 64, 'sha512');
      assert.deepEqual(credentialsFromSaltedPassword('SHA-512', salted, salt, 4096), deriveCredentials('SHA-512', 'pencil', { salt, iterations: 4096 }));
      assert.throws(() => credentialsFromSaltedPassword('SHA-512', salted.subarray(0, 32), salt, 4096), RangeError);
    });

    it('run a -PLUS exchange with channel binding', async () => {
      const creds = deriveCredentials('SHA-512', 'pw', { iterations: 4096 });
      const cb = randomBytes(32);
      const srv = server({
        hash: 'SHA-512',
        plus: true,
        offeredPlus: true,
        channelBindingTypes: ['tls-exporter', 'tls-server-end-point'],
        channelBinding: (t) => (t === 'tls-exporter' ? cb : undefined),
        lookup: lookupFor({ alice: creds }),
      });
      const r = await runClient(srv, 'SHA-512', { username: 'alice', password: 'pw', gs2Flag: 'p=tls-exporter', cbindData: cb });
      assert.equal(r.status, 'success');
    });
  });

  describe('XEP-0474 downgrade protection', () => {
    // XEP-0474 0.5.0 §5.3 "Full Example" (SCRAM-SHA-1-PLUS over SASL2, password 'pencil').
    const example = {
      mechanisms: ['SCRAM-SHA-1', 'SCRAM-SHA-1-PLUS'],
      channelBindings: ['tls-server-end-point', 'tls-exporter'],
      clientFirst: 'p=tls-exporter,,n=user,r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6',
      serverNonce: 'a09117a6-ac50-4f2f-93f1-93799c2bddf6',
      serverFirst:
        'r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,s=QSXCR+Q6sek8bf92,i=4096,h=G6k/rBLDqgOhRRaCuuatSDFkJ08=',
      clientFinal:
        'c=cD10bHMtZXhwb3J0ZXIsLFRISVMgSVMgRkFLRSBDQiBEQVRB,r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,x=19C6532F-1CF4-4A27-A18D-DC9CEA41BBB3,p=M/SIDjT+dfcxUh89jZEypRvFxB4=',
      serverFinal: 'v=MQrMPvv7yv4x4Cq4W4Ih25EqS2c=',
    };

    it("hashes the example's lists to its h value", () => {
      assert.equal(downgradeProtectionHash('SHA-1', example.mechanisms, example.channelBindings), 'G6k/rBLDqgOhRRaCuuatSDFkJ08=');
      // Offer order does not matter: both lists are sorted by octets first.
      assert.equal(downgradeProtectionHash('SHA-1', [...example.mechanisms].reverse(), [...example.channelBindings].reverse()), 'G6k/rBLDqgOhRRaCuuatSDFkJ08=');
    });

    it('leaves out the channel-binding part when XEP-0440 was not used', () => {
      const expected = createHash('sha256').update('PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-256').digest('base64');
      assert.equal(downgradeProtectionHash('SHA-256', ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'], []), expected);
      const withCb = createHash('sha512').update('SCRAM-SHA-512-PLUS\x1ftls-exporter').digest('base64');
      assert.equal(downgradeProtectionHash('SHA-512', ['SCRAM-SHA-512-PLUS'], ['tls-exporter']), withCb);
    });

    it('runs the example exchange to the example messages', async () => {
      const salt = Buffer.from('QSXCR+Q6sek8bf92', 'base64');
      const srv = server({
        hash: 'SHA-1',
        plus: true,
        offeredPlus: true,
        channelBindingTypes: ['tls-exporter', 'tls-server-end-point'],
        channelBinding: (t) => (t === 'tls-exporter' ? Buffer.from('THIS IS FAKE CB DATA') : undefined),
        downgradeProtection: { mechanisms: example.mechanisms, channelBindings: example.channelBindings },
        lookup: lookupFor({ user: deriveCredentials('SHA-1', 'pencil', { salt, iterations: 4096 }) }),
        nonce: example.serverNonce,
      });
      assert.equal(expectChallenge(await srv.step(Buffer.from(example.clientFirst))), example.serverFirst);
      const final = await srv.step(Buffer.from(example.clientFinal));
      assert.equal(final.status, 'success');
      if (final.status === 'success') assert.equal(final.data.toString(), example.serverFinal);
    });

    it('signs h into the proof: a client that saw another hash fails', async () => {
      const creds = deriveCredentials('SHA-256', 'pw', { iterations: 4096 });
      const srv = server({ hash: 'SHA-256', downgradeProtection: { mechanisms: ['SCRAM-SHA-256'], channelBindings: [] }, lookup: lookupFor({ alice: creds }), nonce: 'SRV' });
      const first = expectChallenge(await srv.step(Buffer.from('n,,n=alice,r=cli')));
      assert.match(first, /,h=[A-Za-z0-9+/]+=*$/);
      // A client computing its proof over a server-first-message without (or with another) h.
      const salted = pbkdf2Sync('pw', Buffer.from(creds.salt, 'base64'), 4096, 32, 'sha256');
      const clientKey = createHmac('sha256', salted).update('Client Key').digest();
      const stored = createHash('sha256').update(clientKey).digest();
      const forged = first.replace(/,h=.*$/, '');
      const authMessage = `n=alice,r=cli,${forged},c=biws,r=cliSRV`;
      const sig = createHmac('sha256', stored).update(authMessage).digest();
      const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
      expectFailure(await srv.step(Buffer.from(`c=biws,r=cliSRV,p=${proof.toString('base64')}`)), 'not-authorized');
    });
  });

  describe('channel-binding policy (channelBindingDecision)', () => {
    // The whole policy, first matching row wins; doc/authentication.md has the same table.
    // conn: 'tls-unique' = the connection has tls-unique (TLS <= 1.2), 'no tls-unique' = TLS 1.3.
    type Row = {
      flag: 'n' | 'y' | 'p=on-connection' | 'p=tls-unique' | 'p=other' | 'p=*';
      plus: boolean | '*';
      offeredPlus: boolean | '*';
      conn: 'tls-unique' | 'no tls-unique' | '*';
      compatible: string;
      strict: string;
    };
    const table: Row[] = [
      { flag: 'n', plus: false, offeredPlus: '*', conn: '*', compatible: 'accept', strict: 'accept' },
      { flag: 'n', plus: true, offeredPlus: '*', conn: '*', compatible: 'accept', strict: 'malformed-request' },
      { flag: 'y', plus: true, offeredPlus: '*', conn: '*', compatible: 'malformed-request', strict: 'malformed-request' },
      { flag: 'y', plus: false, offeredPlus: false, conn: '*', compatible: 'accept', strict: 'accept' },
      { flag: 'y', plus: false, offeredPlus: true, conn: 'no tls-unique', compatible: 'accept', strict: 'not-authorized' },
      { flag: 'y', plus: false, offeredPlus: true, conn: 'tls-unique', compatible: 'not-authorized', strict: 'not-authorized' },
      { flag: 'p=*', plus: false, offeredPlus: '*', conn: '*', compatible: 'malformed-request', strict: 'malformed-request' },
      { flag: 'p=on-connection', plus: true, offeredPlus: '*', conn: '*', compatible: 'accept', strict: 'accept' },
      { flag: 'p=tls-unique', plus: true, offeredPlus: '*', conn: 'no tls-unique', compatible: 'accept', strict: 'not-authorized' },
      { flag: 'p=other', plus: true, offeredPlus: '*', conn: '*', compatible: 'not-authorized', strict: 'not-authorized' },
    ];
    const connections = { 'TLS 1.3': ['tls-exporter', 'tls-server-end-point'], 'TLS 1.2': ['tls-unique', 'tls-server-end-point'], none: [] as string[] };
    const flags = ['n', 'y', 'p=tls-exporter', 'p=tls-unique', 'p=tls-server-end-point', 'p=bogus'];
    const toFlag = (f: string): Gs2Flag => (f === 'n' || f === 'y' ? { kind: f } : { kind: 'p', type: f.slice(2) });
    const outcome = (d: ChannelBindingDecision) => (d.accept ? 'accept' : d.condition);
    const matches = (row: Row, flag: string, plus: boolean, offeredPlus: boolean, types: string[]): boolean => {
      const hasUnique = types.includes('tls-unique');
      const flagOk =
        row.flag === flag ||
        (row.flag === 'p=*' && flag.startsWith('p=')) ||
        (row.flag === 'p=on-connection' && flag.startsWith('p=') && types.includes(flag.slice(2))) ||
        (row.flag === 'p=other' && flag.startsWith('p='));
      return (
        flagOk &&
        (row.plus === '*' || row.plus === plus) &&
        (row.offeredPlus === '*' || row.offeredPlus === offeredPlus) &&
        (row.conn === '*' || (row.conn === 'tls-unique') === hasUnique)
      );
    };

    const used = new Set<Row>();
    for (const policy of ['compatible', 'strict'] as ChannelBindingPolicy[]) {
      for (const [connName, types] of Object.entries(connections)) {
        for (const flag of flags) {
          for (const plus of [false, true]) {
            for (const offeredPlus of [false, true]) {
              it(`${policy}, ${connName}: ${flag} with ${plus ? '-PLUS' : 'non-PLUS'}, -PLUS ${offeredPlus ? '' : 'not '}offered`, () => {
                const row = table.find((r) => matches(r, flag, plus, offeredPlus, types));
                assert.ok(row, 'every case is in the table');
                used.add(row);
                const d = channelBindingDecision({ flag: toFlag(flag), plus, offeredPlus, connectionTypes: types, policy });
                assert.equal(outcome(d), row[policy]);
                if (d.accept) assert.equal(d.type, flag.startsWith('p=') ? flag.slice(2) : undefined);
              });
            }
          }
        }
      }
    }
    it('has no row that no case reaches', () => {
      assert.deepEqual(table.filter((r) => !used.has(r)), []);
    });
    it("compatible accepts 'n' with a -PLUS mechanism only where the same mechanism without -PLUS was offered", () => {
      const base = { flag: { kind: 'n' } as Gs2Flag, plus: true, offeredPlus: true, connectionTypes: connections['TLS 1.3'], policy: 'compatible' as const };
      assert.equal(outcome(channelBindingDecision({ ...base, offeredUnbound: true })), 'accept');
      assert.equal(outcome(channelBindingDecision({ ...base, offeredUnbound: false })), 'malformed-request');
    });
  });
});
