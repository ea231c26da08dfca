// Bookmarks (XEP-0402 with XEP-0411 compatibility): the XEP-0402 node urn:xmpp:bookmarks:1 is
// the source of truth; XEP-0048 bookmarks in private XML storage (XEP-0049) and in the PEP node
// storage:bookmarks are views of it, translated both ways:
//  - a private XML get of <storage xmlns='storage:bookmarks'/> is answered from the XEP-0402
//    items (URL bookmarks and unknown elements of the last storage written are kept beside);
//  - a private XML set, or a publish to the legacy PEP node, publishes and retracts XEP-0402 items
//    so the node matches (only changed bookmarks are republished, their <extensions/> kept);
//  - a change of the XEP-0402 node republishes the legacy PEP node when it exists (XEP-0411 §4);
//  - the first time, bookmarks already in private XML storage are moved over (XEP-0411 §5).
// Translations run one at a time per account (module.serial) and publish as the account.
import type { Element } from '@xmpp/xml';
import { iqPayload, parseXml, pubsub, StanzaError, xml, type ModuleApi, type StanzaEvent } from '../../core/api.ts';

const NS_PRIVATE = 'jabber:iq:private';
const PRIVATE_KEY = `{${pubsub.NS_BOOKMARKS_LEGACY}}storage`;

export interface PepContext {
  module: ModuleApi;
  serviceOf(username: string): pubsub.PubSubService;
}

export interface BookmarksSync {
  /** The account changed `node` through a pubsub request (publish, retract, purge, delete). */
  changed(username: string, node: string): Promise<void>;
  /** Before the account's own pubsub request: move private XML bookmarks over, once. */
  migrate(username: string): Promise<void>;
}

const asElement = (text: string): Element | undefined => {
  try {
    return parseXml(text) as Element;
  } catch {
    return undefined;
  }
};

