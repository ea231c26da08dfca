// XEP-0082 DateTime: strict reading (time zone required, fields range-checked) and UTC writing.
import assert from 'node:assert/strict';
import { formatDateTime, parseDateTime } from '../../core/util/datetime.ts';

describe('XEP-0082 DateTime', () => {
  it('reads UTC, offsets and fractions', () => {
    assert.equal(parseDateTime('1969-07-21T02:56:15Z'), Date.UTC(1969, 6, 21, 2, 56, 15));
    assert.equal(parseDateTime('1969-07-20T21:56:15-05:00'), Date.UTC(1969, 6, 21, 2, 56, 15));
    assert.equal(parseDateTime('2010-07-10T23:08:25.123+01:30'), Date.UTC(2010, 6, 10, 21, 38, 25, 123));
    assert.equal(parseDateTime('2010-07-10T23:08:25.1Z'), Date.UTC(2010, 6, 10, 23, 8, 25, 100));
    assert.equal(parseDateTime('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
    assert.equal(parseDateTime('0050-01-01T00:00:00Z'), new Date('0050-01-01T00:00:00Z').getTime());
  });

  it('rounds finer fractions down or up as asked', () => {
    assert.equal(parseDateTime('2010-07-10T23:08:25.1239Z'), Date.UTC(2010, 6, 10, 23, 8, 25, 123));
    assert.equal(parseDateTime('2010-07-10T23:08:25.1239Z', 'ceil'), Date.UTC(2010, 6, 10, 23, 8, 25, 124));
    assert.equal(parseDateTime('2010-07-10T23:08:25.1230000Z', 'ceil'), Date.UTC(2010, 6, 10, 23, 8, 25, 123));
  });

  it('refuses what is not a DateTime', () => {
    for (const bad of [
      '2010-07-10', '2010-07-10T23:08:25', '2010-07-10 23:08:25Z', '2010-13-01T00:00:00Z', '2010-00-01T00:00:00Z',
      '2023-02-29T00:00:00Z', '2010-04-31T00:00:00Z', '2010-07-10T24:00:00Z', '2010-07-10T23:60:00Z', '2010-07-10T23:08:60Z',
      '2010-07-10T23:08:25+15:00', '2010-07-10T23:08:25+01:60', '2010-07-10T23:08:25.Z', '10-07-10T23:08:25Z', ' 2010-07-10T23:08:25Z', '',
    ]) {
      assert.equal(parseDateTime(bad), undefined, bad);
    }
  });

  it('writes UTC with milliseconds only when there are some', () => {
    assert.equal(formatDateTime(Date.UTC(2010, 6, 10, 23, 8, 25)), '2010-07-10T23:08:25Z');
    assert.equal(formatDateTime(Date.UTC(2010, 6, 10, 23, 8, 25, 7)), '2010-07-10T23:08:25.007Z');
    assert.equal(parseDateTime(formatDateTime(1700000000123)), 1700000000123);
  });
});
