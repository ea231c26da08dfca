//% requires_core_features: sessions-v1, stanza-events-v1, events-async, stanza-dispatch-ordered, module-capabilities
// Resource binding (RFC 6120 §7) and the legacy session establishment (RFC 3921 §3),
// advertised as optional (draft-cridland-xmpp-session). Binding is asynchronous (the roster is
// loaded): stanzas the client pipelined behind the bind iq wait for it (the router keeps each
// session's stanzas in order) and are then handled as from the bound resource.
import { defineModule, Element, iqPayload, iqResult, NS, resourceprep, StanzaError, type StanzaEvent } from '../core/api.ts';

export default defineModule({
  description: 'Resource binding (RFC 6120 §7)',
  capabilities: ['sessions'],
  load(module) {
    module.hook('stream-features', ({ origin, features }) => {
      if (origin.type !== 'c2s' || origin.full_jid) return;
      features.c('bind', { xmlns: NS.bind });
      features.c('session', { xmlns: NS.session }).c('optional');
    });

    const bind = async ({ origin, stanza }: StanzaEvent): Promise<true> => {
      const requested = iqPayload(stanza)?.getChildText('resource');
      let resource: string | undefined;
      if (requested) {
        const p = resourceprep(requested);
        if (!p) throw new StanzaError('modify', 'bad-request', 'Invalid resource');
        resource = p;
      }
      const r = await module.privileged.sessions.bind(origin, resource);
      if (!r.ok) throw new StanzaError(r.condition === 'resource-constraint' || r.condition === 'internal-server-error' ? 'wait' : 'cancel', r.condition);
      const fullJid = `${origin.username ?? ''}@${origin.host ?? ''}/${r.resource}`;
      const result = new Element('bind', { xmlns: NS.bind });
      result.c('jid').t(fullJid);
      const reply = iqResult(stanza, result);
      reply.attrs.to = fullJid;
      delete reply.attrs.from;
      origin.send(reply);
      return true;
    };
    module.hook(`iq-set/self/${NS.bind}:bind`, bind);
    module.hook(`iq-set/host/${NS.bind}:bind`, bind);

    const session = ({ origin, stanza }: StanzaEvent) => {
      origin.send(iqResult(stanza));
      return true;
    };
    module.hook(`iq-set/self/${NS.session}:session`, session);
    module.hook(`iq-set/host/${NS.session}:session`, session);
  },
});
