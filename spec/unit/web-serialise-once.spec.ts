// WebSocket (RFC 7395 §3.3.3) and BOSH (XEP-0206) write each stanza as a self-contained element in
// jabber:client. With stream management the stanza was already serialised once (mod_smacks'
// serialiseOutgoing, handed to the transport as ClientStreamIo.send's `serialised`): the framing
// inserts the namespace declaration into that string instead of serialising again. The text must be
// exactly what the framing's own serialisation writes. The last tests run real ClientStreams with a
// stream-management-like filter into the framing as the glue modules call it (index.ts).
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { ClientStreamIo } from '../../core/net/c2s.ts';
import { xml, type Element } from '../../core/util/stanza.ts';
import { BoshManager, NS_HTTPBIND, NS_XBOSH, payloadXml, type BoshSession } from '../../modules/mod_bosh/session.ts';
import { frameElement } from '../../modules/mod_websocket/framing.ts';
import { clientStreamsHarness } from '../helpers/client-streams.ts';

const CLIENT = 'jabber:client';

/** Stanzas as the server sends them: with and without xmlns, awkward attribute values, self-closing. */
function stanzas(): Element[] {
  return [
    xml('message', { to: 'juliet@example.com/balcony', from: 'romeo@example.net/orchard', type: 'chat', id: 'm1' }, xml('body', {}, 'Wherefore art thou?')),
    xml('message', { xmlns: CLIENT, to: 'juliet@example.com', type: 'chat' }, xml('body', {}, 'a > b & "c" \'d\' <e>')),
    xml('message', { to: 'a@example.com', id: 'x>"y\'<&z' }, xml('body', {}, 'attribute with > and quotes')),
    xml('message', { id: '>', to: '/>' }),
    xml('iq', { type: 'result', id: 'i1', to: 'a@example.com/r' }),
    xml('iq', { type: 'get', id: 'i2' }, xml('query', { xmlns: 'jabber:iq:roster' })),
    xml('iq', { xmlns: CLIENT, type: 'set', id: 'i3' }, xml('bind', { xmlns: 'urn:ietf:params:xml:ns:xmpp-bind' }, xml('jid', {}, 'a@example.com/r'))),
    xml('presence', {}),
    xml('presence', { from: 'a@example.com/r', type: 'unavailable' }),
    xml('presence', { xmlns: CLIENT }),
    xml('presence', { from: 'b@example.com/r' }, xml('show', {}, 'away'), xml('status', {}, '"quoted" > status')),
    xml('message', { xmlns: 'jabber:server', to: 'a@example.com' }),
  ];
}

/** Serialise `m` and count how often that happens. */
function counted(m: Element): () => number {
  let n = 0;
  const original = m.toString.bind(m);
  m.toString = () => {
    n++;
    return original();
  };
  return () => n;
}

const framings: [string, (el: Element, serialised?: string) => string][] = [
  ['WebSocket frameElement', frameElement],
  ['BOSH payloadXml', payloadXml],
];

for (const [name, frame] of framings) {
  describe(`${name}: a stanza serialised by stream management is framed without serialising again`, function () {
    it('writes exactly the text of its own serialisation, for messages, iq and presence with and without xmlns', function () {
      for (const el of stanzas()) {
        const before = el.toString();
        const own = frame(el);
        assert.equal(frame(el, el.toString()), own, before);
        assert.equal(el.toString(), before, 'the element is left as it was');
        // The frame is one element in jabber:client (or the namespace it had) with the same content.
        const parsed = parse(own);
        const expected = parse(before);
        assert.equal(parsed.name, expected.name);
        assert.deepEqual({ ...parsed.attrs }, { xmlns: CLIENT, ...expected.attrs }, own);
        assert.equal(parsed.children.join(''), expected.children.join(''), own);
      }
    });

    it('declares jabber:client right after the name, as ltx writes attributes', function () {
      assert.equal(frame(xml('presence', {})), '<presence xmlns="jabber:client"/>');
      assert.equal(
        frame(xml('message', { to: 'a@example.com', id: 'x>"y' }, xml('body', {}, 'hi'))),
        '<message xmlns="jabber:client" to="a@example.com" id="x&gt;&quot;y"><body>hi</body></message>',
      );
      const own = xml('iq', { xmlns: CLIENT, type: 'get', id: 'i' });
      assert.equal(frame(own), '<iq xmlns="jabber:client" type="get" id="i"/>');
    });

    it('uses the given string: the stanza is not serialised again', function () {
      const m = xml('message', { to: 'juliet@example.com', type: 'chat' }, xml('body', {}, 'hello'));
      // A marker only the given string carries: what comes out was built from it.
      const given = "<message to=\"juliet@example.com\" type=\"chat\"><body>from the journal</body></message>";
      const count = counted(m);
      assert.equal(frame(m, given), '<message xmlns="jabber:client" to="juliet@example.com" type="chat"><body>from the journal</body></message>');
      assert.equal(count(), 0);
      const withNs = xml('iq', { xmlns: CLIENT, type: 'result', id: '1' });
      const countNs = counted(withNs);
      assert.equal(frame(withNs, '<iq xmlns="jabber:client" type="result" id="1"/>'), '<iq xmlns="jabber:client" type="result" id="1"/>');
      assert.equal(countNs(), 0);
    });

    it('falls back to its own serialisation when the given string is not of this element', function () {
      const m = xml('message', { to: 'a@example.com' });
      const own = frame(m);
      for (const wrong of ['<presence/>', '<messages to="a@example.com"/>', '', 'message/>']) assert.equal(frame(m, wrong), own, wrong);
    });
  });
}