export function bookmarksSync({ module, serviceOf }: PepContext): BookmarksSync {
  const host = module.host;
  const legacyExtra = module.storage.keyval('bookmarks_legacy');
  const privateStore = module.storage.map('private');
  const migrated = new Set<string>();
  const jidOf = (username: string) => `${username}@${host}`;

  /** The XEP-0402 items: ItemID → <conference/>. */
  const current = async (username: string): Promise<Map<string, Element>> => {
    const service = serviceOf(username);
    const out = new Map<string, Element>();
    if (!(await service.nodeConfig(pubsub.NS_BOOKMARKS))) return out;
    for (const item of (await service.items(jidOf(username), pubsub.NS_BOOKMARKS)).items) {
      if (item.payload) out.set(item.id, item.payload);
    }
    return out;
  };

  /** Publish as the account with the node configuration a translation needs (set first when it differs). */
  const publishAs = async (username: string, node: string, id: string, payload: Element, config: Partial<pubsub.NodeConfig>) => {
    const service = serviceOf(username);
    const item = xml('item', { id }, payload);
    const pre = { values: config, fixed: new Map<string, string[]>() };
    try {
      await service.publish(jidOf(username), node, item, pre);
    } catch (err) {
      if (!(err instanceof pubsub.PubSubError) || err.app !== 'precondition-not-met') throw err;
      await service.configureValues(jidOf(username), node, config);
      await service.publish(jidOf(username), node, item, pre);
    }
  };

  const legacyView = async (username: string): Promise<Element> => {
    const previous = await legacyExtra.get<string>(username);
    return pubsub.legacyStorage(pubsub.bookmarksFromItems(await current(username)), typeof previous === 'string' ? asElement(previous) : undefined);
  };

  /** Republish the legacy PEP node from the XEP-0402 node, when someone uses it. */
  const syncLegacyPep = async (username: string): Promise<void> => {
    if (!(await serviceOf(username).nodeConfig(pubsub.NS_BOOKMARKS_LEGACY))) return;
    await publishAs(username, pubsub.NS_BOOKMARKS_LEGACY, pubsub.LEGACY_BOOKMARKS_ITEM, await legacyView(username), pubsub.LEGACY_BOOKMARKS_NODE_CONFIG);
  };

  /** A XEP-0048 <storage/> written the old way: make the XEP-0402 node match it. */
  const applyLegacy = async (username: string, storage: Element, fromLegacyPep: boolean): Promise<void> => {
    const diff = pubsub.diffBookmarks(await current(username), pubsub.readLegacyStorage(storage).bookmarks);
    for (const p of diff.publish) await publishAs(username, pubsub.NS_BOOKMARKS, p.id, p.payload, pubsub.BOOKMARKS_NODE_CONFIG);
    if (diff.retract.length > 0) await serviceOf(username).retract(jidOf(username), pubsub.NS_BOOKMARKS, diff.retract, true);
    await legacyExtra.set(username, storage.toString());
    if (!fromLegacyPep) await syncLegacyPep(username);
  };

  const migrate = (username: string): Promise<void> => {
    if (migrated.has(username)) return Promise.resolve();
    return Promise.resolve(module.serial(username, async () => {
      if (migrated.has(username)) return;
      if (!(await serviceOf(username).nodeConfig(pubsub.NS_BOOKMARKS))) {
        const text = await privateStore.get<string>(username, PRIVATE_KEY);
        const storage = typeof text === 'string' ? asElement(text) : undefined;
        if (storage && storage.getChildElements().length > 0) {
          module.log('moving the private XML bookmarks of %s to PEP (XEP-0411 §5)', username);
          await applyLegacy(username, storage, false);
        }
      }
      migrated.add(username);
    }));
  };

  /** The single <storage xmlns='storage:bookmarks'/> of a private XML query, if that is what it holds. */
  const bookmarksQuery = (stanza: Element): Element | undefined => {
    const children = iqPayload(stanza)?.getChildElements() ?? [];
    const only = children.length === 1 ? children[0] : undefined;
    return only?.name === 'storage' && only.attrs.xmlns === pubsub.NS_BOOKMARKS_LEGACY ? only : undefined;
  };

  module.hook(`iq-get/self/${NS_PRIVATE}:query`, async ({ origin, stanza, toNode }: StanzaEvent) => {
    if (!toNode || !bookmarksQuery(stanza)) return undefined;
    await migrate(toNode);
    const view = await module.serial(toNode, () => legacyView(toNode));
    origin.send(module.iqResult(stanza, xml('query', { xmlns: NS_PRIVATE }, view)));
    return true;
  }, 10);

  module.hook(`iq-set/self/${NS_PRIVATE}:query`, async ({ origin, stanza, toNode }: StanzaEvent) => {
    const storage = bookmarksQuery(stanza);
    if (!toNode || !storage) return undefined;
    await migrate(toNode);
    try {
      await module.serial(toNode, () => applyLegacy(toNode, storage, false));
    } catch (err) {
      if (err instanceof StanzaError) throw new StanzaError('wait', 'internal-server-error', `The bookmarks could not be stored: ${err.text ?? err.condition}`);
      throw err;
    }
    origin.send(module.iqResult(stanza));
    return true;
  }, 10);

  return {
    migrate,
    async changed(username, node) {
      if (node === pubsub.NS_BOOKMARKS) {
        await module.serial(username, () => syncLegacyPep(username));
      } else if (node === pubsub.NS_BOOKMARKS_LEGACY) {
        await module.serial(username, async () => {
          const service = serviceOf(username);
          if (!(await service.nodeConfig(node))) return;
          const [item] = (await service.items(jidOf(username), node, { ids: [pubsub.LEGACY_BOOKMARKS_ITEM] }).catch(() => ({ items: [] }))).items;
          if (item?.payload?.name === 'storage') await applyLegacy(username, item.payload, true);
        });
      }
    },
  };
}
