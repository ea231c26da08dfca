//% requires_core_features: stanza-events-v1, module-options-typed
// Entity Capabilities (XEP-0115) of the server: its stream features carry
//   <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='…' ver='…'/>
// (§6.3, "Stream Feature"), where `ver` is the verification string of §5.1 computed from the
// host's disco#info — the identities, features and XEP-0128 forms modules registered (items
// 'identity', 'feature', 'extension'). A disco#info query to the domain with node 'node#ver'
// answers the same information (mod_disco fires `disco-info-node/<node>` for it); an outdated
// ver gets item-not-found. `ver` is recomputed lazily whenever an item is added or removed.
import { createHash } from 'node:crypto';
import type { Element } from '@xmpp/xml';
import { attrsOf, defineModule } from '../core/api.ts';

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

export default defineModule({
  description: 'Entity Capabilities (XEP-0115) of the server',
  options: {
    node: {
      type: 'string',
      description: "The caps 'node': a URI naming the server software",
      default: 'https://cadence.invalid/caps',
    },
  },
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
  },
});
