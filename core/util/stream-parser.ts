/**
 * XMPP XML stream parser (RFC 6120 §4, §11).
 *
 * Built on saxes (a strict, well-formedness checking SAX parser) running with
 * `xmlns: false`; namespace-prefix scoping is checked here, but only for
 * prefixed names (the common case, unprefixed names, costs nothing extra).
 *
 * Enforced on top of XML well-formedness:
 *  - restricted XML (RFC 6120 §11.1): no comments, processing instructions,
 *    DOCTYPE, or entity references other than the predefined five and
 *    character references;
 *  - the root element must be `stream` in `http://etherx.jabber.org/streams`
 *    and must declare a default (content) namespace;
 *  - only whitespace may appear as character data at stream level;
 *  - the encoding must be UTF-8 (XML declaration and actual bytes);
 *  - per-top-level-element size limit and nesting depth limit.
 *
 * State changes discard what the peer pipelined behind them (see
 * doc/architecture.md, "Stream state changes"): reset() (stream restart after
 * STARTTLS or SASL) and stop() (the stream is closed) drop the rest of the
 * current write and the decoder's pending bytes; discardPipelined() (a state
 * change without restart, e.g. a component's handshake) drops the rest of the
 * current write and an element still in progress. Nothing received before
 * such a call is emitted after it.
 *
 * Size accounting: the parser counts the bytes of the "region" between the end
 * of the previous top-level element (or the stream header) and the current
 * position; a region is restarted at the '<' of each top-level element.  Input
 * is fed to saxes in pieces of at most MAX_PIECE characters and the limit is
 * checked after each piece and when each top-level element closes, so memory
 * held for a single stanza is bounded by roughly limit + one piece.  Whitespace
 * keepalives received while the parser sits between top-level elements are
 * dropped without being counted.  For Buffer input the byte count is exact per
 * chunk and prorated within a chunk; for string input it is computed with
 * Buffer.byteLength.
 */
import { EventEmitter } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import { SaxesParser } from 'saxes';
import type { SaxesAttributePlain, SaxesTagPlain, XMLDecl } from 'saxes';
import { Element } from '@xmpp/xml';
import type { StreamErrorCondition } from './errors.ts';

export const NS_STREAMS = 'http://etherx.jabber.org/streams';
const NS_XML = 'http://www.w3.org/XML/1998/namespace';
const NS_XMLNS = 'http://www.w3.org/2000/xmlns/';

export interface StreamLimits {
  /** bytes of one top-level element */
  maxStanzaSize: number;
  /** nesting below stream root (a top-level stanza is at depth 1) */
  maxDepth: number;
}

/** The stream errors the parser itself detects (RFC 6120 §4.9.3). */
export type ParserErrorCondition = Extract<
  StreamErrorCondition,
  'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'invalid-namespace' | 'bad-format' | 'unsupported-encoding' | 'invalid-xml'
>;

export interface StreamParserEvents {
  /** attributes of <stream:stream ...> incl. xmlns, xmlns:stream, to, from, version, xml:lang */
  streamStart: (attrs: Record<string, string>) => void;
  /** each complete top-level child */
  stanza: (el: Element) => void;
  /** </stream:stream> */
  streamEnd: () => void;
  /** after an error the parser ignores further input until reset() */
  error: (condition: ParserErrorCondition, text: string) => void;
  /** input dropped by reset(), stop() or discardPipelined() (reported once per call, after the write) */
  discarded: (bytes: number, whitespaceOnly: boolean) => void;
}

type EventArgs = { [K in keyof StreamParserEvents]: Parameters<StreamParserEvents[K]> };

/** Minimum budget for the XML declaration + stream header, whatever maxStanzaSize is. */
const MIN_HEADER_BUDGET = 8192;
/** Largest string handed to saxes at once; bounds work done between limit checks. */
const MAX_PIECE = 65536;

const WS_ONLY = /^[ \t\r\n]*$/;
const WS_TAIL = /[ \t\r\n]*/y;
const NON_WS = /[^ \t\r\n]/;

const enum State {
  Header,
  Open,
  Closed,
  Failed,
}

/** What discardPipelined() drops (see there). */
const enum Drop {
  None,
  /** every top-level element completed in the rest of the current write */
  RestOfWrite,
  /** the top-level element in progress, when it completes */
  InProgress,
}

