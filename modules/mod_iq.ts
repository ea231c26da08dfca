//% requires_core_features: stanza-events-v1
// iq dispatch (RFC 6120 §8.2.3): get/set requests addressed to the server, an account or
// oneself are dispatched by payload kind — iq-<type>/<dest>/<xmlns>:<name> — so the first
// module (by priority) that claims the payload answers. Unclaimed requests fall back to the
// router, which answers service-unavailable. iq to a full JID is delivered to that resource.
import { defineModule, iqPayload, type StanzaEvent } from '../core/api.ts';

export default defineModule({
  description: 'iq routing and dispatch by payload',
  load(module) {
    const dispatch = (event: StanzaEvent): unknown => {
      const { stanza, destType } = event;
      const type = stanza.attrs.type as string | undefined;
      if (type === 'get' || type === 'set') {
        const payload = iqPayload(stanza);
        if (!payload) {
          module.router.bounce(event.origin, stanza, 'modify', 'bad-request', 'iq get/set needs exactly one payload');
          return true;
        }
        const ns = (payload.attrs.xmlns as string | undefined) ?? 'jabber:client';
        return module.fire(`iq-${type}/${destType}/${ns}:${payload.name}`, event);
      }
      if (type === 'result' || type === 'error') {
        module.fire(`iq-${type}/${destType}/${String(stanza.attrs.id)}`, event);
        return true; // responses nobody waits for are dropped, never answered
      }
      module.router.bounce(event.origin, stanza, 'modify', 'bad-request', 'Invalid iq type');
      return true;
    };
    module.hook('iq/host', dispatch, -10);
    module.hook('iq/bare', dispatch, -10);
    module.hook('iq/self', dispatch, -10);

    module.hook('iq/full', (event) => {
      const { stanza, toNode, toHost, toResource } = event;
      const target = toNode && toResource ? module.sessions.getByFullJid(toHost, toNode, toResource) : undefined;
      if (target) {
        target.send(stanza);
        return true;
      }
      const type = stanza.attrs.type as string | undefined;
      if (type === 'get' || type === 'set') module.router.bounce(event.origin, stanza, 'cancel', 'service-unavailable');
      return true;
    }, -10);
  },
});