describe('WebSocket and BOSH transports: one serialisation per stanza with stream management', function () {
  const harness = clientStreamsHarness();
  const noop = () => undefined;
  /** A client connection whose transport writes with `send` (the glue's ClientStreamIo.send). */
  const connect = (send: ClientStreamIo['send']) => harness.connect('sm.example', send, 5280);

  // As mod_smacks on sm.example only: its last filter keeps the XML it made.
  const kept = harness.serialiseForJournal('sm.example');

  it('WebSocket: the frame is the stream management string with jabber:client declared; one serialisation', function () {
    const frames: string[] = [];
    // As modules/mod_websocket/index.ts writes an element.
    const { stream, session } = connect((x, serialised) => {
      frames.push(typeof x === 'string' ? x : frameElement(x, serialised));
      return true;
    });
    const m = xml('message', { to: 'juliet@sm.example/phone', type: 'chat' }, xml('body', {}, 'hello'));
    const count = counted(m);
    session.send(m);
    assert.equal(count(), 1);
    assert.equal(frames.length, 1);
    assert.equal(frames[0], `<message xmlns="jabber:client"${kept.at(-1)!.slice('<message'.length)}`);
    assert.equal(frames[0], '<message xmlns="jabber:client" to="juliet@sm.example/phone" type="chat"><body>hello</body></message>');
    stream.ended(true);
  });

  it('BOSH: the response carries the stream management string with jabber:client declared; one serialisation', async function () {
    let bosh: BoshSession | undefined;
    const manager = new BoshManager({ polling: 2, inactivity: 30, maxPause: 120, maxWait: 60 }, {
      isHost: (to) => to === 'sm.example',
      open: (s) => {
        bosh = s;
        return { deliver: noop, restart: noop, ended: noop };
      },
    });
    const post = (attrs: Record<string, string | number>) =>
      manager.handle(`<body${Object.entries({ xmlns: NS_HTTPBIND, ...attrs }).map(([k, v]) => ` ${k}='${v}'`).join('')}/>`);
    await post({ rid: 1000, to: 'sm.example', wait: 60, hold: 1, ver: '1.6', 'xmpp:version': '1.0', 'xmlns:xmpp': NS_XBOSH });
    const sid = bosh!.sid;
    // As modules/mod_bosh/index.ts hands an element to the BOSH session.
    const { stream, session } = connect((x, serialised) => bosh!.send(x, serialised));
    const m = xml('message', { to: 'juliet@sm.example/phone', type: 'chat' }, xml('body', {}, 'hello'));
    const count = counted(m);
    const response = post({ sid, rid: 1001 });
    session.send(m);
    const body = await response;
    assert.equal(count(), 1);
    assert.ok(body.includes(`<message xmlns="jabber:client"${kept.at(-1)!.slice('<message'.length)}`), body);
    const got = parse(body).getChild('message', CLIENT);
    assert.equal(got?.getChildText('body'), 'hello');
    await post({ sid, rid: 1002, type: 'terminate' });
    stream.ended(true);
  });
});