/** Thrown from inside saxes callbacks to stop the parser mid-chunk. */
const ABORT: unique symbol = Symbol('xmppstream-abort');
/** Marker for a pending end of stream. */
const STREAM_END: unique symbol = Symbol('stream-end');

type Scope = Record<string, string>;

export class XmppStreamParser extends EventEmitter<EventArgs> {
  private limits: StreamLimits;
  private decoder = new StringDecoder('utf8');
  /** last two bytes of the previous Buffer chunk (-1: none), for the UTF-8 validity check */
  private tail0 = -1;
  private tail1 = -1;

  private parser!: SaxesParser<{ xmlns: false }>;
  private state: State = State.Header;
  /** bumped by reset(); lets callbacks notice a reset done by a listener */
  private generation = 0;

  /** open elements of the current top-level stanza; stack[0] is the stanza */
  private stack: Element[] = [];
  /** namespace declarations per open element (undefined: none) */
  private scopes: (Scope | undefined)[] = [];
  /** namespace declarations on the stream header, incl. '' (default) */
  private streamScope: Scope = Object.create(null) as Scope;

  // ---- size accounting (positions are saxes string positions) ----
  /** chars fed to the current saxes instance before the current piece */
  private fed = 0;
  private piece = '';
  private pieceStart = 0;
  /** bytes per char of the current chunk */
  private factor = 1;
  /** start position of the current accounting region */
  private regionStart = 0;
  /** bytes of the region lying in pieces before the current one */
  private regionBytes = 0;
  /** index in the current piece right after the last top-level boundary, -1 if none */
  private boundaryIdx = -1;
  /** parser sits between top-level elements with only whitespace since */
  private idle = false;
  /** attributes of the start tag being parsed (see onAttribute) */
  private tagAttrs: Record<string, string> | undefined = undefined;
  /** some attribute name of the start tag being parsed contains ':' */
  private tagPrefixed = false;
  /**
   * A completed top-level element (or the stream end) not yet emitted: saxes
   * calls the closetag handler before checking that the end tag's name
   * matches, so emission waits for the next saxes event or the end of the
   * piece, and is dropped if saxes rejects the end tag (see onSaxError).
   */
  private pending: Element | typeof STREAM_END | undefined = undefined;
  /** parser position right after the pending element's end tag */
  private pendingPos = 0;

  // ---- state changes from listeners (reset, stop, discardPipelined) ----
  /** a write() is running: listeners are called from inside it */
  private writing = false;
  /** the string of the running write and its start (saxes position) */
  private input = '';
  private inputStart = 0;
  /** parser position right after the header or element being emitted */
  private emitPos = 0;
  /** the rest of the running write after the emitted item, cut off by a listener */
  private cut: string | undefined = undefined;
  private drop = Drop.None;

  constructor(limits: StreamLimits) {
    super();
    this.limits = { ...limits };
    this.newParser();
  }

  setLimits(limits: StreamLimits): void {
    this.limits = { ...limits };
  }

  /**
   * Stream restart: discard all parser state and expect a new stream header,
   * optionally preceded by an XML declaration. May be called from within a
   * listener: the input that followed the triggering element in the same
   * write() is dropped, never parsed (the peer must wait for our answer before
   * it sends the new header: RFC 6120 §5.4.3.3, §6.4.6). Bytes of an
   * incomplete UTF-8 sequence held by the decoder are dropped too.
   */
  reset(): void {
    this.cutRest();
    this.generation++;
    this.newParser();
    this.decoder = new StringDecoder('utf8');
    this.tail0 = -1;
    this.tail1 = -1;
  }

  /**
   * The stream is over (closed by us): nothing more is emitted, neither from
   * the rest of the current write (when called from a listener) nor from later
   * input. Only reset() would revive the parser.
   */
  stop(): void {
    this.cutRest();
    this.generation++;
    if (this.state !== State.Failed) this.state = State.Closed;
    this.stack = [];
    this.scopes = [];
    this.pending = undefined;
  }

