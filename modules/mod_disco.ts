//% requires_core_features: stanza-events-v1, events-async
// Service Discovery (XEP-0030): the server's identity and the features every loaded module
// adds with module.addFeature(); items are the components (subdomains) of the host. Nodes are
// answered by the modules that own them (events disco-info-node/…, disco-items-node/…). Accounts
// answer with the account/registered identity, and modules add what an account hosts (PEP) through
// the account-disco-* events.
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
      // Modules may edit the answer (mod_privilege nests a managing entity's features, XEP-0355 §7.2).
      const edited = module.fire('host-disco-info', { origin, stanza, query });
      return edited instanceof Promise ? edited.then(() => answer(true)) : answer(true);
    });

    module.hook(`iq-get/host/${NS.discoItems}:query`, ({ origin, stanza }) => {
      const node = attrsOf(iqPayload(stanza)).node;
      const query = new Element('query', node ? { xmlns: NS.discoItems, node } : { xmlns: NS.discoItems });
      if (node) {
        // A node's items come from the module that owns it (mod_adhoc: the commands node).
        const answer = (handled: unknown): true => {
          if (handled === undefined) throw new StanzaError('cancel', 'item-not-found');
          origin.send(iqResult(stanza, query));
          return true;
        };
        const handled = module.fire(`disco-items-node/${node}`, { origin, stanza, query });
        return handled instanceof Promise ? handled.then(answer) : answer(handled);
      }
      for (const name of module.hosts.names()) {
        if (name.endsWith(`.${module.host}`)) query.c('item', { jid: name });
      }
      for (const [jid, name] of Object.entries(module.option('items'))) query.c('item', { jid, name: String(name) });
      origin.send(iqResult(stanza, query));
      return true;
    });

    // An account answers for itself (category account, type registered) and for what it hosts
    // (PEP nodes): modules add to the answer, or answer a node they own.
    const forAccount = async (event: StanzaEvent, ns: string, kind: 'info' | 'items') => {
      const { origin, stanza, toNode } = event;
      const username = toNode ?? '';
      if (!(await module.users.exists(module.host, username))) throw new StanzaError('cancel', 'service-unavailable');
      const node = attrsOf(iqPayload(stanza)).node;
      const query = new Element('query', node ? { xmlns: ns, node } : { xmlns: ns });
      const data = { origin, stanza, username, query };
      // What the server has no answer of its own for may be taken over (and answered) by another
      // module (mod_privilege: XEP-0355 §7.2 special namespaces): items without a node first.
      const elsewhere = () => module.fireAsync('account-disco-unserved', { ...data, kind, node });
      if (!node && kind === 'items' && (await elsewhere()) !== undefined) return true;
      if (node) {
        const handled = await module.fireAsync(kind === 'info' ? `account-disco-info-node/${node}` : `account-disco-items-node/${node}`, data);
        if (handled === undefined && (await elsewhere()) !== undefined) return true;
        if (handled === undefined) throw new StanzaError('cancel', 'item-not-found');
      } else {
        if (kind === 'info') {
          addIdentities(query, [{ category: 'account', type: 'registered' }, ...module.getItems<Identity>('account-identity')]);
          for (const f of new Set(module.getItems<string>('account-feature'))) query.c('feature', { var: f });
        }
        await module.fireAsync(kind === 'info' ? 'account-disco-info' : 'account-disco-items', data);
      }
      origin.send(iqResult(stanza, query));
      return true;
    };
    const accountInfo = (event: StanzaEvent) => forAccount(event, NS.discoInfo, 'info');
    const accountItems = (event: StanzaEvent) => forAccount(event, NS.discoItems, 'items');
    module.hook(`iq-get/bare/${NS.discoInfo}:query`, accountInfo);
    module.hook(`iq-get/self/${NS.discoInfo}:query`, accountInfo);
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
