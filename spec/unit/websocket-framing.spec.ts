// XMPP over WebSocket framing (RFC 7395), modules/mod_websocket/framing.ts.
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import { FrameReader, NS_FRAMING, WS_UNSUPPORTED_DATA, closeFrame, frameElement, openFrame, seeOtherUriFrame, streamErrorFrames, type Frame } from '../../modules/mod_websocket/framing.ts';

const LIMITS = { maxStanzaSize: 10_000, maxDepth: 8 };
const OPEN = `<open xmlns='${NS_FRAMING}' to='example.org' version='1.0' xml:lang='en'/>`;

function opened(): FrameReader {
  const r = new FrameReader(LIMITS);
  assert.equal(r.read(OPEN).kind, 'open');
  return r;
}

function assertError(frame: Frame, condition: string): void {
  assert.equal(frame.kind, 'error', JSON.stringify(frame));
  if (frame.kind === 'error') assert.equal(frame.condition, condition, frame.text);
}

describe('WebSocket framing (RFC 7395)', () => {
  describe('reading', () => {
    it('reads <open/> with its attributes and no xmlns', () => {
      const r = new FrameReader(LIMITS);
      const f = r.read(OPEN);
      assert.deepEqual(f, { kind: 'open', attrs: { to: 'example.org', version: '1.0', 'xml:lang': 'en' } });
      assert.equal(r.isOpen, true);
    });

    it('accepts an XML declaration in UTF-8 before a frame, and refuses other encodings', () => {
      assert.equal(new FrameReader(LIMITS).read(`<?xml version='1.0' encoding="UTF-8"?>${OPEN}`).kind, 'open');
      assertError(new FrameReader(LIMITS).read(`<?xml version='1.0' encoding='ISO-8859-1'?>${OPEN}`), 'unsupported-encoding');
      assertError(new FrameReader(LIMITS).read(`<?xml encoding='UTF-8'?>${OPEN}`), 'not-well-formed');
    });

    it('gives stanzas as the TCP parser does: jabber:client removed, payload namespaces kept', () => {
      const r = opened();
      const f = r.read("<message xmlns='jabber:client' to='b@example.org' type='chat'><body>hi &amp; bye</body></message>");
      assert.equal(f.kind, 'element');
      if (f.kind !== 'element') return;
      assert.equal(f.element.name, 'message');
      assert.equal(f.element.attrs.xmlns, undefined);
      assert.equal(f.element.getChildText('body'), 'hi & bye');
      const auth = r.read("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
      assert.equal(auth.kind === 'element' && auth.element.attrs.xmlns, 'urn:ietf:params:xml:ns:xmpp-sasl');
      const other = r.read("<iq xmlns='jabber:server' type='get' id='1'/>");
      assert.equal(other.kind === 'element' && other.element.attrs.xmlns, 'jabber:server', 'a stanza in another namespace is left for the stream to refuse');
    });

    it('reads <close/> and refuses other elements of the framing namespace', () => {
      assert.deepEqual(opened().read(`<close xmlns='${NS_FRAMING}'/>`), { kind: 'close' });
      assertError(opened().read(`<reopen xmlns='${NS_FRAMING}'/>`), 'unsupported-stanza-type');
    });

    it('expects <open/> first and again after a restart', () => {
      assertError(new FrameReader(LIMITS).read("<message xmlns='jabber:client'/>"), 'invalid-namespace');
      assertError(new FrameReader(LIMITS).read("<open xmlns='jabber:client' to='example.org' version='1.0'/>"), 'invalid-namespace');
      assertError(new FrameReader(LIMITS).read("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>"), 'invalid-namespace');
      const r = opened();
      assertError(r.read(OPEN), 'bad-format');
      const s = opened();
      s.restart();
      assert.equal(s.isOpen, false);
      assertError(s.read("<iq xmlns='jabber:client' type='get' id='1'/>"), 'invalid-namespace');
      const t = opened();
      t.restart();
      assert.equal(t.read(OPEN).kind, 'open');
      assert.equal(t.read("<presence xmlns='jabber:client'/>").kind, 'element');
    });

    it('refuses a frame that is not exactly one complete element with not-well-formed', () => {
      const cases: [string, string][] = [
        ["<message xmlns='jabber:client'>", 'unfinished element'],
        ["<message xmlns='jabber:client'/><presence xmlns='jabber:client'/>", 'two elements'],
        ["<message xmlns='jabber:client'/>trailing", 'trailing text'],
        ["<message xmlns='jabber:client'/><pres", 'a second element begun'],
        ['', 'empty'],
        [' <message/>', 'leading whitespace'],
        ['hello', 'text'],
        ["<message xmlns='jabber:client'><body>x</message>", 'mismatched tags'],
        ['</stream:stream>', 'a stream close tag'],
      ];
      for (const [text, why] of cases) {
        const f = opened().read(text);
        assert.equal(f.kind === 'error' && f.condition, 'not-well-formed', why);
      }
    });

    it('applies the restricted-XML rules, size and depth limits of TCP streams', () => {
      assertError(opened().read("<message xmlns='jabber:client'><!-- c --></message>"), 'restricted-xml');
      assertError(opened().read("<?php x?><message xmlns='jabber:client'/>"), 'restricted-xml');
      assertError(opened().read(`<message xmlns='jabber:client'><body>${'x'.repeat(10_001)}</body></message>`), 'policy-violation');
      assertError(opened().read(`<message xmlns='jabber:client'>${'<a>'.repeat(9)}${'</a>'.repeat(9)}</message>`), 'policy-violation');
      assertError(opened().read("<message xmlns='jabber:client'><x:y/></message>"), 'not-well-formed');
      const r = opened();
      r.setLimits({ maxStanzaSize: 20_000, maxDepth: 8 });
      assert.equal(r.read(`<message xmlns='jabber:client'><body>${'x'.repeat(10_001)}</body></message>`).kind, 'element');
    });

    it('stays failed after an error', () => {
      const r = opened();
      assertError(r.read('<a>'), 'not-well-formed');
      assertError(r.read("<presence xmlns='jabber:client'/>"), 'not-well-formed');
    });

    it('asks for WebSocket close 1003 on binary messages', () => {
      assert.deepEqual(opened().read(Buffer.from(OPEN), true).kind, 'websocket-close');
      const f = opened().read(Buffer.from('x'), true);
      assert.equal(f.kind === 'websocket-close' && f.code, WS_UNSUPPORTED_DATA);
    });
  });

  describe('writing', () => {
    it('writes <open/> and <close/> in the framing namespace', () => {
      assert.equal(openFrame({ from: 'example.org', id: 'abc', lang: 'en' }), `<open xmlns='${NS_FRAMING}' from='example.org' id='abc' version='1.0' xml:lang='en'/>`);
      assert.equal(closeFrame(), `<close xmlns='${NS_FRAMING}'/>`);
    });

    it('makes every frame self-contained: stanzas in jabber:client, stream elements with the stream prefix bound', () => {
      const msg = new Element('message', { to: 'a@example.org' }).c('body').t('hi').up();
      assert.equal(frameElement(msg), '<message xmlns="jabber:client" to="a@example.org"><body>hi</body></message>');
      assert.equal(msg.attrs.xmlns, undefined, 'the element is not changed');
      const features = new Element('stream:features').c('bind', { xmlns: 'urn:ietf:params:xml:ns:xmpp-bind' }).up();
      assert.equal(frameElement(features), '<stream:features xmlns:stream="http://etherx.jabber.org/streams"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>');
      const success = new Element('success', { xmlns: 'urn:ietf:params:xml:ns:xmpp-sasl' });
      assert.equal(frameElement(success), '<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>');
    });

    it('writes a stream error followed by <close/>, and each frame parses on its own', () => {
      const [err, close] = streamErrorFrames('policy-violation', 'too big');
      assert.match(err, /^<stream:error xmlns:stream="http:\/\/etherx.jabber.org\/streams"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/><text xmlns="urn:ietf:params:xml:ns:xmpp-streams" xml:lang="en">too big<\/text><\/stream:error>$/);
      assert.equal(close, closeFrame());
      // What we write, a reader (as a client would) takes as one frame each.
      const r = opened();
      assert.equal(r.read(err).kind, 'element');
      assert.equal(r.read(frameElement(new Element('message', { to: 'x@y' }))).kind, 'element');
    });

    it('redirects with see-other-uri only to ws:/wss: URIs, never from secure to insecure', () => {
      const ok = seeOtherUriFrame('wss://other.example/xmpp-websocket', true);
      assert.deepEqual(ok, { ok: true, frame: `<close xmlns='${NS_FRAMING}' see-other-uri='wss://other.example/xmpp-websocket'/>` });
      assert.equal(seeOtherUriFrame('ws://other.example/ws', false).ok, true);
      assert.equal(seeOtherUriFrame('ws://other.example/ws', true).ok, false);
      assert.equal(seeOtherUriFrame('https://other.example/', false).ok, false);
      assert.equal(seeOtherUriFrame('not a uri', false).ok, false);
    });
  });
});