  /**
   * A state change without a stream restart (e.g. authentication that keeps the
   * stream): what the peer sent before it must not be processed in the new
   * state. Called from a listener, the rest of the current write is parsed
   * (limits and well-formedness still apply, and a closing tag still ends the
   * stream) but its elements are dropped; an element still in progress at the
   * end of that write (or now, when called outside a write) is dropped when it
   * completes. Elements that start in later writes are emitted as usual.
   */
  discardPipelined(): void {
    if (this.state !== State.Open) return;
    if (this.writing) {
      this.cutRest();
      this.drop = Drop.RestOfWrite;
    } else if (this.stack.length !== 0) {
      this.drop = Drop.InProgress;
      this.emit('discarded', Math.round(this.regionBytes), false);
    }
  }

  write(chunk: Buffer | string): void {
    if (this.state >= State.Closed) return;
    let str: string;
    let bytes: number;
    if (typeof chunk === 'string') {
      str = chunk;
      bytes = -1;
    } else {
      str = this.decoder.write(chunk);
      bytes = chunk.length;
      if (str.indexOf('\uFFFD') !== -1 && !this.replacementCharsLegit(str, chunk)) {
        this.report('unsupported-encoding', 'invalid UTF-8 byte sequence');
        return;
      }
      const n = chunk.length;
      if (n >= 2) {
        this.tail0 = chunk[n - 2]!;
        this.tail1 = chunk[n - 1]!;
      } else if (n === 1) {
        this.tail0 = this.tail1;
        this.tail1 = chunk[0]!;
      }
    }
    if (str.length === 0) return;
    this.feed(str, bytes);
  }

  // ------------------------------------------------------------------------

  private newParser(): void {
    const p = new SaxesParser({ xmlns: false, forceXMLVersion: true, defaultXMLVersion: '1.0' });
    preallocateHandlerSlots(p);
    p.on('xmldecl', this.onXmlDecl);
    p.on('attribute', this.onAttribute);
    p.on('opentag', this.onOpenTag);
    p.on('closetag', this.onCloseTag);
    p.on('text', this.onText);
    p.on('cdata', this.onCData);
    p.on('comment', this.onComment);
    p.on('processinginstruction', this.onPI);
    p.on('doctype', this.onDoctype);
    p.on('error', this.onSaxError);
    this.parser = p;
    this.state = State.Header;
    this.stack = [];
    this.scopes = [];
    this.streamScope = Object.create(null) as Scope;
    this.fed = 0;
    this.piece = '';
    this.pieceStart = 0;
    this.regionStart = 0;
    this.regionBytes = 0;
    this.boundaryIdx = -1;
    this.idle = false;
    this.tagAttrs = undefined;
    this.tagPrefixed = false;
    this.pending = undefined;
    this.drop = Drop.None;
  }

  /** Called by reset()/stop()/discardPipelined(): remember the rest of a running write as dropped. */
  private cutRest(): void {
    if (!this.writing || this.state !== State.Open || this.cut !== undefined) return;
    this.cut = this.input.slice(this.emitPos - this.inputStart);
  }

  private feed(str: string, bytes: number): void {
    // Whitespace keepalive between top-level elements: nothing to parse.
    if (this.idle && WS_ONLY.test(str)) return;
    if (bytes < 0) bytes = Buffer.byteLength(str, 'utf8');
    this.factor = bytes / str.length;
    this.writing = true;
    this.input = str;
    this.inputStart = this.fed;
    try {
      this.feedPieces(str);
    } finally {
      this.writing = false;
      this.input = '';
      if (this.drop === Drop.RestOfWrite) this.drop = this.stack.length !== 0 ? Drop.InProgress : Drop.None;
      const cut = this.cut;
      if (cut !== undefined) {
        this.cut = undefined;
        if (cut.length !== 0) this.emit('discarded', Buffer.byteLength(cut, 'utf8'), !NON_WS.test(cut));
      }
    }
  }

  private feedPieces(str: string): void {
    const len = str.length;
    const gen = this.generation;
    for (let off = 0; off < len; off += MAX_PIECE) {
      const piece = len <= MAX_PIECE ? str : str.slice(off, off + MAX_PIECE);
      const parser = this.parser;
      this.piece = piece;
      this.pieceStart = this.fed;
      this.boundaryIdx = -1;
      try {
        parser.write(piece);
        if (this.pending !== undefined) this.flushPending();
      } catch (err) {
        if (err !== ABORT) {
          // A listener threw: the saxes instance is now in an undefined state.
          if (this.parser === parser) this.state = State.Failed;
          throw err;
        }
      }
      // reset() or stop() by a listener: the rest of the input is dropped.
      if (this.generation !== gen || this.state >= State.Closed) return;
      this.fed += piece.length;
      // Account the part of the current region that lies in this piece.
      const from = this.regionStart > this.pieceStart ? this.regionStart : this.pieceStart;
      this.regionBytes += (this.fed - from) * this.factor;
      this.regionStart = this.fed;
      if (!this.checkSize(this.regionBytes)) return;
      this.idle =
        this.boundaryIdx >= 0 && this.state === State.Open && this.stack.length === 0 && wsTail(piece, this.boundaryIdx);
    }
  }

