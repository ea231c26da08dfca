// Server Dialback keys (XEP-0185) and the replay guard around them (XEP-0220 §3.1, XEP-0288 §4).
import assert from 'node:assert/strict';
import { DialbackRequests, IssuedKeys, dialbackKey, keysEqual, newDialbackSecret, newStreamId, verifyDialbackKey } from '../../core/util/dialback.ts';

describe('dialback keys (XEP-0185)', () => {
  it('computes the key of XEP-0185 §3', () => {
    assert.equal(
      dialbackKey('s3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229F'),
      '37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643',
    );
  });

  it('computes both keys of XEP-0220 §2 (each direction with its own secret)', () => {
    assert.equal(
      dialbackKey('s3cr3tf0rd14lb4ck', 'montague.example', 'capulet.example', 'D60000229F'),
      'b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3',
    );
    assert.equal(
      dialbackKey('d14lb4ck43v3r', 'capulet.example', 'montague.example', '417GAF25'),
      '225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d',
    );
  });

  it('verifies a key as it arrives in XML character data, whitespace around it', () => {
    const key = '\n    37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643\n';
    assert.equal(verifyDialbackKey('s3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229F', key), true);
  });

  it('binds the key to the stream id, both domains, their order and the secret', () => {
    const key = dialbackKey('s3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229F');
    assert.equal(verifyDialbackKey('s3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229G', key), false);
    assert.equal(verifyDialbackKey('s3cr3tf0rd14lb4ck', 'example.org', 'xmpp.example.com', 'D60000229F', key), false);
    assert.equal(verifyDialbackKey('s3cr3tf0rd14lb4ck', 'xmpp.example.net', 'example.org', 'D60000229F', key), false);
    assert.equal(verifyDialbackKey('another secret', 'xmpp.example.com', 'example.org', 'D60000229F', key), false);
    // The space delimiter keeps "a b" + "c" apart from "a" + "b c" (XEP-0185 §2 item 5).
    assert.notEqual(dialbackKey('s', 'example.in', 'form.example.org', 'x'), dialbackKey('s', 'example.info', 'rm.example.org', 'x'));
  });

  it('refuses keys of another length, empty keys and other case', () => {
    const key = dialbackKey('s', 'a.example', 'b.example', 'id1');
    assert.equal(keysEqual(key, key.slice(1)), false);
    assert.equal(keysEqual(key, ''), false);
    assert.equal(keysEqual(key, `${key}0`), false);
    assert.equal(keysEqual(key, key.toUpperCase()), false);
    assert.equal(keysEqual(key, key), true);
  });

  it('makes 128-bit hex stream ids and 256-bit secrets, never the same twice', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) ids.add(newStreamId());
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(newDialbackSecret().length, 32);
    assert.notDeepEqual(newDialbackSecret(), newDialbackSecret());
  });
});

