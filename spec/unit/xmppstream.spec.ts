import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import { XmppStreamParser, streamHeader, type ParserErrorCondition, type StreamLimits } from '../../core/util/stream-parser.ts';

const NS_STREAMS = 'http://etherx.jabber.org/streams';
const HEADER = `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' to='example.com' version='1.0' xml:lang='en'>`;

interface Recorder {
  parser: XmppStreamParser;
  starts: Record<string, string>[];
  stanzas: Element[];
  ends: number;
  errors: { condition: ParserErrorCondition; text: string }[];
}

function make(limits: StreamLimits = { maxStanzaSize: 65536, maxDepth: 32 }): Recorder {
  const parser = new XmppStreamParser(limits);
  const r: Recorder = { parser, starts: [], stanzas: [], ends: 0, errors: [] };
  parser.on('streamStart', (attrs) => r.starts.push(attrs));
  parser.on('stanza', (el) => r.stanzas.push(el));
  parser.on('streamEnd', () => r.ends++);
  parser.on('error', (condition, text) => r.errors.push({ condition, text }));
  return r;
}

function noErrors(r: Recorder): void {
  assert.equal(r.errors.length, 0, `unexpected errors: ${JSON.stringify(r.errors)}`);
}

/** Parser that already received a stream header. */
function opened(limits?: StreamLimits): Recorder {
  const r = make(limits);
  r.parser.write(HEADER);
  assert.equal(r.starts.length, 1);
  noErrors(r);
  return r;
}

function errorOf(input: string | string[], limits?: StreamLimits, withHeader = true): ParserErrorCondition | undefined {
  const r = withHeader ? opened(limits) : make(limits);
  for (const chunk of Array.isArray(input) ? input : [input]) r.parser.write(chunk);
  assert.ok(r.errors.length <= 1, 'at most one error is reported');
  return r.errors[0]?.condition;
}