  /** Bytes from the start of the current region to the parser's position. */
  private regionSize(): number {
    const pos = this.parser.position;
    const from = this.regionStart > this.pieceStart ? this.regionStart : this.pieceStart;
    return this.regionBytes + (pos - from) * this.factor;
  }

  private startRegion(pos: number): void {
    this.regionStart = pos;
    this.regionBytes = 0;
  }

  /** Returns false (after reporting policy-violation) when over the limit. */
  private checkSize(size: number): boolean {
    if (this.state === State.Header) {
      const budget = Math.max(this.limits.maxStanzaSize, MIN_HEADER_BUDGET);
      if (size > budget) {
        this.report('policy-violation', `stream header exceeds the limit of ${budget} bytes`);
        return false;
      }
    } else if (size > this.limits.maxStanzaSize) {
      this.report('policy-violation', `stanza exceeds the size limit of ${this.limits.maxStanzaSize} bytes`);
      return false;
    }
    return true;
  }

  /** Report an error; the parser then ignores input until reset(). */
  private report(condition: ParserErrorCondition, text: string): void {
    if (this.state === State.Failed) return;
    this.state = State.Failed;
    this.stack = [];
    this.pending = undefined;
    this.emit('error', condition, text);
  }

  /** Report an error from inside a saxes callback and unwind saxes. */
  private abort(condition: ParserErrorCondition, text: string): never {
    this.report(condition, text);
    throw ABORT;
  }

  private checkBinding(prefix: string, uri: string): void {
    const err = bindingError(prefix, uri);
    if (err !== undefined) this.abort('not-well-formed', err);
  }

  /**
   * Emit the pending element or stream end. Returns true when parsing of the
   * current input must stop: the stream ended, or a listener called reset()
   * or stop().
   */
  private flushPending(): boolean {
    const item = this.pending as Element | typeof STREAM_END;
    this.pending = undefined;
    const gen = this.generation;
    this.emitPos = this.pendingPos;
    if (item === STREAM_END) {
      this.state = State.Closed;
      this.emit('streamEnd');
    } else {
      this.emit('stanza', item);
    }
    return gen !== this.generation || this.state !== State.Open;
  }

  /**
   * StringDecoder turns every invalid UTF-8 sequence into U+FFFD. The input was
   * valid iff every U+FFFD in the output comes from an encoded EF BF BD.
   */
  private replacementCharsLegit(str: string, buf: Buffer): boolean {
    let decoded = 0;
    for (let i = str.indexOf('\uFFFD'); i !== -1; i = str.indexOf('\uFFFD', i + 1)) decoded++;
    let encoded = 0;
    // sequences straddling the previous chunk
    const b0 = buf.length > 0 ? buf[0] : -1;
    const b1 = buf.length > 1 ? buf[1] : -1;
    if (this.tail0 === 0xef && this.tail1 === 0xbf && b0 === 0xbd) encoded++;
    if (this.tail1 === 0xef && b0 === 0xbf && b1 === 0xbd) encoded++;
    for (let i = buf.indexOf(REPLACEMENT_UTF8); i !== -1; i = buf.indexOf(REPLACEMENT_UTF8, i + 3)) encoded++;
    return decoded === encoded;
  }

  // ---- saxes callbacks (arrow functions: bound once) ----

  private readonly onSaxError = (err: Error): void => {
    if (this.pending !== undefined) {
      if (this.parser.position === this.pendingPos) {
        // Reported from the same closeTag() call: the end tag did not match.
        this.pending = undefined;
      } else if (this.flushPending()) {
        throw ABORT; // e.g. junk after </stream:stream>: ignored
      }
    }
    const msg = err.message;
    if (msg.includes('undefined entity')) {
      this.abort('restricted-xml', `entity references other than the predefined ones are not allowed (${msg})`);
    } else if (msg.includes('doctype')) {
      this.abort('restricted-xml', `DTDs are not allowed (${msg})`);
    } else {
      this.abort('not-well-formed', msg);
    }
  };

