//% requires_core_features: stanza-events-v1, storage-keyval, module-exports, module-session-state, events-async, module-commands
// The example of doc/modules.md ("write a module in five minutes"): answers
// <iq type='get'><hello xmlns='urn:example:hello'/></iq> with a greeting and how often the user
// was greeted (kept durably), counts the sessions on its host, and exports two methods for other
// modules and the admin shell. Only type imports from Cadence (core/api.ts, the module API): the
// file works wherever it is dropped.
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
    const greeted = module.storage.keyval(); // user → times greeted

    // The event name is checked by the compiler, and the handler gets its payload type (a
    // StanzaEvent). A handler may be async: this session's next stanzas wait for it.
    module.hook(`iq-get/host/${NS}:hello`, async ({ origin, stanza }) => {
      if (stanza.getChild('hello', NS)?.children.length) {
        throw module.stanzaError('modify', 'bad-request', 'Send an empty <hello/>'); // the error reply
      }
      const user = origin.username ?? '';
      const times = ((await greeted.get<number>(user)) ?? 0) + 1;
      await greeted.set(user, times); // durable before the answer
      const reply = module.xml('hello', { xmlns: NS, times: String(times) }, `${module.option('greeting')}, ${stanza.attrs.from ?? 'stranger'}!`);
      origin.send(module.iqResult(stanza, reply));
      return true; // handled: nobody else answers
    });

    // Told about the sessions that already exist, then about new and closed ones.
    const sessions = new Set<string>();
    module.onSessions({
      added: (s) => void sessions.add(s.full_jid ?? s.id),
      removed: (s) => void sessions.delete(s.full_jid ?? s.id),
    });

    module.export('sessionCount', () => sessions.size, 'Sessions on this host');
    // Typed parameters: also offered as an ad-hoc command (XEP-0050, mod_adhoc) with a generated
    // form, and over Jabber-RPC (XEP-0009, mod_rpc) to the JIDs listed.
    module.export('greet', (name: string) => `${module.option('greeting')}, ${name}!`, {
      description: 'Greet someone',
      params: [{ name: 'name', type: 'string', label: 'Whom to greet' }],
      command: { access: 'user' }, // Gajim: Actions → Execute command → Greet someone
      rpc: { allow: ['robot@localhost'] }, // slixmpp: xep_0009 call hello.greet('Juliet')
    });
  },
};

export default hello;
