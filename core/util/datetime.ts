// XMPP Date and Time Profiles (XEP-0082): the DateTime profile `CCYY-MM-DDThh:mm:ss[.sss]TZD`,
// read strictly (the time zone is required, fields are range-checked) and written in UTC.
// Times are milliseconds since the epoch, as stored in archives.

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

/**
 * Milliseconds since the epoch of an XEP-0082 DateTime, or undefined when `text` is not one.
 * Fractions finer than a millisecond are rounded down (`floor`) or up (`ceil`), so that an
 * inclusive bound keeps its meaning: a range end rounds down, a range start up.
 */
export function parseDateTime(text: string, round: 'floor' | 'ceil' = 'floor'): number | undefined {
  const m = DATETIME.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined; // day 0 of next month = last day
  let offset = 0;
  if (!z) {
    const offH = Number(oh);
    const offM = Number(om);
    if (offH > 14 || offM > 59) return undefined;
    offset = (sign === '-' ? -1 : 1) * (offH * 60 + offM) * 60_000;
  }
  let ms = 0;
  if (frac !== undefined) {
    ms = Number(frac.slice(0, 3).padEnd(3, '0'));
    if (round === 'ceil' && /[1-9]/.test(frac.slice(3))) ms += 1;
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // setUTCFullYear, not Date.UTC: years 0-99 stay as written
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime() + ms - offset;
}

/** An XEP-0082 DateTime in UTC: `2010-07-10T23:08:25Z`, with `.sss` only when there are milliseconds. */
export function formatDateTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}