  private readonly onXmlDecl = (decl: XMLDecl): void => {
    const enc = decl.encoding;
    if (enc !== undefined && enc.toLowerCase() !== 'utf-8') {
      this.abort('unsupported-encoding', `encoding ${enc} is not supported, only UTF-8`);
    }
  };

  private readonly onComment = (): void => {
    if (this.pending !== undefined && this.flushPending()) throw ABORT;
    this.abort('restricted-xml', 'comments are not allowed');
  };

  private readonly onPI = (pi: { target: string }): void => {
    if (this.pending !== undefined && this.flushPending()) throw ABORT;
    this.abort('restricted-xml', `processing instructions are not allowed (<?${pi.target}...?>)`);
  };

  private readonly onDoctype = (): void => {
    if (this.pending !== undefined && this.flushPending()) throw ABORT;
    this.abort('restricted-xml', 'DTDs are not allowed');
  };

  /**
   * Attributes are collected from saxes' per-attribute events into a plain
   * object (saxes' own attribute map is a null-prototype dictionary-mode
   * object, slow to iterate or copy); saxes still does the duplicate check.
   */
  private readonly onAttribute = (attr: SaxesAttributePlain): void => {
    if (this.pending !== undefined && this.flushPending()) throw ABORT;
    const name = attr.name;
    const attrs = (this.tagAttrs ??= {});
    if (name === '__proto__') {
      Object.defineProperty(attrs, name, { value: attr.value, enumerable: true, writable: true, configurable: true });
    } else {
      attrs[name] = attr.value;
    }
    if (name.includes(':')) this.tagPrefixed = true;
  };

  private readonly onOpenTag = (tag: SaxesTagPlain): void => {
    if (this.pending !== undefined && this.flushPending()) throw ABORT;
    const attrs = this.tagAttrs ?? {};
    const prefixed = this.tagPrefixed;
    this.tagAttrs = undefined;
    this.tagPrefixed = false;
    if (this.state === State.Header) {
      this.openStream(tag, attrs);
      return;
    }
    const stack = this.stack;
    const depth = stack.length;
    if (depth >= this.limits.maxDepth) {
      this.abort('policy-violation', `element nesting exceeds the limit of ${this.limits.maxDepth}`);
    }
    const name = tag.name;
    const el = new Element(name);
    el.attrs = attrs;
    stack.push(el);
    if (attrs.xmlns !== undefined) this.checkBinding('', attrs.xmlns);
    if (prefixed) {
      // Rare path: prefix declarations and/or prefixed attribute names.
      let scope: Scope | undefined;
      let prefixedAttrs = false;
      for (const key in attrs) {
        if (key.startsWith('xmlns:')) {
          const prefix = key.slice(6);
          this.checkBinding(prefix, attrs[key]!);
          (scope ??= Object.create(null) as Scope)[prefix] = attrs[key]!;
        } else if (key.includes(':')) {
          prefixedAttrs = true;
        }
      }
      this.scopes.push(scope);
      if (prefixedAttrs) this.checkAttrPrefixes(attrs);
    } else {
      this.scopes.push(undefined);
    }
    if (name.includes(':')) this.resolvePrefix(name, true);
    if (depth !== 0) stack[depth - 1]!.cnode(el);
  };

  private readonly onCloseTag = (): void => {
    if (this.pending !== undefined && this.flushPending()) throw ABORT;
    const stack = this.stack;
    const depth = stack.length;
    if (depth === 0) {
      // </stream:stream> (or the end of a self-closing header)
      this.pending = STREAM_END;
      this.pendingPos = this.parser.position;
      return;
    }
    const el = stack.pop() as Element;
    this.scopes.pop();
    if (depth !== 1) return;
    // Top-level element complete.
    const pos = this.parser.position;
    if (!this.checkSize(this.regionSize())) throw ABORT;
    this.startRegion(pos);
    this.boundaryIdx = pos - this.pieceStart;
    if (this.drop !== Drop.None) {
      // Sent before a state change (discardPipelined()): dropped.
      if (this.drop === Drop.InProgress) this.drop = Drop.None;
      return;
    }
    this.pending = el;
    this.pendingPos = pos;
  };

