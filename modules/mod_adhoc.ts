//% requires_core_features: stanza-events-v1, events-async, module-exports, module-commands
// Ad-Hoc Commands (XEP-0050 1.3) on the host: the commands modules declare (`module.command(def)`,
// the host item 'adhoc-command') and the exported methods declared with typed parameters and
// `command` (the host item 'export'), run through the engine of core/util/adhoc.ts (sessions,
// stages, actions, XEP-0004/XEP-0122 form checks, the §4.4 errors). Commands are listed by disco
// on the node http://jabber.org/protocol/commands, each requester seeing those it may run.
// doc/remote-admin.md describes the engine and this glue.
import {
  AdhocEngine,
  CommandError,
  NS_COMMANDS,
  adhocError,
  adhocErrorReply,
  adhocResultReply,
  argsFromForm,
  defineModule,
  formForParams,
  resultPayload,
  split,
  type CommandAccess,
  type CommandDefinition,
  type ExportItem,
  type ModuleApi,
  type OptionSpecs,
} from '../core/api.ts';

const options = {
  sessionTimeout: { type: 'integer', description: 'Seconds without activity after which a command session expires', default: 600, min: 10 },
  maxSessionsPerUser: { type: 'integer', description: 'Open command sessions per requester (full JID)', default: 8, min: 1 },
} as const;

export default defineModule({
  description: 'Ad-Hoc Commands (XEP-0050)',
  options,
  load(module) {
    const engine = new AdhocEngine({
      locales: ['en'],
      sessionTtlMs: module.option('sessionTimeout') * 1000,
      maxSessionsPerRequester: module.option('maxSessionsPerUser'),
    });
    module.setInterval(() => engine.sweep(), 60_000);
    module.addFeature(NS_COMMANDS);

    // Item value → the function removing its command from the engine.
    const registered = new Map<unknown, () => void>();
    const nodesHooked = new Set<string>();
    const add = (value: unknown, def: CommandDefinition | undefined) => {
      if (!def || registered.has(value)) return;
      try {
        registered.set(value, engine.register(def));
      } catch (err) {
        module.log.error('command %s not offered: %s', def.node, err instanceof Error ? err.message : err);
        return;
      }
      hookNodeInfo(def.node);
    };
    const remove = (value: unknown) => {
      registered.get(value)?.(); // ends the command's open sessions
      registered.delete(value);
    };

    // disco#info on a command node: identity and features, forbidden to those who may not run it.
    // Hooked once per node; a node whose command went away answers item-not-found.
    const hookNodeInfo = (node: string) => {
      if (nodesHooked.has(node)) return;
      nodesHooked.add(node);
      module.hook(`disco-info-node/${node}`, async ({ stanza, query }) => {
        const info = await engine.discoInfo(node, stanza.attrs.from ?? '');
        if (!info) return undefined;
        if (!info.ok) throw module.stanzaError(info.error.type, info.error.condition);
        for (const child of info.query.children) query.cnode(child as never);
        return true;
      });
    };
    hookNodeInfo(NS_COMMANDS);

    for (const def of module.getItems<CommandDefinition>('adhoc-command')) add(def, def);
    module.hook('item-added/adhoc-command', ({ value }) => void add(value, value as CommandDefinition));
    module.hook('item-removed/adhoc-command', ({ value }) => void remove(value));
    for (const item of module.getItems<ExportItem>('export')) add(item, exportCommand(module, item));
    module.hook('item-added/export', ({ value }) => void add(value, exportCommand(module, value as ExportItem)));
    module.hook('item-removed/export', ({ value }) => void remove(value));

    module.hook(`disco-items-node/${NS_COMMANDS}`, async ({ stanza, query }) => {
      const items = await engine.discoItems(stanza.attrs.from ?? '', module.host);
      for (const child of items.children) query.cnode(child as never);
      return true;
    });

    module.hook(`iq-set/host/${NS_COMMANDS}:command`, async ({ origin, stanza }) => {
      const command = stanza.getChild('command', NS_COMMANDS);
      if (!command) return undefined;
      const lang = stanza.attrs['xml:lang'];
      const result = await engine.handle({ from: stanza.attrs.from ?? '', to: stanza.attrs.to ?? module.host, ...(lang ? { lang } : {}), command });
      if (result.ok) {
        module.log('%s: %s %s', stanza.attrs.from, command.attrs.node, result.status);
        origin.send(adhocResultReply(stanza, result.payload));
      } else {
        if (result.cause !== undefined) module.log.error('command %s failed: %s', command.attrs.node, result.cause);
        origin.send(adhocErrorReply(stanza, result.error));
      }
      return true;
    });
    // Commands are executed with iq set (§3.1); a get is not a request this protocol defines.
    module.hook(`iq-get/host/${NS_COMMANDS}:command`, () => {
      throw module.stanzaError('modify', 'bad-request', 'Ad-hoc commands are executed with iq type set');
    });
  },
});

/** The command generated for an exported method declared with `params` and `command`, or undefined. */
function exportCommand(module: ModuleApi<OptionSpecs>, item: ExportItem): CommandDefinition | undefined {
  const { options: opts } = item;
  if (!opts.command || !opts.params) return undefined;
  const cmd = typeof opts.command === 'object' ? opts.command : {};
  const title = cmd.name ?? (item.description || `${item.module}.${item.name}`);
  const params = opts.params;
  return {
    node: cmd.node ?? `cadence:${item.module}#${item.name}`,
    name: title,
    allowed: accessCheck(module, cmd.access ?? 'admin'),
    stages: params.length ? [{ form: formForParams(title, params, item.description || undefined) }] : [],
    run: async (ctx) => {
      const args = argsFromForm(params, ctx.values);
      if (!args.ok) throw new CommandError(adhocError('bad-payload', args.text));
      let value: unknown;
      try {
        value = await item.call(...args.args);
      } catch (err) {
        if (err instanceof CommandError) throw err;
        module.log('%s.%s failed for %s: %s', item.module, item.name, ctx.requester, err);
        return { notes: [{ type: 'error', text: err instanceof Error ? err.message : String(err) }] };
      }
      const payload = resultPayload(value, title);
      return payload.length ? { payload } : { notes: [{ type: 'info', text: 'Done' }] };
    },
  };
}

function accessCheck(module: ModuleApi<OptionSpecs>, access: CommandAccess): (requester: string) => boolean {
  switch (access) {
    case 'admin':
      return (jid) => module.isAdmin(jid);
    case 'user':
      return (jid) => {
        const p = split(jid);
        return Boolean(p.node) && p.host === module.host;
      };
    case 'anyone':
      return () => true;
  }
}
