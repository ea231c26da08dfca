// Splits an XMPP stream into top-level elements without parsing them: a light scanner that
// tracks tag depth (quote-aware inside tags), skips the XML declaration, comments and CDATA, and
// hands each complete child of <stream:stream> to the caller as a string. It never builds a DOM,
// so the load generator spends almost nothing per stanza.

export interface FramerHandlers {
  /** The stream header (<stream:stream …>), as a string. */
  open(tag: string): void;
  /** One complete top-level element. */
  element(xml: string): void;
  /** </stream:stream> */
  close(): void;
}

const GT = 62; // >
const SLASH = 47; // /
const QMARK = 63; // ?
const BANG = 33; // !
const DQ = 34; // "
const SQ = 39; // '

export class Framer {
  private buf = '';
  /** Index in buf where scanning resumes. */
  private pos = 0;
  /** 0: before the stream header; 1: at stream level; >1 inside a top-level element. */
  private depth = 0;
  /** Index in buf of the current top-level element's '<' (when depth > 1). */
  private start = -1;
  /** Bumped by reset(), so that a handler that restarts the stream stops the current scan. */
  private gen = 0;

  constructor(private readonly h: FramerHandlers) {}

  reset(): void {
    this.buf = '';
    this.pos = 0;
    this.depth = 0;
    this.start = -1;
    this.gen++;
  }

  push(chunk: string): void {
    const gen = this.gen;
    let buf = this.buf.length ? this.buf + chunk : chunk;
    let i = this.pos;
    const n = buf.length;
    for (;;) {
      const lt = buf.indexOf('<', i);
      if (lt < 0) {
        i = n;
        break;
      }
      if (lt + 1 >= n) {
        i = lt;
        break;
      }
      const c = buf.charCodeAt(lt + 1);
      if (c === QMARK) {
        const e = buf.indexOf('?>', lt + 2);
        if (e < 0) {
          i = lt;
          break;
        }
        i = e + 2;
        continue;
      }
      if (c === BANG) {
        let e: number;
        if (buf.startsWith('<!--', lt)) e = buf.indexOf('-->', lt + 4) + 3;
        else if (buf.startsWith('<![CDATA[', lt)) e = buf.indexOf(']]>', lt + 9) + 3;
        else e = buf.indexOf('>', lt + 2) + 1;
        if (e <= 2) {
          i = lt;
          break;
        }
        i = e;
        continue;
      }
      // Find the tag's closing '>' outside attribute quotes.
      let j = lt + 1;
      let q = 0;
      for (; j < n; j++) {
        const d = buf.charCodeAt(j);
        if (q) {
          if (d === q) q = 0;
        } else if (d === DQ || d === SQ) q = d;
        else if (d === GT) break;
      }
      if (j >= n) {
        i = lt;
        break;
      }
      i = j + 1;
      if (c === SLASH) {
        this.depth--;
        if (this.depth === 1) {
          const s = this.start;
          this.start = -1;
          this.h.element(buf.slice(s, i));
        } else if (this.depth <= 0) {
          this.depth = 0;
          this.h.close();
        }
      } else if (buf.charCodeAt(j - 1) === SLASH) {
        if (this.depth === 1) this.h.element(buf.slice(lt, i));
      } else if (this.depth === 0) {
        this.depth = 1;
        this.h.open(buf.slice(lt, i));
      } else {
        if (this.depth === 1) this.start = lt;
        this.depth++;
      }
      // A handler restarted the stream (STARTTLS, SASL success): the rest belongs to the old one.
      if (this.gen !== gen) return;
    }
    // Keep only what is still needed.
    const keepFrom = this.start >= 0 ? Math.min(this.start, i) : i;
    if (keepFrom > 0) {
      buf = buf.slice(keepFrom);
      if (this.start >= 0) this.start -= keepFrom;
      i -= keepFrom;
    }
    this.buf = buf;
    this.pos = i;
  }
}

/** Value of attribute `name` on the start tag at the beginning of `xml` (undefined when absent). */
export function attr(xml: string, name: string): string | undefined {
  const end = tagEnd(xml);
  let from = 0;
  for (;;) {
    const k = xml.indexOf(` ${name}=`, from);
    if (k < 0 || k > end) return undefined;
    const qpos = k + name.length + 2;
    const q = xml[qpos];
    if (q !== '"' && q !== "'") {
      from = k + 1;
      continue;
    }
    const e = xml.indexOf(q, qpos + 1);
    return unescapeXml(xml.slice(qpos + 1, e));
  }
}

function tagEnd(xml: string): number {
  let q = 0;
  for (let j = 1; j < xml.length; j++) {
    const d = xml.charCodeAt(j);
    if (q) {
      if (d === q) q = 0;
    } else if (d === DQ || d === SQ) q = d;
    else if (d === GT) return j;
  }
  return xml.length;
}

/** Text content of the first <name>…</name> child (no nested markup expected). */
export function childText(xml: string, name: string): string | undefined {
  const open = xml.indexOf(`<${name}`);
  if (open < 0) return undefined;
  const gt = xml.indexOf('>', open);
  if (gt < 0 || xml.charCodeAt(gt - 1) === SLASH) return '';
  const close = xml.indexOf(`</${name}>`, gt);
  if (close < 0) return undefined;
  return unescapeXml(xml.slice(gt + 1, close));
}

/** The element's name (e.g. 'message', 'stream:features'). */
export function elementName(xml: string): string {
  let j = 1;
  while (j < xml.length) {
    const c = xml.charCodeAt(j);
    if (c === 32 || c === GT || c === SLASH || c === 9 || c === 10 || c === 13) break;
    j++;
  }
  return xml.slice(1, j);
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

export function unescapeXml(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(amp|lt|gt|quot|apos|#x?[0-9a-fA-F]+);/g, (_m, e: string) => {
    switch (e) {
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}
