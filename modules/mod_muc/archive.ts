// The room archive (XEP-0313 on a MUC room, doc/mam.md "Glue: the MUC room archive") over the
// shared MAM engine and an archive store, user = the room's localpart. The room engine archives
// every message it gives a stanza-id (the item id is that stanza-id, `with` the sender's real
// JID) before broadcasting it; retractions (XEP-0424/0425) replace the item's content with a
// tombstone in place, so paging clients see that something was retracted and where (the
// announcement is archived as well). Queries check access (§5.1.2 of XEP-0045's MAM profile,
// XEP-0313 §5.1.2) and add real JIDs only for requesters who may see them.
//
// A room's archive lives only as long as the room. Temporary rooms are not stored, so a crash
// leaves their archives behind: every room with an archive is therefore marked in a keyval store
// (before its first message is archived), and at start the archives of marked rooms that are
// not stored persistent rooms are deleted (`dropOrphans`). Creating a room drops whatever archive
// its name still has (`drop`), so a new room never shows an earlier room's messages.
import { Element } from '@xmpp/xml';
import { addStanzaId, answerMamIq, archivedPayload, NS_MAM, split, StanzaError, storedMessage, type ArchiveStore, type KeyValStore } from '../../core/api.ts';
import type { HistoryEntry } from './history.ts';
import { NS_MODERATE, NS_MUC_USER, NS_OCCUPANT_ID, NS_RETRACT } from './ns.ts';
import type { ArchivedMessage, Retraction, Room } from './room.ts';
import type { MucArchive } from './service.ts';

const node = (roomJid: string) => split(roomJid).node ?? roomJid;
const bareOf = (jid: string) => jid.split('/')[0]!;

export class RoomArchive implements MucArchive {
  /** Rooms marked (in `rooms`) by this process: their mark is durable. */
  private readonly marked = new Set<string>();

  /** `rooms`: room localpart → true for every room that may have an archive. */
  constructor(private readonly archive: ArchiveStore, private readonly rooms: KeyValStore) {}

  async store(entry: ArchivedMessage): Promise<void> {
    const room = node(entry.room);
    if (!this.marked.has(room)) {
      await this.rooms.set(room, true);
      this.marked.add(room);
    }
    await this.archive.append(room, {
      id: entry.stanzaId,
      when: entry.time,
      ...(entry.senderJid !== undefined ? { with: entry.senderJid } : {}),
      payload: archivedPayload(entry.stanza, entry.room, { room: true }),
    });
  }

  /**
   * XEP-0424 §"Tombstones" / XEP-0425 §"Tombstones": the archived message keeps its place, its
   * stanza-id (the item id), its sender and its author's occupant-id; everything else (body and
   * whatever might leak what it said) gives way to `<retracted id stamp>` — with `<moderated by>`
   * (the moderator's occupant-id inside) and the reason when a moderator did it. An author's
   * retraction applies only to the author's own message. False when there is nothing to retract
   * (no such item, or already a tombstone).
   */
  async retract(r: Retraction): Promise<boolean> {
    const room = node(r.room);
    const [item] = await this.archive.find(room, { ids: [r.stanzaId] }).catch(() => []);
    if (!item) return false;
    if (!r.moderated && (item.with === undefined || bareOf(item.with) !== r.by)) return false;
    const stored = storedMessage(item);
    if (stored?.getChild('retracted', NS_RETRACT)) return false;
    return this.archive.replacePayload(room, r.stanzaId, tombstone(stored, r).toString());
  }

  /** The room is gone (or a new one takes its name): so is its archive. */
  async drop(roomJid: string): Promise<void> {
    const room = node(roomJid);
    await this.archive.delete(room);
    this.marked.delete(room);
    await this.rooms.set(room, undefined);
  }

  /**
   * At start: delete the archives of marked rooms that are not in `stored` (the localparts of
   * stored persistent rooms) — temporary rooms the last run did not see through. Resolves to the
   * localparts whose archives were deleted.
   */
  async dropOrphans(stored: ReadonlySet<string>): Promise<string[]> {
    const orphans = (await this.rooms.users()).filter((room) => !stored.has(room));
    for (const room of orphans) {
      await this.archive.delete(room);
      await this.rooms.set(room, undefined);
    }
    return orphans;
  }

  /** The last `limit` archived messages, as history entries (the room's history after a restart). */
  async history(roomJid: string, limit: number): Promise<HistoryEntry[]> {
    if (limit <= 0) return [];
    const items = await this.archive.find(node(roomJid), { reverse: true, limit });
    const entries: HistoryEntry[] = [];
    for (const item of items.reverse()) {
      const stored = storedMessage(item);
      // As the live history: no tombstones (no body), no retractions (their fallback body).
      if (!stored || stored.attrs.type !== 'groupchat' || !stored.getChild('body') || stored.getChild('retract', NS_RETRACT)) continue;
      delete stored.attrs.xmlns;
      entries.push({ stanza: addStanzaId(stored, roomJid, item.id), time: item.when, stanzaId: item.id, senderJid: item.with ?? roomJid });
    }
    return entries;
  }

  /**
   * An iq in urn:xmpp:mam:2 to the room. Members-only rooms: owners, admins and members; other
   * rooms: anyone not banned (forbidden otherwise). Filtering by `with` and seeing real JIDs need
   * the right to see them (non-anonymous room, or a moderator in the room).
   */
  answer(iq: Element, room: Room, send: (m: Element) => void): Promise<Element | undefined> {
    const from = iq.attrs.from as string;
    const affiliation = room.affiliationOf(bareOf(from));
    if (affiliation === 'outcast' || (room.config.membersOnly && affiliation === 'none')) {
      throw new StanzaError('auth', 'forbidden', 'Only members may read the archive of this room');
    }
    const seesJids = room.showsJidsTo(from);
    const query = iq.getChild('query', NS_MAM);
    const withField = query?.getChild('x', 'jabber:x:data')?.getChildren('field').find((f) => f.attrs.var === 'with');
    if (withField?.getChildText('value') && !seesJids) throw new StanzaError('auth', 'forbidden', 'Real JIDs of this room are not visible to you');
    return answerMamIq(iq, {
      store: this.archive,
      user: node(room.jid),
      archiveJid: room.jid,
      send,
      render: (item, message) => {
        if (seesJids && item.with) message.c('x', { xmlns: NS_MUC_USER }).c('item', { jid: item.with });
        return message;
      },
    });
  }
}

/** The tombstone of an archived message (`stored`; undefined when its payload was unreadable). */
function tombstone(stored: Element | undefined, r: Retraction): Element {
  const attrs: Record<string, string> = { xmlns: 'jabber:client', type: 'groupchat' };
  for (const a of ['from', 'type', 'id', 'xml:lang']) {
    const v = stored?.attrs[a] as string | undefined;
    if (v !== undefined) attrs[a] = v;
  }
  const m = new Element('message', attrs);
  const author = stored?.getChild('occupant-id', NS_OCCUPANT_ID);
  if (author) m.cnode(new Element('occupant-id', { xmlns: NS_OCCUPANT_ID, id: author.attrs.id as string }));
  const retracted = m.c('retracted', { xmlns: NS_RETRACT, id: r.retractionMessageId ?? r.retractionId, stamp: new Date(r.time).toISOString() });
  if (r.moderated) {
    retracted.c('moderated', { xmlns: NS_MODERATE, by: r.by }).c('occupant-id', { xmlns: NS_OCCUPANT_ID, id: r.occupantId });
    if (r.reason) retracted.c('reason').t(r.reason);
  }
  return m;
}
