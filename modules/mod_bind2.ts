//% requires_core_features: sessions-v1, stanza-events-v1, module-capabilities
// Bind 2 (XEP-0386): resource binding inside the SASL2 <authenticate/> (mod_sasl2), in the same
// round trip. The resource is `<tag>/<id>`, where the id is derived from the account, the tag and
// the SASL2 user-agent id with a per-host secret: the same client installation gets the same
// resource on every reconnect (its earlier session is replaced), another client another one, and
// the user-agent id itself never shows. Other modules negotiate their session features inline
// (stream management, carbons, CSI): they list themselves through `bind2-inline-features` and
// handle their child of <bind/> through `bind2-inline/<ns>:<name>`, adding results to <bound/>.
import { createHmac, randomBytes } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { defineModule, resourceprep, type Bind2InlineEvent, type Bind2InlineFeaturesEvent, type Session } from '../core/api.ts';

const NS_BIND2 = 'urn:xmpp:bind:0';

/** Longest client tag kept in a resource (XEP-0386: "a short text string"). */
const MAX_TAG_LENGTH = 32;

export default defineModule({
  description: 'Bind 2 (XEP-0386): resource binding inside SASL2 authentication',
  capabilities: ['sessions'],
  async load(module) {
    // The per-host secret the stable resource ids are derived from; durable, so resources survive restarts.
    const secrets = module.storage.keyval();
    let stored = await secrets.get<{ secret: string }>(null);
    if (!stored) {
      stored = { secret: randomBytes(32).toString('base64') };
      await secrets.set(null, stored);
    }
    const secret = Buffer.from(stored.secret, 'base64');
    /** The user-agent id each Bind2 session was bound for. */
    const clientOf = new WeakMap<Session, string>();

    module.hook('sasl2-inline-features', ({ origin, inline }) => {
      const bind = inline.c('bind', { xmlns: NS_BIND2 });
      const features = new Element('inline');
      module.emit('bind2-inline-features', { origin, inline: features } satisfies Bind2InlineFeaturesEvent);
      if (features.children.length) bind.cnode(features);
    });

    module.hook('sasl2-success', async ({ session, request, userAgent, success }) => {
      const bind = request.getChild('bind', NS_BIND2);
      if (!bind) return undefined;
      const username = session.username;
      if (username === undefined) return undefined;
      const tag = clientTag(bind.getChildText('tag'));
      const uaid = userAgent?.id;
      // Stable only when the client names its installation; otherwise a fresh id each time.
      const id = uaid
        ? createHmac('sha256', secret).update(`${username}\0${uaid}\0${tag ?? ''}`).digest('base64url').slice(0, 12)
        : randomBytes(9).toString('base64url');
      const resource = tag ? `${tag}/${id}` : id;

      // XEP-0386 §3.2: earlier sessions of the same client end (the one on the same resource is
      // replaced by the resourceConflict policy in bind, kick_old by default).
      if (uaid) {
        for (const other of module.sessions.sessionsOf(module.host, username)) {
          if (clientOf.get(other) === uaid && other.resource !== resource) {
            other.close({ condition: 'conflict', text: 'Replaced by a new session of the same client' });
          }
        }
      }
      let r = await module.privileged.sessions.bind(session, resource);
      if (!r.ok && r.condition === 'conflict') {
        // resourceConflict is kick_new and the old session stays: this one gets another resource.
        r = await module.privileged.sessions.bind(session, `${tag ? `${tag}/` : ''}${randomBytes(9).toString('base64url')}`);
      }
      if (!r.ok) {
        // The client is authenticated but unbound; it may still bind with the RFC 6120 iq.
        module.log.warn('Bind2 for %s@%s failed: %s', username, module.host, r.condition);
        return undefined;
      }
      if (uaid) clientOf.set(session, uaid);
      const bound = new Element('bound', { xmlns: NS_BIND2 });
      for (const child of bind.getChildElements()) {
        if (child.name === 'tag' && child.attrs.xmlns === undefined) continue;
        const ns = child.getNS();
        const event: Bind2InlineEvent = { session, element: child, bound };
        const handled = await module.fireAsync(`bind2-inline/${ns}:${child.name}`, event);
        if (handled === undefined) module.log('%s: no module enables <%s xmlns=%s/> inline', session.id, child.name, ns);
      }
      success.cnode(bound);
      return undefined;
    }, 50);
  },
});

/** The client's <tag/> as a resource part, or undefined when absent or unusable. */
function clientTag(text: string | null): string | undefined {
  const t = text?.trim();
  if (!t) return undefined;
  const p = resourceprep(t.replace(/\//g, '-'));
  return p && p.length <= MAX_TAG_LENGTH ? p : undefined;
}
