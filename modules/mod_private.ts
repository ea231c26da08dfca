//% requires_core_features: stanza-events-v1, storage-map, user-deleted-event, events-async
// Private XML Storage (XEP-0049): a user keeps arbitrary XML on the server, one fragment per
// (element name, namespace), readable and writable only by the user's own resources.
//
// Rules (XEP-0049 §2.3 and §3):
//  - only to oneself (no 'to' or one's bare JID); to another account or the domain: forbidden;
//  - a get without a child element: bad-request ("Bad Format"); a set without one:
//    not-acceptable (the query "MUST" hold at least one child with a proper namespace);
//  - a get names exactly one fragment ("MUST NOT query for more than one namespace"): more is
//    bad-request;
//  - every child must be qualified by a namespace of its own: no namespace of its own (it would
//    inherit jabber:iq:private), or a stream content namespace (jabber:client, …) or
//    jabber:iq:private itself, is not-acceptable. The OPTIONAL blanket refusal of 'jabber:*' and
//    'http://jabber.org/*' namespaces is not applied: legitimate private data uses them.
//  - a set may carry several fragments; they are stored atomically (all or nothing), durably,
//    before the result. Setting an empty element deletes the fragment (a get then returns the
//    same empty element, so clients see no difference).
//  - a get of a fragment never stored returns the requested (empty) element.
// Storage: the 'private' map store, key `{namespace}name` per user.
import type { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { attrsOf, defineModule, iqPayload, parseXml, StanzaError, xml, type Json } from '../core/api.ts';

export const NS_PRIVATE = 'jabber:iq:private';

/** Namespaces a private fragment may not use (XEP-0049 §2.3: the root needs its own namespace). */
const RESERVED = new Set([NS_PRIVATE, 'jabber:client', 'jabber:server', 'jabber:component:accept', 'http://etherx.jabber.org/streams']);

const options = {
  maxElements: {
    type: 'integer',
    description: 'Most fragments one user may store (a set beyond it is answered policy-violation)',
    default: 256,
    min: 1,
  },
} as const;


function keyOf(el: Element): string {
  return `{${attrsOf(el).xmlns ?? ''}}${el.name}`;
}

/** The problem with a fragment's namespace, or undefined when it is acceptable. */
function namespaceProblem(el: Element): string | undefined {
  const ns = attrsOf(el).xmlns;
  if (ns === undefined || ns === '') return `<${el.name}/> has no namespace of its own`;
  if (RESERVED.has(ns)) return `The namespace ${ns} cannot be used for private data`;
  return undefined;
}

function isEmpty(el: Element): boolean {
  return el.getChildElements().length === 0 && el.text().trim() === '' && Object.keys(el.attrs).every((a) => a === 'xmlns');
}

export default defineModule({
  description: 'Private XML Storage (XEP-0049)',
  options,
  load(module) {
    module.addFeature(NS_PRIVATE);
    const store = module.storage.map('private');

    module.hook(`iq-get/self/${NS_PRIVATE}:query`, async ({ origin, stanza, toNode }) => {
      const children = iqPayload(stanza)!.getChildElements();
      if (children.length === 0 || !toNode) throw new StanzaError('modify', 'bad-request', 'Name the private data to retrieve');
      if (children.length > 1) throw new StanzaError('modify', 'bad-request', 'Retrieve one private element at a time');
      const wanted = children[0]!;
      const problem = namespaceProblem(wanted);
      if (problem) throw new StanzaError('modify', 'not-acceptable', problem);
      const text = await store.get<string>(toNode, keyOf(wanted));
      let fragment: Element = xml(wanted.name, { xmlns: attrsOf(wanted).xmlns });
      if (typeof text === 'string') {
        try {
          fragment = parseXml(text) as Element;
        } catch (err) {
          module.log.error('stored private data %s of %s is unreadable: %s', keyOf(wanted), toNode, err);
        }
      }
      origin.send(module.iqResult(stanza, xml('query', { xmlns: NS_PRIVATE }, fragment)));
      return true;
    });

    module.hook(`iq-set/self/${NS_PRIVATE}:query`, async ({ origin, stanza, toNode }) => {
      const children = iqPayload(stanza)!.getChildElements();
      if (children.length === 0 || !toNode) throw new StanzaError('modify', 'not-acceptable', 'The query holds no private data');
      const values: Record<string, Json | undefined> = {};
      for (const child of children) {
        const problem = namespaceProblem(child);
        if (problem) throw new StanzaError('modify', 'not-acceptable', problem);
        // The stored fragment is self-contained: its namespace is on its root.
        const copy = clone(child) as unknown as Element;
        values[keyOf(child)] = isEmpty(child) ? undefined : copy.toString();
      }
      const existing = await store.getAll<Json>(toNode);
      const after = new Set(existing.keys());
      for (const [k, v] of Object.entries(values)) {
        if (v === undefined) after.delete(k);
        else after.add(k);
      }
      const max = module.option('maxElements');
      if (after.size > max && after.size > existing.size) throw new StanzaError('modify', 'policy-violation', `At most ${max} private elements may be stored`);
      await store.setKeys(toNode, values);
      origin.send(module.iqResult(stanza));
      return true;
    });

    // XEP-0049 §2.3: another user's private data is forbidden (preferred over service-unavailable).
    const forbidden = (): never => {
      throw new StanzaError('auth', 'forbidden', "You cannot access another entity's private data");
    };
    for (const type of ['get', 'set'] as const) {
      module.hook(`iq-${type}/bare/${NS_PRIVATE}:query`, forbidden);
      module.hook(`iq-${type}/host/${NS_PRIVATE}:query`, forbidden);
    }

    module.hook('user-deleted', async ({ host, username }) => {
      if (host === module.host) await store.clear(username);
      return undefined;
    });
  },
});
