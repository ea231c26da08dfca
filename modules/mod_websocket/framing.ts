// XMPP over WebSocket framing (RFC 7395): every WebSocket message is one complete XML element —
// `<open/>` and `<close/>` in urn:ietf:params:xml:ns:xmpp-framing instead of the stream header
// and closing tag, or one stanza / stream-level element. Pure: the WebSocket belongs to the glue
// (mod_websocket, doc/web.md).
//
// Reading reuses the TCP stream parser (core/util/stream-parser.ts): one parser per connection,
// fed a synthetic stream header once, then each message followed by a sentinel element whose name
// is random per reader. A message is a well-formed frame exactly when the parser emits one
// element and then the sentinel: an unfinished element swallows the sentinel, two elements or
// trailing text show up as such, and nothing a peer sends can forge the sentinel. Restricted XML,
// the size and depth limits and namespace checks are the same as on TCP, and elements come out
// the way the TCP parser gives them to mod_c2s (stanzas without their jabber:client xmlns).
import { randomBytes } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { NS, XmppStreamParser, isStanzaKind, stanzaWithClientNs, streamErrorElement, type StreamErrorCondition, type StreamLimits } from '../../core/api.ts';

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
/** The WebSocket sub-protocol name (RFC 7395 §3.1, IANA WebSocket Subprotocol Name Registry). */
export const WS_SUBPROTOCOL = 'xmpp';
/** WebSocket close code for a message type we do not accept (RFC 6455 §7.4.1). */
export const WS_UNSUPPORTED_DATA = 1003;

export type Frame =
  /** `<open/>`: its attributes (to, from, version, xml:lang, id), without xmlns. */
  | { kind: 'open'; attrs: Record<string, string> }
  /** `<close/>`: the peer ends the stream. */
  | { kind: 'close' }
  /** A stanza (message/presence/iq in jabber:client, xmlns removed as on TCP) or another stream-level element. */
  | { kind: 'element'; element: Element }
  /** The stream error to close with (then `<close/>`). */
  | { kind: 'error'; condition: StreamErrorCondition; text: string }
  /** Not XMPP at all (a binary message): close the WebSocket with this code, no stream error. */
  | { kind: 'websocket-close'; code: number; text: string };

const XML_DECL = /^<\?xml\s+version\s*=\s*(['"])1\.\d+\1(?:\s+encoding\s*=\s*(['"])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:\s+standalone\s*=\s*(['"])(?:yes|no)\4)?\s*\?>/;

/** Reads the messages of one WebSocket connection. */
export class FrameReader {
  private readonly parser: XmppStreamParser;
  private readonly sentinelName = `f${randomBytes(12).toString('hex')}`;
  private readonly sentinel = `<${this.sentinelName}/>`;
  private got: Element[] = [];
  private failure: { condition: StreamErrorCondition; text: string } | undefined;
  private expectingOpen = true;
  private opened = false;

  constructor(limits: StreamLimits) {
    this.parser = new XmppStreamParser(limits);
    this.parser.on('stanza', (el) => this.got.push(el));
    this.parser.on('error', (condition, text) => {
      this.failure ??= { condition, text };
    });
    this.parser.on('streamEnd', () => {
      this.failure ??= { condition: 'not-well-formed', text: 'a frame closed the stream element: RFC 7395 ends streams with <close/>' };
    });
    this.parser.write(`<stream:stream xmlns='${NS.client}' xmlns:stream='${NS.streams}'>`);
  }

  /** Larger limits once authenticated (as on TCP). */
  setLimits(limits: StreamLimits): void {
    this.parser.setLimits(limits);
  }

  /** A stream restart (after SASL success, RFC 7395 §3.5): the next frame must be a new `<open/>`. */
  restart(): void {
    this.expectingOpen = true;
  }

  /** True between a frame that opened the stream and the next restart. */
  get isOpen(): boolean {
    return this.opened && !this.expectingOpen;
  }

  /** One WebSocket message → what it is. After an error every further message gets that error. */
  read(data: string | Buffer, isBinary = false): Frame {
    if (this.failure) return { kind: 'error', ...this.failure };
    if (isBinary) return { kind: 'websocket-close', code: WS_UNSUPPORTED_DATA, text: 'XMPP over WebSocket uses text messages' };
    let text = typeof data === 'string' ? data : data.toString('utf8');
    // RFC 7395 §3.3.3: a frame starts with '<'; an XML declaration is allowed (not recommended).
    if (text.startsWith('<?xml')) {
      const decl = XML_DECL.exec(text);
      if (!decl) return this.fail('not-well-formed', 'malformed XML declaration');
      if (decl[3] && decl[3].toLowerCase() !== 'utf-8') return this.fail('unsupported-encoding', `frames are UTF-8, not ${decl[3]}`);
      text = text.slice(decl[0].length);
    }
    if (!text.startsWith('<')) return this.fail('not-well-formed', 'a frame must be one XML element starting with <');
    if (this.expectingOpen && /^<stream:stream[\s>/]/.test(text)) {
      return this.fail('invalid-namespace', 'RFC 7395 opens streams with <open/> in urn:ietf:params:xml:ns:xmpp-framing, not <stream:stream>');
    }
    this.got = [];
    this.parser.write(text + this.sentinel);
    // The parser's error listener may have set it during the write.
    const failure = this.failure as { condition: StreamErrorCondition; text: string } | undefined;
    if (failure) return { kind: 'error', ...failure };
    const got = this.got;
    this.got = [];
    const last = got[got.length - 1];
    if (!last || last.name !== this.sentinelName) return this.fail('not-well-formed', 'a frame must be one complete XML element');
    if (got.length !== 2) return this.fail('not-well-formed', got.length === 1 ? 'empty frame' : `a frame must hold exactly one element, not ${got.length - 1}`);
    return this.classify(got[0]!);
  }