  private readonly onText = (text: string): void => {
    if (this.pending !== undefined && this.flushPending()) throw ABORT;
    const stack = this.stack;
    const depth = stack.length;
    if (depth === 0) {
      if (this.state !== State.Open) return; // before the header: saxes rejects non-whitespace
      if (NON_WS.test(text)) {
        this.abort('not-well-formed', 'character data is not allowed at stream level');
      }
      // Whitespace before a top-level element: the region restarts at its '<'.
      this.startRegion(this.parser.position - 1);
      return;
    }
    appendText(stack[depth - 1]!, text);
  };

  private readonly onCData = (text: string): void => {
    if (this.pending !== undefined && this.flushPending()) throw ABORT;
    const stack = this.stack;
    const depth = stack.length;
    if (depth === 0) {
      if (NON_WS.test(text)) {
        this.abort('not-well-formed', 'character data is not allowed at stream level');
      }
      return;
    }
    if (text.length !== 0) appendText(stack[depth - 1]!, text);
  };

  // ---- namespaces ----

  private openStream(tag: SaxesTagPlain, attrs: Record<string, string>): void {
    const name = tag.name;
    const scope = this.streamScope;
    let prefixedAttrs = false;
    for (const key in attrs) {
      if (key === 'xmlns') {
        this.checkBinding('', attrs[key]!);
        scope[''] = attrs[key]!;
      } else if (key.startsWith('xmlns:')) {
        const prefix = key.slice(6);
        this.checkBinding(prefix, attrs[key]!);
        scope[prefix] = attrs[key]!;
      } else if (key.includes(':')) {
        prefixedAttrs = true;
      }
    }
    const colon = name.indexOf(':');
    const local = colon === -1 ? name : name.slice(colon + 1);
    const ns = colon === -1 ? scope[''] : this.resolvePrefix(name, false);
    if (prefixedAttrs) this.checkAttrPrefixes(attrs);
    if (local !== 'stream' || ns !== NS_STREAMS) {
      this.abort('invalid-namespace', `the root element must be <stream/> in namespace ${NS_STREAMS}`);
    }
    if (scope[''] === undefined) {
      this.abort('invalid-namespace', 'the stream header does not declare a content namespace');
    }
    const parser = this.parser;
    const pos = parser.position;
    if (!this.checkSize(this.regionSize())) throw ABORT;
    this.state = State.Open;
    this.startRegion(pos);
    this.boundaryIdx = pos - this.pieceStart;
    const gen = this.generation;
    this.emitPos = pos;
    this.emit('streamStart', attrs);
    // reset() or stop() by the listener (e.g. a refused header): drop the rest.
    if (gen !== this.generation) throw ABORT;
  }

  /**
   * Resolve the prefix of a qualified name (which contains a colon); fails on
   * malformed names and unbound prefixes. For names inside a stanza, a prefix
   * bound only on the stream header gets its declaration copied onto the
   * top-level element so that the emitted element is self-contained.
   */
  private resolvePrefix(qname: string, inStanza: boolean): string {
    const colon = qname.indexOf(':');
    if (colon === 0 || colon === qname.length - 1 || qname.indexOf(':', colon + 1) !== -1) {
      this.abort('not-well-formed', `malformed qualified name: ${qname}`);
    }
    const prefix = qname.slice(0, colon);
    if (prefix === 'xml') return NS_XML;
    if (prefix === 'xmlns') this.abort('not-well-formed', `the prefix xmlns is reserved: ${qname}`);
    if (inStanza) {
      const scopes = this.scopes;
      for (let i = scopes.length - 1; i >= 0; i--) {
        const s = scopes[i];
        if (s !== undefined && s[prefix] !== undefined) return s[prefix];
      }
    }
    const uri = this.streamScope[prefix];
    if (uri === undefined) {
      this.abort('not-well-formed', `unbound namespace prefix: ${prefix}`);
    }
    if (inStanza) {
      const top = this.stack[0]!;
      const decl = `xmlns:${prefix}`;
      if (top.attrs[decl] === undefined) top.attrs[decl] = uri;
    }
    return uri as string;
  }

