// The MUC room archive over a real (memory) archive store: tombstones in place of retracted
// messages (XEP-0424/0425 §"Tombstones"), the history read back from it, and archives that do
// not outlive their room (marks, dropOrphans, drop).
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import { storedMessage } from '../../core/api.ts';
import { StorageManager } from '../../core/storage/manager.ts';
import type { ArchiveStore, KeyValStore } from '../../core/storage/manager.ts';
import { RoomArchive } from '../../modules/mod_muc/archive.ts';
import type { ArchivedMessage, Retraction } from '../../modules/mod_muc/room.ts';

const HOST = 'conference.example.org';
const ROOM = `coven@${HOST}`;
const NS_RETRACT = 'urn:xmpp:message-retract:1';
const NS_MODERATE = 'urn:xmpp:message-moderate:1';
const NS_OID = 'urn:xmpp:occupant-id:0';

describe('MUC room archive (tombstones, history, orphaned archives)', () => {
  let sm: StorageManager;
  let store: ArchiveStore;
  let marks: KeyValStore;
  let archive: RoomArchive;
  beforeEach(() => {
    sm = new StorageManager({ driver: 'memory', dataDir: '/nonexistent' });
    store = sm.archive(HOST, 'muc_log');
    marks = sm.keyval(HOST, 'muc_log_rooms');
    archive = new RoomArchive(store, marks);
  });
  afterEach(() => sm.close());

  let n = 0;
  const post = async (body: string, o: { room?: string; from?: string; retract?: string; id?: string } = {}): Promise<string> => {
    const room = o.room ?? ROOM;
    const stanzaId = `sid-${++n}`;
    const stanza = new Element('message', { from: `${room}/hag`, type: 'groupchat', id: o.id ?? `m-${n}` });
    if (o.retract) stanza.c('retract', { xmlns: NS_RETRACT, id: o.retract });
    stanza.c('body').t(body);
    stanza.c('occupant-id', { xmlns: NS_OID, id: 'hag-oid' });
    stanza.c('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: stanzaId, by: room });
    const entry: ArchivedMessage = { room, stanzaId, time: 1000 * n, stanza, senderJid: o.from ?? 'hag@example.org/pda', nick: 'hag', occupantId: 'hag-oid' };
    await archive.store(entry);
    return stanzaId;
  };
  const retraction = (stanzaId: string, r: Partial<Retraction> = {}): Retraction => ({
    room: ROOM, stanzaId, retractionId: 'ann-1', time: Date.UTC(2026, 0, 2, 3, 4, 5), moderated: true, by: `${ROOM}/firstwitch`, occupantId: 'mod-oid', ...r,
  });
  it('replaces a moderated message by a tombstone in its place, with <moderated> and the reason', async () => {
    const a = await post('one');
    const b = await post('bad words');
    const c = await post('three');
    const before = await store.find('coven');
    assert.equal(await archive.retract(retraction(b, { reason: 'Spam' })), true);
    const items = await store.find('coven');
    assert.deepEqual(items.map((i) => i.id), [a, b, c]);
    assert.equal(items[1]!.with, 'hag@example.org/pda');
    assert.equal(items[1]!.when, before.find((i) => i.id === b)!.when);
    const t = xmlOf(items[1]!.payload);
    assert.ok(!items[1]!.payload.includes('bad words'));
    assert.equal(t.attrs.from, `${ROOM}/hag`);
    assert.equal(t.attrs.type, 'groupchat');
    assert.equal(t.getChild('body'), undefined);
    assert.equal(t.getChild('occupant-id', NS_OID)?.attrs.id, 'hag-oid');
    const r = t.getChild('retracted', NS_RETRACT)!;
    assert.equal(r.attrs.id, 'ann-1');
    assert.equal(r.attrs.stamp, '2026-01-02T03:04:05.000Z');
    assert.equal(r.getChild('moderated', NS_MODERATE)?.attrs.by, `${ROOM}/firstwitch`);
    assert.equal(r.getChild('moderated', NS_MODERATE)?.getChild('occupant-id', NS_OID)?.attrs.id, 'mod-oid');
    assert.equal(r.getChildText('reason'), 'Spam');
    // Nothing left to retract the second time; an unknown id is not found either.
    assert.equal(await archive.retract(retraction(b)), false);
    assert.equal(await archive.retract(retraction('nope')), false);
  });

  it('applies an author’s retraction only to the author’s own message, naming the retraction message', async () => {
    const mine = await post('oops');
    const theirs = await post('not yours', { from: 'crone@example.org/desktop' });
    assert.equal(await archive.retract(retraction(theirs, { moderated: false, by: 'hag@example.org', retractionMessageId: 'r-1' })), false);
    assert.ok((await store.find('coven', { ids: [theirs] }))[0]!.payload.includes('not yours'));
    assert.equal(await archive.retract(retraction(mine, { moderated: false, by: 'hag@example.org', retractionMessageId: 'r-1' })), true);
    const r = xmlOf((await store.find('coven', { ids: [mine] }))[0]!.payload).getChild('retracted', NS_RETRACT)!;
    assert.equal(r.attrs.id, 'r-1');
    assert.equal(r.getChild('moderated', NS_MODERATE), undefined);
  });

  it('reads the history back without tombstones or retractions', async () => {
    await post('first');
    const gone = await post('gone');
    await post('retracting', { retract: gone });
    await post('last');
    await archive.retract(retraction(gone, { moderated: false, by: 'hag@example.org' }));
    assert.deepEqual((await archive.history(ROOM, 10)).map((e) => e.stanza.getChildText('body')), ['first', 'last']);
    assert.deepEqual((await archive.history(ROOM, 1)).map((e) => e.stanza.getChildText('body')), ['last']);
  });

  it('marks rooms with an archive; at start, deletes the archives of marked rooms that are not stored', async () => {
    await post('temporary', { room: `temp@${HOST}` });
    await post('persistent', { room: `kept@${HOST}` });
    assert.deepEqual(await marks.users(), ['kept', 'temp']);
    // Unmarked archive data (from before the marks) is left alone here…
    await store.append('old', { payload: '<message/>' });
    const fresh = new RoomArchive(store, marks); // the next run
    assert.deepEqual(await fresh.dropOrphans(new Set(['kept'])), ['temp']);
    assert.equal(await store.count('temp'), 0);
    assert.equal(await store.count('kept'), 1);
    assert.deepEqual(await marks.users(), ['kept']);
    // …and goes when a room of that name is created (the module drops it first).
    await fresh.drop(`old@${HOST}`);
    assert.equal(await store.count('old'), 0);
    // A dropped room is marked again by its next message.
    await fresh.drop(`kept@${HOST}`);
    assert.deepEqual(await marks.users(), []);
    await fresh.store({ room: `kept@${HOST}`, stanzaId: 'x', time: 1, stanza: new Element('message', { type: 'groupchat' }), senderJid: undefined, nick: undefined, occupantId: undefined });
    assert.deepEqual(await marks.users(), ['kept']);
  });
});

/** An archived payload as the element it stores. */
function xmlOf(payload: string): Element {
  const el = storedMessage({ id: 'x', when: 0, payload });
  assert.ok(el, payload);
  return el;
}
