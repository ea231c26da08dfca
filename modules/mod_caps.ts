//% requires_core_features: stanza-events-v1, module-options-typed
// Entity Capabilities (XEP-0115) of the server: its stream features carry
//   <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='…' ver='…'/>
// (§6.3, "Stream Feature"), where `ver` is the verification string of §5.1 computed from the
// host's disco#info — the identities, features and XEP-0128 forms modules registered (items
// 'identity', 'feature', 'extension'). A disco#info query to the domain with node 'node#ver'
// answers the same information (mod_disco fires `disco-info-node/<node>` for it); an outdated
// ver gets item-not-found. `ver` is recomputed lazily whenever an item is added or removed.
//
// Other entities' capabilities (§6.3, for mod_pep's "+notify" filtering, XEP-0163 §4): for every
// available presence a local account receives (its own resources' included), the entity's <c/>
// is resolved to its features — from the cache by verification string, else by a disco#info query
// to `node#ver` sent from the account's bare JID — and `entity-caps` is fired on the host. A SHA-1
// ver whose answer verifies (§5.4) is cached in the 'caps' keyval store, so a restart does not ask
// again; answers that do not verify (or legacy caps without 'hash') serve that JID only. An entity
// that does not answer within `resolveTimeout` counts as having no features.
import { createHash } from 'node:crypto';
import type { Element } from '@xmpp/xml';
import { attrsOf, bare, defineModule, iqPayload, isBound, NS, xml, type EntityCapsEvent, type ModuleApi, type Session, type StanzaEvent } from '../core/api.ts';

export const NS_CAPS = 'http://jabber.org/protocol/caps';

export interface CapsIdentity {
  category: string;
  type: string;
  lang?: string;
  name?: string;
}

/** "i;octet" collation (RFC 4790 §9.3): compare the UTF-8 bytes. */
export function octetCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}


/** A form's FORM_TYPE value, when the form has a hidden FORM_TYPE field (§5.4 step 3.6). */
export function formType(form: Element): string | undefined {
  const field = form.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE');
  if (!field || field.attrs.type !== 'hidden') return undefined;
  return field.getChildren('value')[0]?.text();
}

/**
 * The verification string S of XEP-0115 §5.1 (before hashing). Duplicate identities and
 * features are counted once; forms without a hidden FORM_TYPE are left out (a processing entity
 * ignores them, §5.4).
 */
export function verificationString(identities: CapsIdentity[], features: string[], forms: Element[]): string {
  let s = '';
  const ids = [...new Set(identities.map((i) => `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`))];
  ids.sort(octetCompare);
  for (const id of ids) s += `${id}<`;
  const feats = [...new Set(features)].sort(octetCompare);
  for (const f of feats) s += `${f}<`;
  const typed = forms.map((form) => ({ form, type: formType(form) })).filter((f): f is { form: Element; type: string } => f.type !== undefined);
  typed.sort((a, b) => octetCompare(a.type, b.type));
  for (const { form, type } of typed) {
    s += `${type}<`;
    const fields = form.getChildren('field').filter((f) => f.attrs.var !== 'FORM_TYPE' && typeof f.attrs.var === 'string');
    fields.sort((a, b) => octetCompare(attrsOf(a).var ?? '', attrsOf(b).var ?? ''));
    for (const field of fields) {
      s += `${attrsOf(field).var ?? ''}<`;
      const values = field.getChildren('value').map((v) => v.text()).sort(octetCompare);
      for (const v of values) s += `${v}<`;
    }
  }
  return s;
}

/** The SHA-1 verification string ('ver'), Base64 (§5.1 step 9). */
export function capsVer(identities: CapsIdentity[], features: string[], forms: Element[]): string {
  return createHash('sha1').update(verificationString(identities, features, forms), 'utf8').digest('base64');
}

const options = {
  node: {
    type: 'string',
    description: "The caps 'node': a URI naming the server software",
    default: 'https://cadence.invalid/caps',
  },
  resolveTimeout: {
    type: 'integer',
    description: "Milliseconds to wait for an entity's disco#info answer when resolving its caps",
    default: 10_000,
    min: 100,
  },
} as const;

