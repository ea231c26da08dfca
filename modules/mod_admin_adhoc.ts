//% requires_core_features: stanza-events-v1, events-async, module-commands, module-capabilities, storage-keyval, accounts-disabled
// Service Administration (XEP-0133 1.2) as ad-hoc commands (offered by mod_adhoc) for the
// admins of the host (`admins`, global and per host): accounts (add, delete, disable, re-enable,
// password, roster, last login, end sessions), counts and lists of registered, disabled and
// online users, announcements, the message of the day (sent once to each user at login), and
// reloading modules. The forms, checks and result forms are core/util/admin-commands.ts;
// doc/remote-admin.md describes them.
import { randomUUID } from 'node:crypto';
import {
  CommandError,
  adminCommands as admin,
  defineModule,
  type AdhocError,
  type CommandContext,
  type CommandOutcome,
  type CommandStage,
  type Json,
  type Note,
} from '../core/api.ts';

type Values = ReadonlyMap<string, readonly string[]>;

export default defineModule({
  description: 'Service Administration (XEP-0133) commands for admins',
  depends: ['adhoc'],
  capabilities: ['users', 'admin'],
  load(module) {
    const host = module.host;
    const users = module.privileged.users;
    const lastLogin = module.storage.keyval('lastlogin'); // user → ms of the last resource binding
    const motdStore = module.storage.keyval('motd'); // host record: admin.Motd
    const motdSeen = module.storage.keyval('motd_seen'); // user → id of the last message of the day sent

    const scope = (ctx: CommandContext): admin.AdminScope => ({
      isLocalHost: (h) => module.hosts.kind(h) === 'virtualhost',
      administers: (h) => module.isAdmin(ctx.requester, h),
    });
    const check = <T>(r: admin.Checked<T>): T => {
      if (!r.ok) throw new CommandError(r.error);
      return r.value;
    };
    const fail = (error: AdhocError): never => {
      throw new CommandError(error);
    };
    const onlineUsers = (h: string): string[] => {
      const out = new Set<string>();
      for (const s of module.sessions.boundSessions(h)) if (s.username) out.add(`${s.username}@${h}`);
      return [...out].sort();
    };
    const closeSessions = (h: string, username: string, resource: string | undefined, text: string): number => {
      const sessions = resource !== undefined ? [module.sessions.getByFullJid(h, username, resource)].filter((s) => s !== undefined) : module.sessions.sessionsOf(h, username);
      for (const s of sessions) s.close({ condition: 'policy-violation', text });
      return sessions.length;
    };
    const perAccount = async (values: Values, ctx: CommandContext, act: (a: admin.AccountRef) => Promise<Note>, opts: { allowFull?: boolean } = {}): Promise<CommandOutcome> => {
      const notes: Note[] = [];
      for (const a of check(admin.readAccountJids(values, scope(ctx), opts))) notes.push(await act(a));
      return { notes };
    };
    const exists = (a: admin.AccountRef) => module.users.exists(a.host, a.username);
    const noAccount = (a: admin.AccountRef): Note => ({ type: 'error', text: `${a.jid} does not exist` });
    const motdTo = async (username: string, fullJid: string, motd: admin.Motd) => {
      module.send(admin.motdMessage(host, fullJid, motd.text));
      await motdSeen.set(username, motd.id);
    };

    const actions: Record<admin.AdminCommandKey, (values: Values, ctx: CommandContext) => Promise<CommandOutcome>> = {
      addUser: async (values, ctx) => {
        const r = check(admin.readAddUser(values, scope(ctx)));
        if (await module.users.exists(r.host, r.username)) fail({ type: 'cancel', condition: 'conflict', text: 'The account exists' });
        await users.create(r.host, r.username, r.password);
        module.log.info('%s added account %s', ctx.requester, r.jid);
        return { notes: [{ type: 'info', text: `Added ${r.jid}` }] };
      },
      deleteUser: (values, ctx) => perAccount(values, ctx, async (a) => {
        if (!(await exists(a))) return noAccount(a);
        await users.delete(a.host, a.username);
        module.log.info('%s deleted account %s', ctx.requester, a.jid);
        return { type: 'info', text: `Deleted ${a.jid}` };
      }),
      disableUser: (values, ctx) => perAccount(values, ctx, async (a) => {
        if (!(await exists(a))) return noAccount(a);
        await users.setDisabled(a.host, a.username, true);
        closeSessions(a.host, a.username, undefined, 'Account disabled');
        module.log.info('%s disabled account %s', ctx.requester, a.jid);
        return { type: 'info', text: `Disabled ${a.jid}` };
      }),
      reenableUser: (values, ctx) => perAccount(values, ctx, async (a) => {
        if (!(await exists(a))) return noAccount(a);
        await users.setDisabled(a.host, a.username, false);
        module.log.info('%s re-enabled account %s', ctx.requester, a.jid);
        return { type: 'info', text: `Re-enabled ${a.jid}` };
      }),
      endUserSession: (values, ctx) => perAccount(values, ctx, async (a) => {
        const n = closeSessions(a.host, a.username, a.resource, 'Session ended by an administrator');
        module.log.info('%s ended %d session(s) of %s', ctx.requester, n, a.jid);
        return n ? { type: 'info', text: `Ended ${n} session(s) of ${a.jid}` } : { type: 'warn', text: `${a.jid} has no session` };
      }, { allowFull: true }),
      changeUserPassword: async (values, ctx) => {
        const r = check(admin.readChangePassword(values, scope(ctx)));
        if (!(await module.users.exists(r.host, r.username))) fail({ type: 'cancel', condition: 'item-not-found', text: `${r.jid} does not exist` });
        await users.setPassword(r.host, r.username, r.password);
        module.log.info('%s changed the password of %s', ctx.requester, r.jid);
        return { notes: [{ type: 'info', text: `Changed the password of ${r.jid}` }] };
      },
      getUserRoster: async (values, ctx) => {
        const payload = [];
        const notes: Note[] = [];
        for (const a of check(admin.readAccountJids(values, scope(ctx)))) {
          if (!(await exists(a))) {
            notes.push(noAccount(a));
            continue;
          }
          const roster = await module.rosters.load(a.host, a.username);
          const items = [...roster.items].map(([jid, it]) => ({ jid, subscription: it.subscription, groups: it.groups, ...(it.name ? { name: it.name } : {}), ...(it.ask ? { ask: true } : {}) }));
          payload.push(admin.rosterResult(a.jid, items));
        }
        return { notes, payload };
      },
      getUserLastLogin: async (values, ctx) => {
        const payload = [];
        const notes: Note[] = [];
        for (const a of check(admin.readAccountJids(values, scope(ctx)))) {
          if (!(await exists(a))) {
            notes.push(noAccount(a));
            continue;
          }
          // Recorded on this host's module; another host's accounts are read from that host's store by its own module.
          const ms = a.host === host ? await lastLogin.get<number>(a.username) : undefined;
          payload.push(admin.lastLoginResult(a.jid, ms === undefined ? undefined : new Date(ms)));
        }
        return { notes, payload };
      },
      getRegisteredUsersNum: async () => ({ payload: [admin.countResult('registeredusersnum', (await module.users.list(host)).length)] }),
      getDisabledUsersNum: async () => ({ payload: [admin.countResult('disabledusersnum', (await module.users.listDisabled(host)).length)] }),
      getOnlineUsersNum: () => Promise.resolve({ payload: [admin.countResult('onlineusersnum', onlineUsers(host).length)] }),
      getRegisteredUsersList: async (values) => {
        const max = check(admin.readMaxItems(values));
        return { payload: [admin.listResult('registereduserjids', (await module.users.list(host)).map((u) => `${u}@${host}`), max)] };
      },
      getDisabledUsersList: async (values) => {
        const max = check(admin.readMaxItems(values));
        return { payload: [admin.listResult('disableduserjids', (await module.users.listDisabled(host)).map((u) => `${u}@${host}`), max)] };
      },
      getOnlineUsersList: (values) => {
        const max = check(admin.readMaxItems(values));
        return Promise.resolve({ payload: [admin.listResult('onlineuserjids', onlineUsers(host), max)] });
      },
      announce: (values, ctx) => {
        const text = check(admin.readText(values, 'announcement'));
        let n = 0;
        for (const s of module.sessions.boundSessions(host)) {
          module.send(admin.announcementMessage(host, s.full_jid, text));
          n++;
        }
        module.log.info('%s sent an announcement to %d resource(s)', ctx.requester, n);
        return Promise.resolve({ notes: [{ type: 'info', text: `Sent to ${n} online resource(s)` }] });
      },
      setMotd: async (values, ctx) => {
        const motd = admin.newMotd(check(admin.readText(values, 'motd')), new Date(), randomUUID());
        await motdStore.set(null, motd as unknown as Json);
        for (const s of module.sessions.boundSessions(host)) await motdTo(s.username, s.full_jid, motd);
        module.log.info('%s set the message of the day', ctx.requester);
        return { notes: [{ type: 'info', text: 'Message of the day set' }] };
      },
      editMotd: async (values, ctx) => {
        const current = await motdStore.get<Json>(null) as admin.Motd | undefined;
        const motd = admin.editMotd(current, check(admin.readText(values, 'motd')), new Date(), randomUUID());
        await motdStore.set(null, motd as unknown as Json);
        module.log.info('%s edited the message of the day', ctx.requester);
        return { notes: [{ type: 'info', text: 'Message of the day changed' }] };
      },
      deleteMotd: async (_values, ctx) => {
        await motdStore.set(null, undefined);
        module.log.info('%s deleted the message of the day', ctx.requester);
        return { notes: [{ type: 'info', text: 'Message of the day deleted' }] };
      },
      reloadModules: async (values, ctx) => {
        const loaded = loadedModules();
        const notes: Note[] = [];
        for (const name of check(admin.readModules(values, loaded.map((m) => m.name)))) {
          const m = loaded.find((l) => l.name === name);
          try {
            await module.privileged.admin.reloadModule(name, m?.host);
            notes.push({ type: 'info', text: `Reloaded ${name}` });
            module.log.info('%s reloaded module %s', ctx.requester, name);
          } catch (err) {
            notes.push({ type: 'error', text: `${name}: ${err instanceof Error ? err.message : String(err)}` });
          }
        }
        return { notes };
      },
    };
    const loadedModules = () => {
      const seen = new Map<string, { name: string; host: string }>();
      for (const m of module.privileged.admin.listModules()) if (m.host === host || m.host === '*') seen.set(m.name, { name: m.name, host: m.host });
      return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
    };

    for (const spec of admin.ADMIN_COMMANDS) {
      let stages: CommandStage[] = spec.form ? [{ form: spec.form }] : [];
      if (spec.key === 'editMotd') stages = [{ form: async () => admin.editMotdForm((await motdStore.get<Json>(null) as admin.Motd | undefined)?.text) }];
      if (spec.key === 'reloadModules') stages = [{ form: () => admin.reloadModulesForm(loadedModules().map((m) => m.name)) }];
      module.command({
        node: spec.node,
        name: spec.name,
        allowed: (jid) => module.isAdmin(jid),
        stages,
        run: (ctx) => actions[spec.key](ctx.values, ctx),
      });
    }

    // Last login (get-user-lastlogin) and the message of the day at login.
    module.hook('resource-bind', ({ session }) => {
      if (session.username) lastLogin.set(session.username, Date.now()).catch((err: unknown) => module.log.error('recording the last login of %s: %s', session.username, err));
    });
    module.hook('resource-available', async ({ session, initial }) => {
      if (!initial || !session.username || !session.full_jid) return;
      const motd = await motdStore.get<Json>(null) as admin.Motd | undefined;
      if (admin.motdDue(motd, await motdSeen.get<string>(session.username)) && motd) await motdTo(session.username, session.full_jid, motd);
    });
  },
});
