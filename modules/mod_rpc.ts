//% requires_core_features: stanza-events-v1, events-async, module-commands
// Jabber-RPC (XEP-0009 2.2): exported methods declared with typed `params` and `rpc: { allow }`
// (`module.export`) are callable as XML-RPC over XMPP, named `<module>.<method>`, by the JIDs the
// operator authorises (the export's list, or this module's `allow` option, which replaces it):
// a whitelist, everyone else gets forbidden (§5). Arguments are checked against the declared
// types; errors travel as XML-RPC faults with the interoperability codes. system.listMethods,
// system.methodHelp and system.methodSignature describe what the caller may call.
// Engines: core/util/xmlrpc.ts, core/util/export-forms.ts (doc/remote-admin.md).
import {
  argsFromRpc,
  bare,
  defineModule,
  iqResult,
  prep,
  rpcSignature,
  xmlrpc,
  type ExportItem,
  type Stanza,
} from '../core/api.ts';

const { FAULT, NS_RPC, faultResponse, fromJs, methodResponse, parseRpcRequest, rpcQuery, toJs } = xmlrpc;

const options = {
  allow: { type: 'object', description: "Who may call each method: { '<module>.<method>': ['jid', …] } (replaces the export's rpc.allow)", default: {} },
  timeout: { type: 'integer', description: 'Seconds a method may run before the call is answered with a fault', default: 30, min: 1 },
} as const;

class CallTimeout extends Error {}

export default defineModule({
  description: 'Jabber-RPC (XEP-0009): exported methods over XML-RPC',
  options,
  load(module) {
    module.addFeature(NS_RPC);
    module.addIdentity('automation', 'rpc');

    const configured = module.option('allow') as Record<string, unknown>;
    for (const [name, list] of Object.entries(configured)) {
      if (!Array.isArray(list) || !list.every((j) => typeof j === 'string' && prep(j) !== null)) {
        throw new Error(`rpc.allow['${name}'] must be a list of valid JIDs`);
      }
    }
    const allowList = (name: string, item: ExportItem): string[] =>
      ((configured[name] as string[] | undefined) ?? item.options.rpc?.allow ?? []).map((j) => prep(j) ?? '');
    const mayCall = (caller: string, list: readonly string[]) => {
      const full = prep(caller);
      if (!full) return false;
      return list.some((j) => j === full || j === bare(full));
    };

    /** The RPC methods: every export of this host and of global modules declared with params and rpc. */
    const methods = () => {
      const out = new Map<string, { item: ExportItem; allow: string[] }>();
      for (const item of module.getItems<ExportItem>('export')) {
        if (!item.options.rpc || !item.options.params) continue;
        const name = `${item.module}.${item.name}`;
        out.set(name, { item, allow: allowList(name, item) });
      }
      return out;
    };

    module.hook(`iq-set/host/${NS_RPC}:query`, async ({ origin, stanza }) => {
      const caller = stanza.attrs.from ?? '';
      const all = methods();
      const callable = [...all].filter(([, m]) => mayCall(caller, m.allow));
      // A whitelist: strangers learn nothing about the methods (§5).
      if (!callable.length) throw module.stanzaError('auth', 'forbidden');
      const query = stanza.getChild('query', NS_RPC);
      if (!query) throw module.stanzaError('modify', 'bad-request');
      const req = parseRpcRequest(query);
      const answer = (payload: Stanza) => origin.send(iqResult(stanza, rpcQuery(payload)));
      if (!req.ok) {
        if ('badRequest' in req) throw module.stanzaError('modify', 'bad-request', req.badRequest);
        answer(faultResponse(req.fault));
        return true;
      }
      const { methodName, params } = req.call;
      const system = systemMethod(methodName, params.map(toJs), new Map(callable));
      if (system !== undefined) {
        answer(system);
        return true;
      }
      const m = all.get(methodName);
      if (!m) {
        answer(faultResponse({ code: FAULT.methodNotFound, string: `No method ${methodName}` }));
        return true;
      }
      if (!mayCall(caller, m.allow)) throw module.stanzaError('auth', 'forbidden');
      const args = argsFromRpc(m.item.options.params ?? [], params);
      if (!args.ok) {
        answer(faultResponse({ code: FAULT.invalidParams, string: args.text }));
        return true;
      }
      let value: unknown;
      try {
        value = await withTimeout(m.item.call(...args.args), module.option('timeout') * 1000);
      } catch (err) {
        const timedOut = err instanceof CallTimeout;
        module.log('%s called by %s failed: %s', methodName, caller, err instanceof Error ? err.stack : err);
        answer(faultResponse(timedOut
          ? { code: FAULT.internalError, string: `${methodName} did not answer in time` }
          : { code: FAULT.applicationError, string: err instanceof Error ? err.message : String(err) }));
        return true;
      }
      try {
        answer(methodResponse(fromJs(value ?? null)));
      } catch (err) {
        module.log.warn('%s returned a value XML-RPC cannot carry: %s', methodName, err);
        answer(faultResponse({ code: FAULT.internalError, string: `${methodName} returned a value XML-RPC cannot carry` }));
      }
      return true;
    });

    /** system.* introspection over the methods this caller may call; undefined for any other name. */
    function systemMethod(name: string, args: unknown[], callable: Map<string, { item: ExportItem }>): Stanza | undefined {
      const arg = typeof args[0] === 'string' ? args[0] : undefined;
      switch (name) {
        case 'system.listMethods':
          return methodResponse(fromJs([...callable.keys(), 'system.listMethods', 'system.methodHelp', 'system.methodSignature'].sort()));
        case 'system.methodHelp':
        case 'system.methodSignature': {
          const m = arg === undefined ? undefined : callable.get(arg);
          if (!m) return faultResponse({ code: FAULT.invalidParams, string: 'Expected the name of a method you may call' });
          return methodResponse(fromJs(name === 'system.methodHelp' ? m.item.description : [rpcSignature(m.item.options.params ?? [])]));
        }
        default:
          return undefined;
      }
    }
  },
});

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CallTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
