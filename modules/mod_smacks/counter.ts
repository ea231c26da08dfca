// XEP-0198 'h' arithmetic: counts are unsigned 32-bit and wrap to 0 after 2^32 - 1 (§4).

export const H_MOD = 2 ** 32;

/** `h` plus `n`, wrapped. */
export function addH(h: number, n: number): number {
  return (h + n) % H_MOD;
}

/**
 * How many more stanzas an acknowledgement of `h` covers, given that `acked` was acknowledged
 * before (both mod 2^32): `h - acked`, wrapped. More than were sent means a broken client.
 */
export function newlyAcked(h: number, acked: number): number {
  return (h - acked + H_MOD) % H_MOD;
}

/** A valid 'h' (xs:unsignedInt: decimal digits, 0 to 2^32 - 1), or undefined. */
export function parseH(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n < H_MOD ? n : undefined;
}
