//% requires_core_features: stanza-events-v1, events-async
// iq dispatch (RFC 6120 §8.2.3): get/set requests addressed to the server, an account or
// oneself are dispatched by payload kind — iq-<type>/<dest>/<xmlns>:<name> — so the first
// module (by priority) that claims the payload answers. Unclaimed requests fall back to the
// router, which answers service-unavailable. iq to a full JID is delivered to that resource.
// Handlers may be asynchronous and may throw a StanzaError: the router waits and answers.
import { attrsOf, defineModule, iqPayload, StanzaError, type StanzaEvent } from '../core/api.ts';

export default defineModule({
  description: 'iq routing and dispatch by payload',
  load(module) {
    const dispatch = (event: StanzaEvent): unknown => {
      const { stanza, destType } = event;
      const type = stanza.attrs.type;
      if (type === 'get' || type === 'set') {
        const payload = iqPayload(stanza);
        if (!payload) throw new StanzaError('modify', 'bad-request', 'iq get/set needs exactly one payload');
        return module.fire(`iq-${type}/${destType}/${attrsOf(payload).xmlns ?? 'jabber:client'}:${payload.name}`, event);
      }
      if (type === 'result' || type === 'error') {
        // Responses nobody waits for are dropped, never answered.
        return module.fire(`iq-${type}/${destType}/${stanza.attrs.id ?? ''}`, event) ?? true;
      }
      throw new StanzaError('modify', 'bad-request', 'Invalid iq type');
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
      const type = stanza.attrs.type;
      if (type === 'get' || type === 'set') throw new StanzaError('cancel', 'service-unavailable');
      return true;
    }, -10);
  },
});
