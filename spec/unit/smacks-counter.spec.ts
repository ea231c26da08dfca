// XEP-0198 §4 'h' arithmetic of mod_smacks: unsigned 32-bit counts that wrap to 0.
import assert from 'node:assert/strict';
import { addH, H_MOD, newlyAcked, parseH } from '../../modules/mod_smacks/counter.ts';

describe('mod_smacks h counter', function () {
  it('wraps to 0 after 2^32 - 1', function () {
    assert.equal(addH(H_MOD - 1, 1), 0);
    assert.equal(addH(H_MOD - 2, 5), 3);
    assert.equal(addH(7, 0), 7);
  });

  it('counts what an ack covers across the wrap', function () {
    assert.equal(newlyAcked(5, 2), 3);
    assert.equal(newlyAcked(2, H_MOD - 3), 5, 'acked 2^32 - 3 before, now 2 after wrapping');
    assert.equal(newlyAcked(0, H_MOD - 1), 1);
    assert.equal(newlyAcked(4, 4), 0);
    // An ack "behind" the last one is a huge count, which is more than was sent: a broken client.
    assert.equal(newlyAcked(3, 4), H_MOD - 1);
  });

  it('accepts only xs:unsignedInt values', function () {
    assert.equal(parseH('0'), 0);
    assert.equal(parseH('4294967295'), H_MOD - 1);
    assert.equal(parseH('4294967296'), undefined);
    assert.equal(parseH('-1'), undefined);
    assert.equal(parseH('1e3'), undefined);
    assert.equal(parseH(' 1'), undefined);
    assert.equal(parseH(''), undefined);
    assert.equal(parseH(undefined), undefined);
  });
});