  private classify(el: Element): Frame {
    const ns = el.attrs.xmlns as string | undefined;
    if (ns === NS_FRAMING) {
      if (el.name === 'open') {
        if (!this.expectingOpen) return this.fail('bad-format', 'unexpected <open/>: the stream is already open');
        this.expectingOpen = false;
        this.opened = true;
        const attrs: Record<string, string> = {};
        for (const [k, v] of Object.entries(el.attrs as Record<string, string>)) if (k !== 'xmlns') attrs[k] = v;
        return { kind: 'open', attrs };
      }
      if (el.name === 'close') return { kind: 'close' };
      return this.fail('unsupported-stanza-type', `<${el.name}/> is not an element of ${NS_FRAMING}`);
    }
    if (this.expectingOpen) {
      return el.name === 'open'
        ? this.fail('invalid-namespace', `<open/> must be in ${NS_FRAMING}`)
        : this.fail('invalid-namespace', `the stream must be opened with <open xmlns='${NS_FRAMING}'/> before <${el.name}/>`);
    }
    // As on TCP, where stanzas inherit jabber:client from the stream header and carry no xmlns.
    if (ns === NS.client && isStanzaKind(el.name)) delete el.attrs.xmlns;
    return { kind: 'element', element: el };
  }

  private fail(condition: StreamErrorCondition, text: string): Frame {
    this.failure = { condition, text };
    this.parser.stop();
    return { kind: 'error', condition, text };
  }
}

// ---- writing ----

function escapeAttr(v: string): string {
  return v.replace(/[&<>'"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === "'" ? '&apos;' : '&quot;'));
}

function emptyElement(name: string, attrs: Record<string, string | undefined>): string {
  let out = `<${name} xmlns='${NS_FRAMING}'`;
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) out += ` ${k}='${escapeAttr(v)}'`;
  return `${out}/>`;
}

/** Our `<open/>` (RFC 7395 §3.4): from, id, version='1.0', xml:lang. */
export function openFrame(attrs: { from: string; id: string; lang?: string; to?: string }): string {
  return emptyElement('open', { from: attrs.from, to: attrs.to, id: attrs.id, version: '1.0', 'xml:lang': attrs.lang ?? 'en' });
}

/** `<close/>` (RFC 7395 §3.6). */
export function closeFrame(): string {
  return emptyElement('close', {});
}

/**
 * `<close see-other-uri='…'/>` (RFC 7395 §3.6.1): send the client to another WebSocket endpoint.
 * Only ws: and wss: URIs, and never from a secure connection to an insecure one.
 */
export function seeOtherUriFrame(uri: string, currentSecure: boolean): { ok: true; frame: string } | { ok: false; error: string } {
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    return { ok: false, error: `not a URI: ${uri}` };
  }
  if (parsed.protocol !== 'wss:' && parsed.protocol !== 'ws:') return { ok: false, error: 'see-other-uri must be a ws: or wss: URI' };
  if (currentSecure && parsed.protocol !== 'wss:') return { ok: false, error: 'a secure connection may only be redirected to a wss: URI' };
  return { ok: true, frame: emptyElement('close', { 'see-other-uri': parsed.href }) };
}

/**
 * One outgoing element as a self-contained frame (RFC 7395 §3.3.3: each frame carries its own
 * namespace declarations): stanzas get xmlns='jabber:client' (written first, after the name),
 * `stream:` elements the stream namespace. The element is left as it was.
 *
 * `serialised` is `el.toString()` when stream management already made it (ClientStreamIo.send):
 * a stanza's frame is then that string with the declaration inserted after the tag name, as it is
 * inserted into a fresh serialisation otherwise — the same text, without serialising twice.
 */
export function frameElement(el: Element, serialised?: string): string {
  const attrs = el.attrs as Record<string, string | undefined>;
  if (isStanzaKind(el.name)) {
    return stanzaWithClientNs(el, serialised);
  }
  if (el.name.startsWith('stream:') && attrs['xmlns:stream'] === undefined) {
    attrs['xmlns:stream'] = NS.streams;
    try {
      return el.toString();
    } finally {
      delete attrs['xmlns:stream'];
    }
  }
  return el.toString();
}

/** A stream error (RFC 6120 §4.9 over RFC 7395 §3.6): the error frame, then `<close/>`. */
export function streamErrorFrames(condition: StreamErrorCondition, text?: string): [string, string] {
  return [frameElement(streamErrorElement(condition, text)), closeFrame()];
}
