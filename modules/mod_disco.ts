//% requires_core_features: stanza-events-v1, events-async
// Service Discovery (XEP-0030): the server's identity and the features every loaded module
// adds with module.addFeature(); items are the components (subdomains) of the host. Accounts
// answer disco#info with the account/registered identity.
import { Element } from '@xmpp/xml';
import { attrsOf, defineModule, iqPayload, iqResult, NS, StanzaError, type StanzaEvent } from '../core/api.ts';

export interface Identity {
  category: string;
  type: string;
  name?: string;
}

export default defineModule({
  description: 'Service Discovery (XEP-0030)',
  options: {
    name: { type: 'string', description: 'Name in the server identity', default: 'Cadence' },
    items: { type: 'object', description: 'Extra disco#items: { jid: name }', default: {} },
  },
  load(module) {
    module.addFeature(NS.discoInfo);
    module.addFeature(NS.discoItems);
    module.addIdentity('server', 'im', module.option('name'));

    module.hook(`iq-get/host/${NS.discoInfo}:query`, ({ origin, stanza }) => {
      const node = attrsOf(iqPayload(stanza)).node;
      const query = new Element('query', node ? { xmlns: NS.discoInfo, node } : { xmlns: NS.discoInfo });
      const answer = (handled: unknown): true => {
        if (handled === undefined) throw new StanzaError('cancel', 'item-not-found');
        origin.send(iqResult(stanza, query));
        return true;
      };
      if (node) {
        // A node is answered by the module that owns it (mod_caps: node#ver), possibly asynchronously.
        const handled = module.fire(`disco-info-node/${node}`, { origin, stanza, query });
        return handled instanceof Promise ? handled.then(answer) : answer(handled);
      }
      addIdentities(query, module.getItems<Identity>('identity'));
      for (const f of new Set(module.getItems<string>('feature'))) query.c('feature', { var: f });
      for (const ext of module.getItems<Element>('extension')) query.cnode(ext);
      return answer(true);
    });

    module.hook(`iq-get/host/${NS.discoItems}:query`, ({ origin, stanza }) => {
      if (attrsOf(iqPayload(stanza)).node) throw new StanzaError('cancel', 'item-not-found');
      const query = new Element('query', { xmlns: NS.discoItems });
      for (const name of module.hosts.names()) {
        if (name.endsWith(`.${module.host}`)) query.c('item', { jid: name });
      }
      for (const [jid, name] of Object.entries(module.option('items'))) query.c('item', { jid, name: String(name) });
      origin.send(iqResult(stanza, query));
      return true;
    });

    // An account answers for itself (XEP-0030 §… accounts: category account, type registered).
    const accountInfo = async ({ origin, stanza, toNode }: StanzaEvent) => {
      if (!(await module.users.exists(module.host, toNode ?? ''))) throw new StanzaError('cancel', 'service-unavailable');
      const query = new Element('query', { xmlns: NS.discoInfo });
      addIdentities(query, [{ category: 'account', type: 'registered' }, ...module.getItems<Identity>('account-identity')]);
      for (const f of new Set(module.getItems<string>('account-feature'))) query.c('feature', { var: f });
      origin.send(iqResult(stanza, query));
      return true;
    };
    module.hook(`iq-get/bare/${NS.discoInfo}:query`, accountInfo);
    module.hook(`iq-get/self/${NS.discoInfo}:query`, accountInfo);
    const accountItems = ({ origin, stanza }: StanzaEvent) => {
      origin.send(iqResult(stanza, new Element('query', { xmlns: NS.discoItems })));
      return true;
    };
    module.hook(`iq-get/bare/${NS.discoItems}:query`, accountItems);
    module.hook(`iq-get/self/${NS.discoItems}:query`, accountItems);
  },
});

function addIdentities(query: Element, identities: Identity[]): void {
  for (const i of identities) {
    const attrs: Record<string, string> = { category: i.category, type: i.type };
    if (i.name) attrs.name = i.name;
    query.c('identity', attrs);
  }
}
