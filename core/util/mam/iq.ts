// One entry point for the iqs an archive answers in urn:xmpp:mam:2: queries and their form
// (XEP-0313), metadata (XEP-0313 §5), preferences (XEP-0441).
import type { Element } from '@xmpp/xml';
import type { MamArchive } from './archive.ts';
import { StanzaError } from '../errors.ts';
import { type ArchivePrefs, parsePrefs, prefsElement } from './prefs.ts';
import {
  type MamOptions, type ResultAddressing, finElement, metadataElement, NS_MAM, parseQuery, queryFormElement, resultMessage, runQuery,
} from './query.ts';

export interface MamIqContext {
  store: MamArchive;
  /** The archive's owner in the store (a user's node, a room's node). */
  user: string | null;
  /** The archive's JID: the 'from' of result messages (the user's bare JID, the room's JID). */
  archiveJid: string;
  /** Sends one result message; each is awaited, in order, before the iq result is returned. */
  send: (message: Element) => void | Promise<void>;
  render?: ResultAddressing['render'];
  /**
   * Preferences storage (XEP-0441). Without it, <prefs/> gets feature-not-implemented, which
   * §2.1 names for a server that does not offer preferences (a room archive has none).
   */
  prefs?: {
    get(): Promise<ArchivePrefs>;
    /** Stores and resolves to what applies (XEP-0441 §2.1: may differ from what was asked). */
    set(prefs: ArchivePrefs): Promise<ArchivePrefs>;
  };
}

/**
 * Answers a MAM iq addressed to an archive the requester may read (access control is the
 * caller's: §8.1 forbidden for others). Resolves to the payload of the iq result (or undefined
 * for an empty result); rejects with a StanzaError for the error reply.
 *  - get <query/>: the query form (§4.1.5);
 *  - set <query/>: the page's result messages through `ctx.send`, then <fin/>;
 *  - get <metadata/>: first and last item (§5);
 *  - get/set <prefs/>: XEP-0441 through `ctx.prefs`.
 */
export async function answerMamIq(iq: Element, ctx: MamIqContext, opts: MamOptions = {}): Promise<Element | undefined> {
  const type = iq.attrs.type as string | undefined;
  const payload = iq.children.find((c): c is Element => typeof c !== 'string');
  if (!payload || payload.attrs.xmlns !== NS_MAM || (type !== 'get' && type !== 'set')) {
    throw new StanzaError('cancel', 'service-unavailable', `Not a request in ${NS_MAM}`);
  }
  switch (`${type} ${payload.name}`) {
    case 'get query':
      return queryFormElement(opts);
    case 'get metadata':
      return metadataElement(ctx.store, ctx.user);
    case 'get prefs':
    case 'set prefs': {
      if (!ctx.prefs) throw new StanzaError('cancel', 'feature-not-implemented', 'This archive has no preferences');
      const applied = type === 'get' ? await ctx.prefs.get() : await ctx.prefs.set(parsePrefs(payload));
      return prefsElement(applied);
    }
    case 'set query': {
      const to = iq.attrs.from as string | undefined;
      if (to === undefined) throw new StanzaError('modify', 'bad-request', 'A MAM query needs a from address to send results to');
      const q = parseQuery(payload, opts);
      const page = await runQuery(ctx.store, ctx.user, q, opts);
      const order = page.flip ? [...page.items].reverse() : page.items;
      for (const item of order) {
        await ctx.send(resultMessage(item, {
          to,
          from: ctx.archiveJid,
          ...(q.queryId !== undefined ? { queryId: q.queryId } : {}),
          ...(ctx.render ? { render: ctx.render } : {}),
        }));
      }
      return finElement(page);
    }
    default:
      throw new StanzaError('cancel', 'service-unavailable', `<${payload.name}/> in an iq of type ${type} is not a MAM request`);
  }
}