export default defineModule({
  description: 'Entity Capabilities (XEP-0115) of the server and of the entities local accounts hear from',
  options,
  load(module) {
    const node = module.option('node');
    module.addFeature(NS_CAPS);

    let current: string | undefined;
    const invalidate = () => {
      current = undefined;
    };
    for (const key of ['identity', 'feature', 'extension']) {
      module.hook(`item-added/${key}`, invalidate);
      module.hook(`item-removed/${key}`, invalidate);
    }

    /** The host's disco#info, as mod_disco answers it. */
    const info = () => ({
      identities: module.getItems<CapsIdentity>('identity'),
      features: [...new Set(module.getItems<string>('feature'))],
      forms: module.getItems<Element>('extension'),
    });

    const hooked = new Set<string>();
    const ver = (): string => {
      if (current !== undefined) return current;
      const { identities, features, forms } = info();
      const v = capsVer(identities, features, forms);
      current = v;
      if (!hooked.has(v)) {
        hooked.add(v);
        module.hook(`disco-info-node/${node}#${v}`, ({ query }) => {
          if (ver() !== v) return undefined; // outdated: item-not-found
          const now = info();
          const seen = new Set<string>();
          for (const i of now.identities) {
            const key = `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`;
            if (seen.has(key)) continue;
            seen.add(key);
            const attrs: Record<string, string> = { category: i.category, type: i.type };
            if (i.name) attrs.name = i.name;
            if (i.lang) attrs['xml:lang'] = i.lang;
            query.c('identity', attrs);
          }
          for (const f of now.features) query.c('feature', { var: f });
          for (const form of now.forms) query.cnode(form);
          return true;
        });
      }
      return v;
    };

    module.hook('stream-features', ({ features }) => {
      features.c('c', { xmlns: NS_CAPS, hash: 'sha-1', node, ver: ver() });
    });

    trackEntityCaps(module);
  },
});

/** Caps an entity advertised in its presence. */
interface Advertised {
  node: string;
  ver: string;
  hash: string | undefined;
}

function advertisedCaps(presence: Element): Advertised | undefined {
  const c = presence.getChild('c', NS_CAPS);
  const a = c ? attrsOf(c) : undefined;
  if (!a?.node || !a.ver) return undefined;
  return { node: a.node, ver: a.ver, hash: a.hash };
}


