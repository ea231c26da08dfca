// A stanza is serialised once on its way to a client with stream management: mod_smacks' last
// `stanzas/out` filter serialises it (serialiseOutgoing) for its journal and unacknowledged queue,
// and the client stream's write (core/net/c2s.ts) hands that same string to the transport instead
// of serialising again. A session whose filters did not serialise the stanza gets nothing (the
// string never leaks to another write). Real ClientStreams, Session and SessionFilters; the module
// object and the transport are minimal stand-ins.
import assert from 'node:assert/strict';
import { xml, type Element } from '../../core/util/stanza.ts';
import { clientStreamsHarness } from '../helpers/client-streams.ts';

describe('client streams: one serialisation per stanza written with stream management', function () {
  const harness = clientStreamsHarness();

  /** A client connection: its session and what its transport was asked to write. */
  const connect = (host: string) => {
    const writes: { x: Element | string; serialised: string | undefined }[] = [];
    const { stream, session } = harness.connect(host, (x, serialised) => {
      writes.push({ x, serialised });
      return true;
    });
    return { stream, session, writes };
  };

  /** A message that counts how often it is serialised. */
  const counted = () => {
    const m = xml('message', { to: 'juliet@sm.example/phone', type: 'chat' }, xml('body', {}, 'hello'));
    let n = 0;
    const original = m.toString.bind(m);
    m.toString = () => {
      n++;
      return original();
    };
    return { m, count: () => n };
  };

  // As mod_smacks on sm.example only: its last filter keeps the XML it made.
  const kept = harness.serialiseForJournal('sm.example');

  it('hands the transport the string the stream management filter made: the stanza is serialised once', function () {
    const { stream, session, writes } = connect('sm.example');
    const { m, count } = counted();
    session.send(m);
    assert.equal(count(), 1);
    assert.equal(writes.length, 1);
    assert.equal(writes[0]!.x, m);
    assert.equal(writes[0]!.serialised, kept.at(-1));
    assert.equal(writes[0]!.serialised, m.toString());
    stream.ended(true);
  });

  it('gives a write nothing when no filter serialised its stanza, also right after another session\'s', function () {
    const sm = connect('sm.example');
    const plain = connect('plain.example');
    const { m } = counted();
    sm.session.send(m);
    plain.session.send(m);
    plain.session.send('<r/>');
    assert.equal(plain.writes[0]!.serialised, undefined);
    assert.equal(plain.writes[1]!.serialised, undefined);
    sm.stream.ended(true);
    plain.stream.ended(true);
  });
});