describe('XmppStreamParser', () => {
  describe('stream header', () => {
    it('parses a header preceded by an XML declaration', () => {
      const r = make();
      r.parser.write(`<?xml version='1.0' encoding='UTF-8'?>\n${HEADER}`);
      noErrors(r);
      assert.deepEqual(r.starts, [
        {
          xmlns: 'jabber:client',
          'xmlns:stream': NS_STREAMS,
          to: 'example.com',
          version: '1.0',
          'xml:lang': 'en',
        },
      ]);
    });

    it('parses a header without XML declaration, split into chunks', () => {
      const r = make();
      for (const ch of HEADER) r.parser.write(ch);
      noErrors(r);
      assert.equal(r.starts.length, 1);
      assert.equal(r.starts[0]!.to, 'example.com');
    });

    it('accepts an unprefixed <stream xmlns=streams> and reports its default namespace as is', () => {
      // The content namespace is then the streams namespace; validating it is the caller's job.
      const r = make();
      r.parser.write(`<stream xmlns='${NS_STREAMS}'>`);
      noErrors(r);
      assert.equal(r.starts[0]!.xmlns, NS_STREAMS);
    });

    it('rejects a root element that is not stream:stream', () => {
      assert.equal(errorOf(`<stream:foo xmlns='jabber:client' xmlns:stream='${NS_STREAMS}'>`, undefined, false), 'invalid-namespace');
      assert.equal(errorOf(`<html xmlns='jabber:client'>`, undefined, false), 'invalid-namespace');
    });

    it('rejects a wrong streams namespace', () => {
      assert.equal(
        errorOf(`<stream:stream xmlns='jabber:client' xmlns:stream='http://example.com/streams'>`, undefined, false),
        'invalid-namespace',
      );
    });

    it('rejects a header without content namespace', () => {
      assert.equal(errorOf(`<stream:stream xmlns:stream='${NS_STREAMS}'>`, undefined, false), 'invalid-namespace');
    });

    it('rejects an unbound stream prefix as not-well-formed', () => {
      assert.equal(errorOf(`<stream:stream xmlns='jabber:client'>`, undefined, false), 'not-well-formed');
    });

    it('rejects an XML declaration with an encoding other than UTF-8', () => {
      assert.equal(errorOf(`<?xml version='1.0' encoding='ISO-8859-1'?>${HEADER}`, undefined, false), 'unsupported-encoding');
      assert.equal(errorOf(`<?xml version='1.0' encoding='utf-8'?>${HEADER}`, undefined, false), undefined);
    });

    it('rejects text before the header', () => {
      assert.equal(errorOf(`hello${HEADER}`, undefined, false), 'not-well-formed');
    });

    it('limits the size of the header', () => {
      const r = make({ maxStanzaSize: 100, maxDepth: 10 });
      r.parser.write(`<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' to='${'a'.repeat(20000)}`);
      assert.equal(r.errors[0]?.condition, 'policy-violation');
    });
  });

  describe('stanzas', () => {
    it('emits top-level elements with structure, attributes and text', () => {
      const r = opened();
      r.parser.write(
        `<message to='juliet@example.com' type="chat" id='a&amp;b'>` +
          `<body>Art thou not &lt;Romeo&gt; &amp; a &quot;Montague&quot;&apos;? &#169;&#x263A;</body>` +
          `<thread parent='p1'>t1</thread><x xmlns='jabber:x:data'><field var='a'/></x></message>`,
      );
      noErrors(r);
      assert.equal(r.stanzas.length, 1);
      const m = r.stanzas[0]!;
      assert.equal(m.name, 'message');
      assert.deepEqual({ ...m.attrs }, { to: 'juliet@example.com', type: 'chat', id: 'a&b' });
      assert.equal(m.getChildText('body'), `Art thou not <Romeo> & a "Montague"'? \u00a9\u263a`);
      assert.equal(m.getChild('thread')?.attrs.parent, 'p1');
      const x = m.getChild('x', 'jabber:x:data');
      assert.ok(x);
      assert.equal(x.attrs.xmlns, 'jabber:x:data');
      assert.equal(x.getChild('field')?.attrs.var, 'a');
      assert.equal(m.children.length, 3);
    });

    it('handles CDATA sections as text, merged with adjacent text', () => {
      const r = opened();
      r.parser.write(`<message><body>a <![CDATA[<b> & ]]>c</body></message>`);
      noErrors(r);
      const body = r.stanzas[0]!.getChild('body');
      assert.ok(body);
      assert.deepEqual(body.children, ['a <b> & c']);
    });

    it('keeps whitespace text inside stanzas', () => {
      const r = opened();
      r.parser.write(`<iq type='get' id='1'>\n  <query xmlns='jabber:iq:roster'/>\n</iq>`);
      noErrors(r);
      assert.equal(r.stanzas[0]!.children.length, 3);
      assert.equal(r.stanzas[0]!.getChildElements().length, 1);
    });

    it('parses a stanza written in 1-byte Buffer chunks including multi-byte UTF-8', () => {
      const text = 'héllo wörld € 中文 😀 𝄞';
      const xml = `<message to='ö@example.com'><body>${text}</body></message>`;
      const bytes = Buffer.from(HEADER + xml + '</stream:stream>', 'utf8');
      const r = make();
      for (let i = 0; i < bytes.length; i++) r.parser.write(bytes.subarray(i, i + 1));
      noErrors(r);
      assert.equal(r.starts.length, 1);
      assert.equal(r.stanzas.length, 1);
      assert.equal(r.stanzas[0]!.attrs.to, 'ö@example.com');
      assert.equal(r.stanzas[0]!.getChildText('body'), text);
      assert.equal(r.ends, 1);
    });

    it('parses many stanzas in one chunk and stanzas split across chunks', () => {
      const r = opened();
      const one = `<presence from='a@b/c'><show>away</show></presence>`;
      const all = one.repeat(50);
      r.parser.write(all.slice(0, 1234));
      r.parser.write(all.slice(1234, 1240));
      r.parser.write(all.slice(1240));
      noErrors(r);
      assert.equal(r.stanzas.length, 50);
      for (const s of r.stanzas) assert.equal(s.toString(), one.replace(/'/g, '"'));
    });

    it('ignores whitespace keepalives between stanzas', () => {
      const r = opened({ maxStanzaSize: 200, maxDepth: 10 });
      r.parser.write(' ');
      r.parser.write(`\n<presence/>\r\n \t`);
      for (let i = 0; i < 5000; i++) r.parser.write(' ');
      r.parser.write(Buffer.from('\n'));
      r.parser.write(`  <presence type='unavailable'/> `);
      noErrors(r);
      assert.equal(r.stanzas.length, 2);
    });

    it('emits streamEnd on </stream:stream> and ignores data after it', () => {
      const r = opened();
      r.parser.write(`<presence/> </stream:stream>`);
      r.parser.write(`<message/>`);
      noErrors(r);
      assert.equal(r.stanzas.length, 1);
      assert.equal(r.ends, 1);
    });

    it('does not emit a stanza or streamEnd whose end tag does not match', () => {
      const r = opened();
      r.parser.write(`<presence/><message></stream:stream>`);
      assert.equal(r.errors[0]?.condition, 'not-well-formed');
      assert.deepEqual(
        r.stanzas.map((s) => s.name),
        ['presence'],
      );
      assert.equal(r.ends, 0);
      const r2 = opened();
      r2.parser.write(`</stream:foo>`);
      assert.equal(r2.errors[0]?.condition, 'not-well-formed');
      assert.equal(r2.ends, 0);
    });

    it('emits a complete stanza before an error that follows it in the same chunk', () => {
      const r = opened();
      r.parser.write(`<message id='1'/><message id='2'></message><!-- c -->`);
      assert.deepEqual(
        r.stanzas.map((s) => s.attrs.id),
        ['1', '2'],
      );
      assert.equal(r.errors[0]?.condition, 'restricted-xml');
      const r2 = opened();
      r2.parser.write(`<message id='1'></message><<`);
      assert.equal(r2.stanzas.length, 1);
      assert.equal(r2.errors[0]?.condition, 'not-well-formed');
    });

    it('ignores junk after </stream:stream>', () => {
      const r = opened();
      r.parser.write(`</stream:stream>junk<x/><!-- -->`);
      assert.equal(r.ends, 1);
      noErrors(r);
    });

    it('keeps unusual attribute names such as __proto__', () => {
      const r = opened();
      r.parser.write(`<message __proto__='x' constructor='y'/>`);
      noErrors(r);
      assert.equal(Object.getPrototypeOf(r.stanzas[0]!.attrs), Object.prototype);
      assert.deepEqual(Object.keys(r.stanzas[0]!.attrs), ['__proto__', 'constructor']);
      assert.equal(r.stanzas[0]!.attrs.constructor, 'y');
    });

    it('emits streamEnd for a self-closing header', () => {
      const r = make();
      r.parser.write(`<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}'/>`);
      assert.equal(r.starts.length, 1);
      assert.equal(r.ends, 1);
    });
  });

  describe('namespaces', () => {
    it('emits stanzas in the stream default namespace without xmlns', () => {
      const r = opened();
      r.parser.write(`<message><body>x</body></message>`);
      assert.equal(r.stanzas[0]!.attrs.xmlns, undefined);
      assert.equal(r.stanzas[0]!.toString(), '<message><body>x</body></message>');
    });

    it('keeps an own xmlns on top-level elements', () => {
      const r = opened();
      r.parser.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
      r.parser.write(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AGZvbwBiYXI=</auth>`);
      noErrors(r);
      assert.equal(r.stanzas[0]!.attrs.xmlns, 'urn:ietf:params:xml:ns:xmpp-tls');
      assert.equal(r.stanzas[1]!.attrs.xmlns, 'urn:ietf:params:xml:ns:xmpp-sasl');
      assert.equal(r.stanzas[1]!.attrs.mechanism, 'PLAIN');
      assert.equal(r.stanzas[1]!.getText(), 'AGZvbwBiYXI=');
    });

    it('keeps prefixed names and declarations as written inside stanzas', () => {
      const r = opened();
      r.parser.write(`<iq type='set' id='1'><p:pubsub xmlns:p='http://jabber.org/protocol/pubsub'><p:publish node='n' xml:lang='de'/></p:pubsub></iq>`);
      noErrors(r);
      const ps = r.stanzas[0]!.getChild('pubsub', 'http://jabber.org/protocol/pubsub');
      assert.ok(ps);
      assert.equal(ps.name, 'p:pubsub');
      assert.equal(ps.attrs['xmlns:p'], 'http://jabber.org/protocol/pubsub');
      const publish = ps.getChildElements()[0]!;
      assert.equal(publish.name, 'p:publish');
      assert.deepEqual({ ...publish.attrs }, { node: 'n', 'xml:lang': 'de' });
      assert.equal(r.stanzas[0]!.attrs['xmlns:p'], undefined);
    });

    it('adds declarations of prefixes bound on the stream header to the top-level element', () => {
      const r = make();
      r.parser.write(
        `<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='${NS_STREAMS}'>` +
          `<db:result from='a.example' to='b.example'>key</db:result><stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
      );
      noErrors(r);
      const [result, error] = r.stanzas as [Element, Element];
      assert.equal(result.name, 'db:result');
      assert.equal(result.attrs['xmlns:db'], 'jabber:server:dialback');
      assert.ok(result.is('result', 'jabber:server:dialback'));
      assert.equal(error.attrs['xmlns:stream'], NS_STREAMS);
      assert.ok(error.is('error', NS_STREAMS));
    });

    it('rejects unbound prefixes on elements and attributes', () => {
      assert.equal(errorOf(`<message><foo:bar/></message>`), 'not-well-formed');
      assert.equal(errorOf(`<message foo:bar='x'/>`), 'not-well-formed');
      assert.equal(errorOf(`<message><x xmlns:foo='urn:x'/><foo:bar/></message>`), 'not-well-formed');
    });

    it('accepts the xml prefix without declaration', () => {
      assert.equal(errorOf(`<message xml:lang='en'><body xml:lang='de'>x</body></message>`), undefined);
    });

    it('rejects bad namespace declarations', () => {
      assert.equal(errorOf(`<message xmlns:foo=''/>`), 'not-well-formed');
      assert.equal(errorOf(`<message xmlns:xml='urn:x'/>`), 'not-well-formed');
      assert.equal(errorOf(`<message xmlns:xmlns='urn:x'/>`), 'not-well-formed');
      assert.equal(errorOf(`<xmlns:message/>`), 'not-well-formed');
    });

    it('rejects attributes that are duplicates after namespace expansion', () => {
      assert.equal(errorOf(`<message xmlns:a='urn:x' xmlns:b='urn:x' a:z='1' b:z='2'/>`), 'not-well-formed');
      assert.equal(errorOf(`<message xmlns:a='urn:x' xmlns:b='urn:y' a:z='1' b:z='2'/>`), undefined);
    });
  });

  describe('restricted XML and well-formedness', () => {
    it('rejects comments', () => {
      assert.equal(errorOf(`<message><!-- hi --></message>`), 'restricted-xml');
      assert.equal(errorOf(`<!-- hi -->`), 'restricted-xml');
      assert.equal(errorOf(`<!-- before -->${HEADER}`, undefined, false), 'restricted-xml');
    });

    it('rejects processing instructions', () => {
      assert.equal(errorOf(`<message><?foo bar?></message>`), 'restricted-xml');
      assert.equal(errorOf(`<?foo bar?>`), 'restricted-xml');
      assert.equal(errorOf(`<?xml-stylesheet href='a'?>${HEADER}`, undefined, false), 'restricted-xml');
    });

    it('rejects DOCTYPE declarations', () => {
      assert.equal(errorOf(`<!DOCTYPE stream:stream>${HEADER}`, undefined, false), 'restricted-xml');
      assert.equal(
        errorOf(`<?xml version='1.0'?><!DOCTYPE s [<!ENTITY x "y">]>${HEADER}`, undefined, false),
        'restricted-xml',
      );
      assert.equal(errorOf(`<message><!DOCTYPE x></message>`), 'restricted-xml');
    });

    it('rejects entity references other than the predefined ones', () => {
      assert.equal(errorOf(`<message><body>&nbsp;</body></message>`), 'restricted-xml');
      assert.equal(errorOf(`<message to='&foo;'/>`), 'restricted-xml');
      assert.equal(errorOf(`<message><body>&#0;</body></message>`), 'not-well-formed');
    });

    it('rejects duplicate attributes', () => {
      assert.equal(errorOf(`<message to='a' to='b'/>`), 'not-well-formed');
    });

    it('rejects mismatched tags', () => {
      assert.equal(errorOf(`<message><body></message></body>`), 'not-well-formed');
      assert.equal(errorOf(`<message></stream:stream>`), 'not-well-formed');
    });

    it('rejects < in attribute values', () => {
      assert.equal(errorOf(`<message to='a<b'/>`), 'not-well-formed');
    });

    it('rejects text at stream level', () => {
      assert.equal(errorOf(`hello<message/>`), 'not-well-formed');
      assert.equal(errorOf(`<message/>&amp;<message/>`), 'not-well-formed');
      assert.equal(errorOf(`<![CDATA[x]]>`), 'not-well-formed');
    });

    it('rejects disallowed characters', () => {
      assert.equal(errorOf(`<message><body>\u0001</body></message>`), 'not-well-formed');
      assert.equal(errorOf(`<message><body>]]></body></message>`), 'not-well-formed');
    });

    it('rejects malformed names', () => {
      assert.equal(errorOf(`<message><a:b:c xmlns:a='urn:x'/></message>`), 'not-well-formed');
      assert.equal(errorOf(`<message><1a/></message>`), 'not-well-formed');
    });

    it('rejects an XML declaration that is not at the start', () => {
      assert.equal(errorOf(`<?xml version='1.0'?>`), 'not-well-formed');
    });

    it('rejects invalid UTF-8', () => {
      const r = opened();
      r.parser.write(Buffer.from([0x3c, 0x6d, 0x3e, 0xe9, 0x3c, 0x2f, 0x6d, 0x3e])); // <m>\xe9</m> (Latin-1)
      assert.equal(r.errors[0]?.condition, 'unsupported-encoding');
      const r2 = opened();
      r2.parser.write(Buffer.from('<m>\ufffd</m>', 'utf8')); // a real U+FFFD is fine
      const b = Buffer.from('<m>\ufffd</m>', 'utf8');
      r2.parser.write(b.subarray(0, 4));
      r2.parser.write(b.subarray(4));
      noErrors(r2);
      assert.equal(r2.stanzas.length, 2);
    });

    it('reports only one error and ignores input until reset()', () => {
      const r = opened();
      r.parser.write(`<message><!-- x --></message><presence/>`);
      r.parser.write(`<presence/>`);
      assert.equal(r.errors.length, 1);
      assert.equal(r.stanzas.length, 0);
      r.parser.reset();
      r.parser.write(HEADER + '<presence/>');
      assert.equal(r.starts.length, 2);
      assert.equal(r.stanzas.length, 1);
    });
  });

  describe('limits', () => {
    it('enforces the stanza size limit (policy-violation naming the limit)', () => {
      const r = opened({ maxStanzaSize: 1000, maxDepth: 10 });
      r.parser.write(`<message><body>${'x'.repeat(900)}</body></message>`);
      noErrors(r);
      r.parser.write(`<message><body>${'x'.repeat(1000)}</body></message>`);
      assert.equal(r.errors.length, 1);
      assert.equal(r.errors[0]!.condition, 'policy-violation');
      assert.match(r.errors[0]!.text, /1000/);
      assert.equal(r.stanzas.length, 1);
    });

    it('counts bytes, not characters', () => {
      const r = opened({ maxStanzaSize: 1000, maxDepth: 10 });
      r.parser.write(Buffer.from(`<message><body>${'é'.repeat(450)}</body></message>`));
      noErrors(r);
      r.parser.write(Buffer.from(`<message><body>${'é'.repeat(600)}</body></message>`)); // 1200+ bytes
      assert.equal(r.errors[0]?.condition, 'policy-violation');
    });

    it('triggers before the oversized stanza is complete', () => {
      const r = opened({ maxStanzaSize: 10000, maxDepth: 10 });
      r.parser.write(`<message><body>`);
      let written = 0;
      while (r.errors.length === 0 && written < 1_000_000) {
        r.parser.write('y'.repeat(1024));
        written += 1024;
      }
      assert.equal(r.errors[0]?.condition, 'policy-violation');
      assert.ok(written <= 11 * 1024, `error after ${written} bytes`);
    });

    it('triggers within a single huge write', () => {
      const r = opened({ maxStanzaSize: 10000, maxDepth: 10 });
      let stanzas = 0;
      r.parser.on('stanza', () => stanzas++);
      r.parser.write(`<message><body>${'z'.repeat(5_000_000)}</body></message>`);
      assert.equal(r.errors[0]?.condition, 'policy-violation');
      assert.equal(stanzas, 0);
    });

    it('bounds junk at stream level too', () => {
      const r = opened({ maxStanzaSize: 1000, maxDepth: 10 });
      r.parser.write('<!--');
      for (let i = 0; i < 100 && r.errors.length === 0; i++) r.parser.write('a'.repeat(100));
      assert.equal(r.errors[0]?.condition, 'policy-violation');
    });

    it('setLimits() raises the limit', () => {
      const r = opened({ maxStanzaSize: 1000, maxDepth: 10 });
      r.parser.setLimits({ maxStanzaSize: 100_000, maxDepth: 10 });
      r.parser.write(`<message><body>${'x'.repeat(50_000)}</body></message>`);
      noErrors(r);
      assert.equal(r.stanzas[0]!.getChildText('body')?.length, 50_000);
    });

    it('enforces the depth limit', () => {
      const nest = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);
      assert.equal(errorOf(nest(4), { maxStanzaSize: 10000, maxDepth: 4 }), undefined);
      const r = opened({ maxStanzaSize: 10000, maxDepth: 4 });
      r.parser.write(nest(5));
      assert.equal(r.errors[0]?.condition, 'policy-violation');
      assert.match(r.errors[0]!.text, /4/);
    });
  });

  describe('reset()', () => {
    it('accepts a new header (with XML declaration) after a header', () => {
      const r = opened();
      r.parser.write(`<presence/>`);
      r.parser.reset();
      r.parser.write(`<?xml version='1.0'?>${HEADER}<message/>`);
      noErrors(r);
      assert.equal(r.starts.length, 2);
      assert.equal(r.stanzas.length, 2);
    });

    it('expects a header again (stanza without header is rejected)', () => {
      const r = opened();
      r.parser.reset();
      r.parser.write(`<message/>`);
      assert.equal(r.errors[0]?.condition, 'invalid-namespace');
    });

    it('discards a half-parsed stanza', () => {
      const r = opened();
      r.parser.write(`<message><body>hal`);
      r.parser.reset();
      r.parser.write(`${HEADER}<presence/>`);
      noErrors(r);
      assert.equal(r.stanzas.length, 1);
      assert.equal(r.stanzas[0]!.name, 'presence');
    });

    it('called from a listener, drops the rest of that write unparsed (STARTTLS command injection)', () => {
      const r = opened();
      const discarded: [number, boolean][] = [];
      r.parser.on('discarded', (bytes, ws) => discarded.push([bytes, ws]));
      r.parser.on('stanza', (el) => {
        if (el.name === 'starttls') r.parser.reset();
      });
      const injected = `<?xml version='1.0'?>${HEADER}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGJvYgBib2I=</auth><message to='carol@example.com'/>`;
      r.parser.write(Buffer.from(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>${injected}`));
      noErrors(r);
      assert.equal(r.starts.length, 1, 'the injected header is not parsed');
      assert.deepEqual(
        r.stanzas.map((s) => s.name),
        ['starttls'],
      );
      assert.deepEqual(discarded, [[Buffer.byteLength(injected), false]]);
      // The new stream starts with the next write, XML declaration included.
      r.parser.write(`<?xml version='1.0'?>${HEADER}<iq id='b'/>`);
      noErrors(r);
      assert.equal(r.starts.length, 2);
      assert.deepEqual(
        r.stanzas.map((s) => s.attrs.id ?? s.name),
        ['starttls', 'b'],
      );
    });

    it("drops a newline written right after <starttls/> (go-sendxmpp), so the new header's XML declaration comes first", () => {
      const r = opened();
      const discarded: [number, boolean][] = [];
      r.parser.on('discarded', (bytes, ws) => discarded.push([bytes, ws]));
      r.parser.on('stanza', (el) => {
        if (el.name === 'starttls') r.parser.reset();
      });
      r.parser.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n`);
      r.parser.write(`<?xml version='1.0'?>${HEADER}`);
      noErrors(r);
      assert.equal(r.starts.length, 2);
      assert.deepEqual(discarded, [[1, true]]);
    });

    it('drops the rest of a write spanning several pieces; later writes start the new stream', () => {
      const input = `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>${HEADER}<iq id='a'/>${' '.repeat(100_000)}<iq id='b'/>`;
      for (const chunked of [false, true]) {
        const r = opened({ maxStanzaSize: 1 << 20, maxDepth: 10 });
        r.parser.on('stanza', (el) => {
          if (el.name === 'auth') r.parser.reset();
        });
        if (chunked) for (const ch of input) r.parser.write(Buffer.from(ch));
        else r.parser.write(input);
        noErrors(r);
        // Byte by byte, the header arrives after the restart: it opens the new stream.
        assert.equal(r.starts.length, chunked ? 2 : 1);
        assert.deepEqual(
          r.stanzas.map((s) => s.attrs.id ?? s.name),
          chunked ? ['auth', 'a', 'b'] : ['auth'],
        );
      }
    });

    it('drops the bytes of an incomplete UTF-8 character received before the restart', () => {
      const r = opened();
      r.parser.write(Buffer.from([0xc3])); // first byte of 'é', held by the decoder
      r.parser.reset();
      r.parser.write(Buffer.from(`${HEADER}<message/>`));
      noErrors(r);
      assert.equal(r.starts.length, 2);
      assert.equal(r.stanzas.length, 1);
    });
  });

  describe('stop()', () => {
    it('called from a listener, nothing more is emitted from that write or later ones', () => {
      const r = opened();
      const discarded: number[] = [];
      r.parser.on('discarded', (bytes) => discarded.push(bytes));
      r.parser.on('stanza', (el) => {
        if (el.attrs.id === '1') r.parser.stop();
      });
      const rest = `<iq type='get' to='bob@example.com/x' id='2'/><presence/>`;
      r.parser.write(`<message id='1'/>${rest}`);
      r.parser.write(`<iq id='3'/></stream:stream>`);
      noErrors(r);
      assert.deepEqual(
        r.stanzas.map((s) => s.attrs.id),
        ['1'],
      );
      assert.equal(r.ends, 0);
      assert.deepEqual(discarded, [rest.length]);
    });

    it('called from the streamStart listener (a refused header), drops the stanzas of the same write', () => {
      const r = make();
      r.parser.on('streamStart', () => r.parser.stop());
      r.parser.write(`${HEADER}<message/><iq/>`);
      noErrors(r);
      assert.equal(r.starts.length, 1);
      assert.equal(r.stanzas.length, 0);
    });

    it('called between writes, ignores all later input', () => {
      const r = opened();
      r.parser.stop();
      r.parser.write(`<message/>`);
      r.parser.write(`<!-- not even an error -->`);
      assert.equal(r.stanzas.length, 0);
      noErrors(r);
    });
  });

  describe('discardPipelined()', () => {
    it('called from a listener, drops the elements of the rest of that write and the one in progress', () => {
      const r = opened();
      const discarded: number[] = [];
      r.parser.on('discarded', (bytes) => discarded.push(bytes));
      r.parser.on('stanza', (el) => {
        if (el.name === 'handshake') r.parser.discardPipelined();
      });
      const rest = `<message id='a'/><message id='b'><body>x</body></message><message id='c'><body>hal`;
      r.parser.write(`<handshake>abc</handshake>${rest}`);
      r.parser.write(`f</body></message><message id='d'/>`);
      r.parser.write(`<message id='e'/>`);
      noErrors(r);
      assert.deepEqual(
        r.stanzas.map((s) => s.attrs.id ?? s.name),
        ['handshake', 'd', 'e'],
      );
      assert.deepEqual(discarded, [rest.length]);
    });

    it('still honours a closing tag in the dropped part', () => {
      const r = opened();
      r.parser.on('stanza', (el) => {
        if (el.name === 'handshake') r.parser.discardPipelined();
      });
      r.parser.write(`<handshake/><message/></stream:stream>`);
      assert.equal(r.stanzas.length, 1);
      assert.equal(r.ends, 1);
    });

    it('called between writes, drops only an element still in progress', () => {
      const r = opened();
      r.parser.write(`<message id='a'/>`);
      r.parser.discardPipelined(); // between elements: nothing to drop
      r.parser.write(`<message id='b'><body>`);
      r.parser.discardPipelined();
      r.parser.write(`x</body></message><message id='c'/>`);
      noErrors(r);
      assert.deepEqual(
        r.stanzas.map((s) => s.attrs.id),
        ['a', 'c'],
      );
    });
  });

  describe('streamHeader()', () => {
    it('serializes and escapes attributes, skipping undefined ones', () => {
      const h = streamHeader({ xmlns: 'jabber:client', from: 'example.com', to: undefined, id: `a'b<&"`, version: '1.0' });
      assert.equal(
        h,
        `<?xml version='1.0'?><stream:stream xmlns:stream='${NS_STREAMS}' xmlns='jabber:client' from='example.com' id='a&apos;b&lt;&amp;&quot;' version='1.0'>`,
      );
      const r = make();
      r.parser.write(h);
      noErrors(r);
      assert.equal(r.starts[0]!.id, `a'b<&"`);
      assert.equal(r.starts[0]!.to, undefined);
    });
  });
});
