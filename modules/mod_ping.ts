//% requires_core_features: stanza-events-v1
// XMPP Ping (XEP-0199): the server answers pings to itself and on behalf of its accounts.
import { defineModule, iqResult, NS, type StanzaEvent } from '../core/api.ts';

export default defineModule({
  description: 'XMPP Ping (XEP-0199)',
  load(module) {
    module.addFeature(NS.ping);
    const pong = ({ origin, stanza }: StanzaEvent) => {
      origin.send(iqResult(stanza));
      return true;
    };
    module.hook(`iq-get/host/${NS.ping}:ping`, pong);
    module.hook(`iq-get/bare/${NS.ping}:ping`, pong);
    module.hook(`iq-get/self/${NS.ping}:ping`, pong);
  },
});
