//% requires_core_features: storage-keyval, stanza-events-v1, sessions-v1, events-async, module-serial, user-deleted-event
// Push Notifications (XEP-0357 0.4.1), the user's server side.
//
// A client registers an app server with an iq set <enable xmlns='urn:xmpp:push:0' jid node/>,
// optionally with a publish-options data form (§5: e.g. the app server's secret), and removes
// it with <disable jid [node]/> (without node: every node of that app server). Registrations are
// stored durably per account (keyval 'push'); a repeated enable for the same jid and node
// replaces the earlier one.
//
// When a message that a user would want to hear about (a chat or normal message with a body or
// an encrypted payload, or a call proposal) arrives for an account with no session that is
// online and active — none at all, or only sessions in Client State Indication's inactive state
// (XEP-0352) or hibernating after a dropped connection (XEP-0198) — each registration gets a
// summary (§6: FORM_TYPE urn:xmpp:push:summary, message-count, last-message-sender and — only
// when the client asked with the field `include-body` true in its enable form — last-message-
// body), published as a PubSub iq set (XEP-0060 publish with publish-options) from the account's
// bare JID to the app server. The count is of the messages notified since a resource of the user
// last became available. An error reply from the app server disables that registration (§7).
import {
  Element, StanzaError, bare, defineModule, findForm, parseForm, prep, xml, type Json, type Session, type Stanza, type StanzaEvent,
} from '../core/api.ts';

const NS_PUSH = 'urn:xmpp:push:0';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_DATA = 'jabber:x:data';
const NS_CLIENT = 'jabber:client';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
const SUMMARY = 'urn:xmpp:push:summary';

// Payloads that make a message without <body/> worth waking a phone for.
const NOTIFY_PAYLOADS = new Set([
  'eu.siacs.conversations.axolotl', 'urn:xmpp:omemo:2', 'urn:xmpp:openpgp:0', 'urn:xmpp:eme:0',
  'urn:xmpp:jingle-message:0', 'urn:xmpp:jingle-message:1', 'jabber:x:conference',
]);

/** One app server registration (stored as JSON). */
interface Registration {
  jid: string;
  node: string;
  /** The publish-options fields (name → values), without include-body. */
  options: Record<string, string[]>;
  includeBody: boolean;
}

// After mod_mam (50), before mod_message (-10).
const PRIORITY = -6;

const hasBody = (m: Element) => m.children.some((c) => typeof c !== 'string' && c.name === 'body' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS_CLIENT));

/** Whether a message deserves a notification. */
function notifiable(m: Stanza): boolean {
  const type = m.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  if (m.getChild('sent', 'urn:xmpp:carbons:2') || m.getChild('received', 'urn:xmpp:carbons:2')) return false;
  return hasBody(m) || m.children.some((c) => typeof c !== 'string' && NOTIFY_PAYLOADS.has(c.attrs.xmlns as string));
}

/** A session the user is looking at: bound, not hibernating (XEP-0198), not inactive (XEP-0352). */
function activeSession(s: Session): boolean {
  // Both are set by the stream management and client state modules when they are loaded.
  const state = s as Session & { hibernating?: boolean; clientState?: string };
  return !s.destroyed && state.hibernating !== true && state.clientState !== 'inactive';
}

function isRegistration(v: unknown): v is Registration {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.jid === 'string' && typeof r.node === 'string' && typeof r.options === 'object' && r.options !== null;
}