/** Resolve and announce the capabilities of entities whose presence local accounts receive. */
function trackEntityCaps(module: ModuleApi<typeof options>): void {
  const host = module.host;
  const verified = module.storage.keyval('caps');
  const verifiedMemo = new Map<string, readonly string[]>();
  /** owner bare JID → entity full JID → the caps key it advertised ('' without caps). */
  const seen = new Map<string, Map<string, string>>();
  /** Answers that did not verify, per entity full JID and caps key. */
  const unverified = new Map<string, readonly string[]>();
  const resolving = new Map<string, Promise<readonly string[]>>();
  const pending = new Map<string, (answer: Element | undefined) => void>();
  let counter = 0;

  const query = (from: string, to: string, capsNode: string): Promise<Element | undefined> => {
    const id = `caps-${Date.now().toString(36)}-${(counter++).toString(36)}`;
    return new Promise((resolve) => {
      const timer = module.setTimeout(() => {
        pending.delete(id);
        resolve(undefined);
      }, module.option('resolveTimeout'));
      pending.set(id, (answer) => {
        module.clearTimer(timer);
        pending.delete(id);
        resolve(answer);
      });
      module.send(xml('iq', { type: 'get', id, from, to }, xml('query', { xmlns: NS.discoInfo, node: capsNode })));
    });
  };
  // Answers come back to the account's bare JID, which mod_iq would drop: take ours first.
  const answered = ({ stanza }: StanzaEvent): true | undefined => {
    const id = stanza.attrs.id;
    if ((stanza.attrs.type !== 'result' && stanza.attrs.type !== 'error') || typeof id !== 'string') return undefined;
    const done = pending.get(id);
    if (!done) return undefined;
    done(stanza.attrs.type === 'result' ? iqPayload(stanza) : undefined);
    return true;
  };
  // (An answer from one of the account's own resources is addressed to 'self'.)
  module.hook('iq/bare', answered, 10);
  module.hook('iq/self', answered, 10);

  const resolve = async (owner: string, jid: string, caps: Advertised): Promise<readonly string[]> => {
    const key = `${caps.hash ?? ''} ${caps.ver}`;
    const sha1 = caps.hash === 'sha-1';
    if (sha1) {
      const known = verifiedMemo.get(caps.ver);
      if (known) return known;
      const cached = await verified.get<string[]>(caps.ver);
      if (Array.isArray(cached)) {
        verifiedMemo.set(caps.ver, cached);
        return cached;
      }
    }
    const own = unverified.get(`${jid} ${key}`);
    if (own) return own;
    const flight = `${sha1 ? '' : jid} ${key}`;
    let p = resolving.get(flight);
    if (!p) {
      p = (async () => {
        const answer = await query(owner, jid, `${caps.node}#${caps.ver}`);
        if (!answer) return [];
        const identities = answer.getChildren('identity').map((i) => {
          const a = attrsOf(i);
          return { category: a.category ?? '', type: a.type ?? '', lang: a['xml:lang'], name: a.name };
        });
        const features = answer.getChildren('feature').map((f) => attrsOf(f).var).filter((f): f is string => typeof f === 'string');
        const forms = answer.getChildren('x', 'jabber:x:data');
        if (sha1 && capsVer(identities, features, forms) === caps.ver) {
          // Announced at once; the cache only spares a later query (after a restart too).
          verifiedMemo.set(caps.ver, features);
          verified.set(caps.ver, features).catch((err: unknown) => module.log.error('caching the caps %s: %s', caps.ver, err));
        } else {
          if (sha1) module.log('caps of %s do not verify (ver %s); used for that entity only', jid, caps.ver);
          unverified.set(`${jid} ${key}`, features);
        }
        return features;
      })().finally(() => resolving.delete(flight));
      resolving.set(flight, p);
    }
    return p;
  };

  const forget = (jid: string): void => {
    for (const k of unverified.keys()) if (k.startsWith(`${jid} `)) unverified.delete(k);
  };

  /** The entity `jid` sent `presence` (available or not) that the account `owner` receives. */
  const observe = (owner: string, jid: string, presence: Element): void => {
    const type = presence.attrs.type;
    if (type !== undefined && type !== 'unavailable') return;
    let entities = seen.get(owner);
    if (type === 'unavailable') {
      if (!entities?.delete(jid)) return;
      if (entities.size === 0) seen.delete(owner);
      forget(jid);
      module.emit('entity-caps', { owner, jid, features: undefined, initial: false } satisfies EntityCapsEvent);
      return;
    }
    const caps = advertisedCaps(presence);
    const key = caps ? `${caps.hash ?? ''} ${caps.node} ${caps.ver}` : '';
    const before = entities?.get(jid);
    if (before === key) return; // nothing new
    if (!entities) seen.set(owner, (entities = new Map()));
    entities.set(jid, key);
    const initial = before === undefined;
    const announce = (features: readonly string[]) => {
      if (seen.get(owner)?.get(jid) !== key) return; // changed or gone meanwhile
      module.log('%s hears %s: %d features%s', owner, jid, features.length, initial ? ' (initial)' : '');
      module.emit('entity-caps', { owner, jid, features, initial } satisfies EntityCapsEvent);
    };
    if (!caps) return announce([]);
    resolve(owner, jid, caps).then(announce, (err: unknown) => {
      module.log.error('resolving the caps of %s failed: %s', jid, err);
      announce([]);
    });
  };

  // Contacts' (and directed) presence to a local account; its own resources are seen below.
  const inbound = ({ stanza, toNode }: StanzaEvent): undefined => {
    const from = stanza.attrs.from;
    if (!toNode || typeof from !== 'string' || !from.includes('/')) return undefined;
    const owner = `${toNode}@${host}`;
    if (bare(from) === owner) return undefined;
    observe(owner, from, stanza);
    return undefined;
  };
  module.hook('presence/bare', inbound, 5);
  module.hook('presence/full', inbound, 5);

  const ownerOf = (session: Session): string | undefined => (isBound(session) ? `${session.username}@${host}` : undefined);
  module.hook('resource-available', ({ session }) => {
    const owner = ownerOf(session);
    if (owner && isBound(session) && session.presence) observe(owner, session.full_jid, session.presence);
  });
  module.hook('resource-unbind', ({ session }) => {
    const owner = ownerOf(session);
    if (owner && isBound(session)) observe(owner, session.full_jid, xml('presence', { type: 'unavailable' }));
  });
  module.hook('pre-presence/bare', ({ origin, stanza, to }) => {
    // An own resource's unavailable broadcast (it stays bound).
    const owner = ownerOf(origin);
    if (owner && isBound(origin) && to === undefined && stanza.attrs.type === 'unavailable') observe(owner, origin.full_jid, stanza);
    return undefined;
  }, 5);
}
