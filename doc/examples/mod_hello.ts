//% requires_core_features: stanza-events-v1, module-exports, module-session-state
// The example of doc/modules.md ("write a module in five minutes"): answers
// <iq type='get'><hello xmlns='urn:example:hello'/></iq> with a greeting, counts the sessions
// on its host, and exports two methods for other modules and the admin shell.
// Only type imports from Cadence: the file works wherever it is dropped.
import type { ModuleApi, ModuleDefinition } from '../../core/api.ts';

const NS = 'urn:example:hello';

const options = {
  greeting: { type: 'string', description: 'What the module says', default: 'Hello' },
} as const;

const hello: ModuleDefinition<typeof options> = {
  description: 'Says hello (the doc/modules.md example)',
  options,
  load(module: ModuleApi<typeof options>) {
    module.addFeature(NS);

    module.hook(`iq-get/host/${NS}:hello`, ({ origin, stanza }) => {
      const who = String(stanza.attrs.from ?? 'stranger');
      const reply = module.xml('hello', { xmlns: NS }, `${module.option('greeting')}, ${who}!`);
      origin.send(module.iqResult(stanza, reply));
      return true; // handled
    });

    // Told about the sessions that already exist, then about new and closed ones.
    const sessions = new Set<string>();
    module.onSessions({
      added: (s) => void sessions.add(s.full_jid ?? s.id),
      removed: (s) => void sessions.delete(s.full_jid ?? s.id),
    });

    module.export('sessionCount', () => sessions.size, 'Sessions on this host');
    module.export('greet', (name: string) => `${module.option('greeting')}, ${name}!`, 'Greet someone');
  },
};

export default hello;
