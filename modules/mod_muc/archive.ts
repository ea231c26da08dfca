// The room archive (XEP-0313 on a MUC room, doc/mam.md "Glue: the MUC room archive") over the
// shared MAM engine and an archive store, user = the room's localpart. The room engine archives
// every message it gives a stanza-id (the item id is that stanza-id, `with` the sender's real
// JID) before broadcasting it; retractions (XEP-0424/0425) delete the item — the announcement,
// archived itself, says what was there. Queries check access (§5.1.2 of XEP-0045's MAM profile,
// XEP-0313 §5.1.2) and add real JIDs only for requesters who may see them.
//
// A room's archive lives only as long as the room. Temporary rooms are not stored, so a crash
// leaves their archives behind: every room with an archive is therefore marked in a keyval store
// (before its first message is archived), and at start the archives of marked rooms that are
// not stored persistent rooms are deleted (`dropOrphans`). Creating a room drops whatever archive
// its name still has (`drop`), so a new room never shows an earlier room's messages.
import type { Element } from '@xmpp/xml';
import { addStanzaId, answerMamIq, archivedPayload, NS_MAM, split, StanzaError, storedMessage, type ArchiveStore, type KeyValStore } from '../../core/api.ts';
import type { HistoryEntry } from './history.ts';
import { NS_MUC_USER } from './ns.ts';
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
   * XEP-0425 §4 / XEP-0424 §5: the archived message is removed (the store cannot replace an item
   * in place); an author's retraction only removes the author's own message.
   */
  async retract(r: Retraction): Promise<boolean> {
    const [item] = await this.archive.find(node(r.room), { ids: [r.stanzaId] }).catch(() => []);
    if (!item) return false;
    if (!r.moderated && (item.with === undefined || bareOf(item.with) !== r.by)) return false;
    await this.archive.delete(node(r.room), { ids: [r.stanzaId] });
    return true;
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
      if (!stored || stored.attrs.type !== 'groupchat' || !stored.getChild('body')) continue;
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