export default defineModule({
  description: 'Push notifications (XEP-0357): summaries to the app servers of users without an active session',
  load(module) {
    const host = module.host;
    const store = module.storage.keyval('push');
    module.addItem('account-feature', NS_PUSH);

    const cache = new Map<string, Registration[]>();
    /** Messages notified since a resource of the user was last available. */
    const counts = new Map<string, number>();
    /** Our publish iqs awaiting the app server's answer: id → what to disable on error. */
    const pending = new Map<string, { user: string; jid: string; node: string }>();

    const load = async (user: string): Promise<Registration[]> => {
      const cached = cache.get(user);
      if (cached) return cached;
      const stored = await store.get<Json>(user);
      const list: Registration[] = Array.isArray(stored) ? (stored as unknown[]).filter(isRegistration) : [];
      cache.set(user, list);
      return list;
    };
    const save = (user: string, change: (list: Registration[]) => Registration[]) => module.serial(user, async () => {
      const next = change(await load(user));
      await store.set(user, next.length ? (next as unknown as Json) : undefined);
      cache.set(user, next);
      return next;
    });

    // -- enable / disable (§5, §8) --------------------------------------------------------------------

    const addressOf = (el: Element): { jid: string; node: string | undefined } => {
      const raw = el.attrs.jid as string | undefined;
      const jid = raw === undefined ? undefined : prep(raw);
      if (raw === undefined) throw new StanzaError('modify', 'bad-request', 'The app server\'s jid is missing');
      if (!jid) throw new StanzaError('modify', 'jid-malformed', 'The app server\'s jid is not a valid JID');
      const node = el.attrs.node as string | undefined;
      return { jid, node: node === '' ? undefined : node };
    };

    module.hook(`iq-set/self/${NS_PUSH}:enable`, async ({ origin, stanza }: StanzaEvent) => {
      const user = origin.username!;
      const enable = stanza.getChild('enable', NS_PUSH)!;
      const { jid, node } = addressOf(enable);
      if (node === undefined) throw new StanzaError('modify', 'bad-request', 'The node on the app server is missing');
      const options: Record<string, string[]> = {};
      let includeBody = false;
      const x = findForm(enable, PUBLISH_OPTIONS) ?? enable.getChild('x', NS_DATA);
      if (x) {
        const form = parseForm(x);
        if (!form || (form.formType !== undefined && form.formType !== PUBLISH_OPTIONS)) {
          throw new StanzaError('modify', 'bad-request', `The publish options must be a data form of type ${PUBLISH_OPTIONS}`);
        }
        for (const [name, f] of form.fields) {
          if (name === 'FORM_TYPE') continue;
          if (name === 'include-body') includeBody = f.values[0] === 'true' || f.values[0] === '1';
          else options[name] = f.values;
        }
      }
      await save(user, (list) => [...list.filter((r) => r.jid !== jid || r.node !== node), { jid, node, options, includeBody }]);
      module.log('push enabled for %s@%s at %s', user, host, jid); // never the node or options (they are secrets)
      origin.send(module.iqResult(stanza));
      return true;
    });

    module.hook(`iq-set/self/${NS_PUSH}:disable`, async ({ origin, stanza }: StanzaEvent) => {
      const user = origin.username!;
      const { jid, node } = addressOf(stanza.getChild('disable', NS_PUSH)!);
      await save(user, (list) => list.filter((r) => r.jid !== jid || (node !== undefined && r.node !== node)));
      module.log('push disabled for %s@%s at %s', user, host, jid);
      origin.send(module.iqResult(stanza));
      return true;
    });

    // -- notifications (§6) -----------------------------------------------------------------------

    const publish = (user: string, r: Registration, count: number, message: Stanza) => {
      const fields = [
        xml('field', { var: 'FORM_TYPE' }, xml('value', {}, SUMMARY)),
        xml('field', { var: 'message-count' }, xml('value', {}, String(count))),
      ];
      const from = message.attrs.from;
      if (from !== undefined) fields.push(xml('field', { var: 'last-message-sender' }, xml('value', {}, from)));
      const body = message.getChildText('body');
      if (r.includeBody && body) fields.push(xml('field', { var: 'last-message-body' }, xml('value', {}, body)));
      const pubsub = xml('pubsub', { xmlns: NS_PUBSUB },
        xml('publish', { node: r.node }, xml('item', {}, xml('notification', { xmlns: NS_PUSH }, xml('x', { xmlns: NS_DATA, type: 'submit' }, ...fields)))));
      const names = Object.keys(r.options);
      if (names.length) {
        pubsub.cnode(xml('publish-options', {}, xml('x', { xmlns: NS_DATA, type: 'submit' },
          xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, PUBLISH_OPTIONS)),
          ...names.map((n) => xml('field', { var: n }, ...r.options[n]!.map((v) => xml('value', {}, v)))))));
      }
      const id = `push-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
      pending.set(id, { user, jid: r.jid, node: r.node });
      module.setTimeout(() => pending.delete(id), 120_000);
      module.sendFrom(host, xml('iq', { type: 'set', from: `${user}@${host}`, to: r.jid, id }, pubsub));
      module.log('push notification for %s@%s to %s', user, host, r.jid);
    };

    const notify = async (user: string, message: Stanza) => {
      const regs = await load(user);
      if (!regs.length) return;
      const count = (counts.get(user) ?? 0) + 1;
      counts.set(user, count);
      for (const r of regs) publish(user, r, count, message);
    };

    const onMessage = (event: StanzaEvent) => {
      const { toNode, toHost, stanza } = event;
      if (!toNode || toHost !== host || !notifiable(stanza)) return undefined;
      if (module.sessions.sessionsOf(host, toNode).some(activeSession)) return undefined;
      // Not awaited: delivery does not wait for the app server.
      notify(toNode, stanza).catch((err: unknown) => module.log.error('push notification for %s@%s failed: %s', toNode, host, err));
      return undefined;
    };
    module.hook('message/bare', onMessage, PRIORITY);
    module.hook('message/full', onMessage, PRIORITY);

    // The app server's answer, addressed to the account's bare JID (§7: an error disables).
    const answer = ({ stanza }: StanzaEvent) => {
      const id = stanza.attrs.id;
      const type = stanza.attrs.type;
      if (id === undefined || (type !== 'result' && type !== 'error')) return undefined;
      const p = pending.get(id);
      if (!p || bare(stanza.attrs.from ?? '') !== bare(p.jid)) return undefined;
      pending.delete(id);
      if (type === 'error') {
        module.log.info('app server %s refused a push notification for %s@%s: registration disabled', p.jid, p.user, host);
        void save(p.user, (list) => list.filter((r) => r.jid !== p.jid || r.node !== p.node));
      }
      return true;
    };
    module.hook('iq/bare', answer, 10);

    module.hook('resource-available', ({ session }) => {
      if (session.host === host && session.username) counts.delete(session.username);
    });

    module.hook('user-deleted', ({ host: h, username }) => {
      if (h !== host) return undefined;
      cache.delete(username); // the storage purges the registrations with the account
      counts.delete(username);
      return undefined;
    });
  },
});