  private checkAttrPrefixes(attrs: Record<string, string>): void {
    const inStanza = this.state === State.Open;
    let seen: string[] | undefined;
    for (const key in attrs) {
      if (!key.includes(':') || key.startsWith('xmlns:')) continue;
      const uri = this.resolvePrefix(key, inStanza);
      const expanded = `{${uri}}${key.slice(key.indexOf(':') + 1)}`;
      if (seen === undefined) seen = [expanded];
      else if (seen.includes(expanded)) this.abort('not-well-formed', `duplicate attribute: ${expanded}`);
      else seen.push(expanded);
    }
  }
}

/** saxes' handler fields (saxes@6 internals; only used to pre-create them, see below). */
type HandlerSlots = Record<
  | 'xmldeclHandler'
  | 'textHandler'
  | 'piHandler'
  | 'doctypeHandler'
  | 'commentHandler'
  | 'openTagStartHandler'
  | 'openTagHandler'
  | 'closeTagHandler'
  | 'cdataHandler'
  | 'errorHandler'
  | 'endHandler'
  | 'readyHandler'
  | 'attributeHandler',
  unknown
>;

/**
 * SaxesParser.on() stores handlers with computed-key assignments, each adding
 * a new property to an object that already has many; past V8's limit for
 * keyed stores (12 out-of-object properties) the parser object drops to
 * dictionary mode and every `this.i` / `this.chunk` access in saxes' inner
 * loop becomes a hash lookup (measured: ~4x slower parsing). Creating the
 * slots with named stores first keeps the object in fast mode. Harmless if a
 * future saxes renames the fields (it would only add unused properties).
 */
function preallocateHandlerSlots(p: SaxesParser<{ xmlns: false }>): void {
  const slots = p as unknown as HandlerSlots;
  slots.xmldeclHandler = undefined;
  slots.textHandler = undefined;
  slots.piHandler = undefined;
  slots.doctypeHandler = undefined;
  slots.commentHandler = undefined;
  slots.openTagStartHandler = undefined;
  slots.openTagHandler = undefined;
  slots.closeTagHandler = undefined;
  slots.cdataHandler = undefined;
  slots.errorHandler = undefined;
  slots.endHandler = undefined;
  slots.readyHandler = undefined;
  slots.attributeHandler = undefined;
}

const REPLACEMENT_UTF8 = Buffer.from([0xef, 0xbf, 0xbd]);

function wsTail(s: string, from: number): boolean {
  if (from >= s.length) return true;
  WS_TAIL.lastIndex = from;
  WS_TAIL.test(s);
  return WS_TAIL.lastIndex === s.length;
}

/** Error message for an invalid namespace declaration, or undefined if it is fine. */
function bindingError(prefix: string, uri: string): string | undefined {
  if (prefix === '') {
    return uri === NS_XML || uri === NS_XMLNS ? `the default namespace may not be ${uri}` : undefined;
  }
  if (prefix === 'xml') return uri === NS_XML ? undefined : 'the prefix xml may not be rebound';
  if (prefix === 'xmlns') return 'the prefix xmlns may not be declared';
  if (uri === '') return `namespace prefix ${prefix} may not be undeclared`;
  if (uri === NS_XML || uri === NS_XMLNS) return `namespace ${uri} may not be bound to ${prefix}`;
  if (prefix.includes(':')) return `malformed namespace declaration: xmlns:${prefix}`;
  return undefined;
}

function appendText(el: Element, text: string): void {
  const children = el.children;
  const last = children.length - 1;
  if (last >= 0 && typeof children[last] === 'string') {
    children[last] = (children[last] as string) + text;
  } else {
    children.push(text);
  }
}

function escapeAttr(v: string): string {
  return v.replace(/[&<>'"]/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === "'" ? '&apos;' : '&quot;',
  );
}

/**
 * Serialize a stream header: `<?xml version='1.0'?><stream:stream ...>`.
 * Undefined attributes are skipped; `xmlns:stream` is added when absent.
 */
export function streamHeader(attrs: Record<string, string | undefined>): string {
  let out = "<?xml version='1.0'?><stream:stream";
  if (attrs['xmlns:stream'] === undefined) out += ` xmlns:stream='${NS_STREAMS}'`;
  for (const key of Object.keys(attrs)) {
    const v = attrs[key];
    if (v === undefined) continue;
    out += ` ${key}='${escapeAttr(v)}'`;
  }
  return out + '>';
}