describe('dialback replay guard: keys Cadence issued (Authoritative Server)', () => {
  const secret = 'the secret of this process';
  let clock = 1_000_000;
  const now = () => clock;

  it('confirms a key it issued for that stream and domain pair, once', () => {
    const keys = new IssuedKeys({ secret, now });
    const key = keys.issue('remote.example', 'cadence.example', 'stream-1');
    assert.equal(key, dialbackKey(secret, 'remote.example', 'cadence.example', 'stream-1'));
    assert.equal(keys.check('remote.example', 'cadence.example', 'stream-1', ` ${key} `), 'valid');
    // The same key again (a replayed <db:verify/>) is refused.
    assert.equal(keys.check('remote.example', 'cadence.example', 'stream-1', key), 'replayed');
  });

  it('refuses a key whose HMAC checks but that it never issued on that stream', () => {
    const keys = new IssuedKeys({ secret, now });
    keys.issue('remote.example', 'cadence.example', 'stream-1');
    const forged = dialbackKey(secret, 'remote.example', 'cadence.example', 'stream-2');
    assert.equal(verifyDialbackKey(secret, 'remote.example', 'cadence.example', 'stream-2', forged), true);
    assert.equal(keys.check('remote.example', 'cadence.example', 'stream-2', forged), 'unknown-stream');
  });

  it('refuses a key presented for another domain pair or with a wrong value', () => {
    const keys = new IssuedKeys({ secret, now });
    const key = keys.issue('remote.example', 'cadence.example', 'stream-1');
    assert.equal(keys.check('evil.example', 'cadence.example', 'stream-1', key), 'invalid');
    assert.equal(keys.check('remote.example', 'muc.cadence.example', 'stream-1', key), 'invalid');
    assert.equal(keys.check('remote.example', 'cadence.example', 'stream-1', key.replace(/.$/, '0')), 'invalid');
    // Wrong attempts do not use the key up.
    assert.equal(keys.check('remote.example', 'cadence.example', 'stream-1', key), 'valid');
  });

  it('keeps a key per domain pair on one stream (further domains multiplexed onto it), each confirmed once', () => {
    const keys = new IssuedKeys({ secret, now });
    const main = keys.issue('remote.example', 'cadence.example', 'stream-1');
    const muc = keys.issue('remote.example', 'muc.cadence.example', 'stream-1');
    assert.equal(keys.size, 2);
    assert.equal(keys.check('remote.example', 'muc.cadence.example', 'stream-1', muc), 'valid');
    assert.equal(keys.check('remote.example', 'cadence.example', 'stream-1', main), 'valid');
    assert.equal(keys.check('remote.example', 'muc.cadence.example', 'stream-1', main), 'invalid');
    assert.equal(keys.check('remote.example', 'muc.cadence.example', 'stream-1', muc), 'replayed');
    keys.forget('stream-1');
    assert.equal(keys.size, 0);
  });

  it('refuses a key after its lifetime, and forgets streams that closed', () => {
    const keys = new IssuedKeys({ secret, now, lifetimeMs: 1000 });
    const key = keys.issue('remote.example', 'cadence.example', 'stream-1');
    clock += 1001;
    assert.equal(keys.check('remote.example', 'cadence.example', 'stream-1', key), 'expired');
    const key2 = keys.issue('remote.example', 'cadence.example', 'stream-2');
    keys.forget('stream-2');
    assert.equal(keys.check('remote.example', 'cadence.example', 'stream-2', key2), 'unknown-stream');
  });

  it('issues a new key after a stream restart (a new stream id) and sweeps old entries', () => {
    const keys = new IssuedKeys({ secret, now, lifetimeMs: 1000 });
    const before = keys.issue('remote.example', 'cadence.example', 'id-before-tls');
    const after = keys.issue('remote.example', 'cadence.example', 'id-after-tls');
    assert.notEqual(before, after);
    assert.equal(keys.check('remote.example', 'cadence.example', 'id-after-tls', before), 'invalid');
    assert.equal(keys.check('remote.example', 'cadence.example', 'id-after-tls', after), 'valid');
    clock += 2000;
    keys.sweep();
    assert.equal(keys.size, 0);
  });

  it('keeps at most maxEntries keys, forgetting the oldest', () => {
    const keys = new IssuedKeys({ secret, now, maxEntries: 3 });
    const first = keys.issue('r.example', 'o.example', 's0');
    for (let i = 1; i <= 3; i++) keys.issue('r.example', 'o.example', `s${i}`);
    assert.equal(keys.size, 3);
    assert.equal(keys.check('r.example', 'o.example', 's0', first), 'unknown-stream');
  });
});

describe('dialback replay guard: answers only to requests sent on the same stream', () => {
  it('matches a <db:result type=valid/> to the <db:result/> sent on that stream', () => {
    const requests = new DialbackRequests<string>();
    assert.equal(requests.sent('result', 'out-1', 'cadence.example', 'remote.example', undefined, 'ctx'), true);
    // A second request for the same pair while the first waits is not sent.
    assert.equal(requests.sent('result', 'out-1', 'cadence.example', 'remote.example', undefined, 'ctx'), false);
    assert.equal(requests.isPending('result', 'out-1', 'cadence.example', 'remote.example'), true);
    const match = requests.answered('result', 'out-1', 'remote.example', 'cadence.example');
    assert.equal(match?.context, 'ctx');
    assert.equal(requests.size, 0);
  });

  it('treats answers on another stream, for another pair or id, or repeated, as unsolicited', () => {
    const requests = new DialbackRequests();
    requests.sent('result', 'out-1', 'cadence.example', 'remote.example', undefined, null);
    requests.sent('verify', 'out-2', 'cadence.example', 'remote.example', 'abc', null);
    assert.equal(requests.answered('result', 'out-9', 'remote.example', 'cadence.example'), undefined);
    assert.equal(requests.answered('result', 'out-1', 'evil.example', 'cadence.example'), undefined);
    // Not swapped: an answer claims to come from the remote.
    assert.equal(requests.answered('result', 'out-1', 'cadence.example', 'remote.example'), undefined);
    assert.equal(requests.answered('verify', 'out-2', 'remote.example', 'cadence.example', 'abd'), undefined);
    assert.equal(requests.answered('verify', 'out-2', 'remote.example', 'cadence.example'), undefined);
    assert.ok(requests.answered('verify', 'out-2', 'remote.example', 'cadence.example', 'abc'));
    assert.equal(requests.answered('verify', 'out-2', 'remote.example', 'cadence.example', 'abc'), undefined);
    assert.equal(requests.size, 1);
  });

  it('fails the requests of a closed stream and those that timed out', () => {
    let clock = 0;
    const requests = new DialbackRequests({ now: () => clock });
    requests.sent('verify', 'out-1', 'a.example', 'b.example', 'x', null);
    requests.sent('verify', 'out-2', 'a.example', 'b.example', 'y', null);
    clock = 500;
    requests.sent('verify', 'out-2', 'a.example', 'b.example', 'z', null);
    assert.deepEqual(requests.dropStream('out-1').map((r) => r.id), ['x']);
    clock = 1000;
    assert.deepEqual(requests.expire(1000).map((r) => r.id), ['y']);
    assert.equal(requests.size, 1);
  });
});
