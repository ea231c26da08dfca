//% requires_core_features: stanza-events-v1
// External Service Discovery (XEP-0215): STUN/TURN servers from the config (option
// `external_services: { services: [{ type, host, port, transport, secret | username+password,
// ttl, name }] }`), answered to the host's own users with time-limited TURN credentials computed
// from the shared secret (the TURN REST API scheme coturn's use-auth-secret checks), so calls
// between clients can use the operator's TURN server. Secrets and credentials are never logged.
import { bare, defineModule, split, type StanzaEvent } from '../../core/api.ts';
import { checkServices, credentialsElement, NS_EXTDISCO, servicesElement, type ExternalService } from './services.ts';

const OPTIONS = {
  services: { type: 'object[]', description: 'STUN/TURN services: { type, host, port?, transport?, name?, secret? | username?+password?, ttl? }', default: [] },
} as const;

export default defineModule({
  description: 'External Service Discovery (XEP-0215): STUN/TURN with TURN REST credentials',
  options: OPTIONS,
  load(module) {
    const services = module.option('services') as unknown as ExternalService[];
    const problems = checkServices(services);
    if (problems.length) throw new Error(`external_services.services: ${problems.join('; ')}`);
    module.addFeature(NS_EXTDISCO);

    /** The requester's bare JID, when it is one of this host's users (others are refused). */
    const requester = ({ origin, stanza }: StanzaEvent): string => {
      const from = bare(String(stanza.attrs.from ?? ''));
      if (origin.type !== 'c2s' || !from || split(from).host !== module.host) {
        throw module.stanzaError('auth', 'forbidden', 'Only users of this server may discover its services');
      }
      return from;
    };

    module.hook(`iq-get/host/${NS_EXTDISCO}:services`, (event) => {
      const who = requester(event);
      const type = event.stanza.getChild('services', NS_EXTDISCO)?.attrs.type as string | undefined;
      event.origin.send(module.iqResult(event.stanza, servicesElement(services, who, Date.now(), type)));
      return true;
    });
    module.hook(`iq-get/host/${NS_EXTDISCO}:credentials`, (event) => {
      const who = requester(event);
      const answer = credentialsElement(services, event.stanza.getChild('credentials', NS_EXTDISCO)!, who, Date.now());
      if (!answer) throw module.stanzaError('cancel', 'item-not-found', 'No such restricted service');
      event.origin.send(module.iqResult(event.stanza, answer));
      return true;
    });
  },
});
