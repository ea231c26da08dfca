// Narrowing assertions for tests (noUncheckedIndexedAccess is on): a value the test expects to be
// there comes back with its type, or the test fails saying what was missing — instead of a `!`
// that would fail later with a TypeError far from the cause.
import assert from 'node:assert/strict';

/** `value`, asserted to be present (neither undefined nor null). */
export function must<T>(value: T | null | undefined, what = 'a value'): T {
  assert.ok(value !== undefined && value !== null, `expected ${what}`);
  return value;
}

/** `list.at(index)` (negative counts from the end), asserted to exist. */
export function at<T>(list: readonly T[], index: number): T {
  const value = list.at(index);
  assert.ok(value !== undefined, `expected an item at ${index}, got ${list.length} item(s)`);
  return value;
}
