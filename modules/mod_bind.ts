//% requires_core_features: sessions-v1, stanza-events-v1
// Resource binding (RFC 6120 §7) and the legacy session establishment (RFC 3921 §3),
// advertised as optional (draft-cridland-xmpp-session).
import { Element } from '@xmpp/xml';
import { defineModule, iqPayload, iqResult, NS, resourceprep, type StanzaEvent } from '../core/api.ts';

export default defineModule({
  description: 'Resource binding (RFC 6120 §7)',
  load(module) {
    module.hook('stream-features', ({ origin, features }) => {
      if (origin.type !== 'c2s' || origin.full_jid) return;
      features.c('bind', { xmlns: NS.bind });
      features.c('session', { xmlns: NS.session }).c('optional');
    });

    const bind = (event: StanzaEvent) => {
      const { origin, stanza } = event;
      const requested = iqPayload(stanza)?.getChildText('resource');
      let resource: string | undefined;
      if (requested) {
        const p = resourceprep(requested);
        if (!p) {
          module.router.bounce(origin, stanza, 'modify', 'bad-request', 'Invalid resource');
          return true;
        }
        resource = p;
      }
      module.sessions.bind(origin, resource).then((r) => {
        if (!r.ok) {
          const type = r.condition === 'conflict' ? 'cancel' : r.condition === 'resource-constraint' ? 'wait' : 'cancel';
          module.router.bounce(origin, stanza, type, r.condition);
          return;
        }
        const result = new Element('bind', { xmlns: NS.bind });
        result.c('jid').t(origin.full_jid!);
        const reply = iqResult(stanza, result);
        reply.attrs.to = origin.full_jid;
        delete reply.attrs.from;
        origin.send(reply);
      }, (err: unknown) => {
        module.log.error('bind failed: %s', err);
        module.router.bounce(origin, stanza, 'wait', 'internal-server-error');
      });
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
