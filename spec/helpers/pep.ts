// End-to-end helpers for PEP and PubSub (XEP-0163, XEP-0060): clients that advertise entity
// capabilities (XEP-0115) and answer the server's disco#info for them, as real clients do;
// mutual presence subscriptions; pubsub requests; waiting for notifications.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { client as xmppClient } from '@xmpp/client';
import { TestClient, xml, type Element } from './client.ts';
import { startServer, type TestServer } from './server.ts';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const NS_CAPS = 'http://jabber.org/protocol/caps';
const CAPS_NODE = 'https://cadence.invalid/test-client';

/** XEP-0115 §5.1 ver of a client with one identity client/pc and these features. */
export function capsVer(features: readonly string[]): string {
  const sorted = [...new Set(features)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const s = `client/pc//<${sorted.map((f) => `${f}<`).join('')}`;
  return createHash('sha1').update(s, 'utf8').digest('base64');
}

const answering = new WeakSet<TestClient>();
const answeredVer = new WeakMap<TestClient, (ver: string) => void>();
const advertised = new WeakMap<TestClient, readonly string[]>();

/**
 * Send available presence with caps for `features` (plus disco#info and caps), and answer the
 * server's disco#info query for them from now on (a client answers for its current ver).
 */
export async function advertise(c: TestClient, features: readonly string[], extra: Element[] = []): Promise<void> {
  // A feature of its own makes the ver new to the server, which then asks (and we know when it knows).
  const all = [NS_DISCO_INFO, NS_CAPS, `urn:test:nonce:${Math.random().toString(36).slice(2)}`, ...features];
  const ver = capsVer(all);
  const known = new Promise<void>((resolve) => answeredVer.set(c, (v) => v === ver && resolve()));
  advertised.set(c, all);
  if (!answering.has(c)) {
    answering.add(c);
    // Through the client library's iq handling, as a real client answers (it would otherwise
    // answer service-unavailable itself).
    c.xmpp.iqCallee.get(NS_DISCO_INFO, 'query', (ctx: { element: Element }) => {
      const mine = advertised.get(c) ?? [];
      const node = ctx.element.attrs.node as string | undefined;
      if (node === `${CAPS_NODE}#${capsVer(mine)}`) setImmediate(() => answeredVer.get(c)?.(capsVer(mine)));
      if (node && node !== `${CAPS_NODE}#${capsVer(mine)}`) return xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }));
      return xml('query', node ? { xmlns: NS_DISCO_INFO, node } : { xmlns: NS_DISCO_INFO }, xml('identity', { category: 'client', type: 'pc' }),
        ...mine.map((f) => xml('feature', { var: f })));
    });
  }
  await c.send(xml('presence', {}, xml('c', { xmlns: NS_CAPS, hash: 'sha-1', node: CAPS_NODE, ver }), ...extra));
  await known;
  // The answer is processed before this round trip ends: the server knows the features now.
  await c.iq(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
}

/** `node+notify` */
export const notify = (node: string): string => `${node}+notify`;

/** Mutual presence subscription between two available clients (both see each other's presence). */
export async function befriend(a: TestClient, b: TestClient): Promise<void> {
  await a.send(xml('presence', { to: b.bare, type: 'subscribe' }));
  await b.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === a.bare);
  await b.send(xml('presence', { to: a.bare, type: 'subscribed' }));
  await a.expect((s) => s.name === 'presence' && s.attrs.from === b.jid && s.attrs.type === undefined);
  await b.send(xml('presence', { to: a.bare, type: 'subscribe' }));
  await a.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === b.bare);
  await a.send(xml('presence', { to: b.bare, type: 'subscribed' }));
  await b.expect((s) => s.name === 'presence' && s.attrs.from === a.jid && s.attrs.type === undefined);
}

/** An iq to `to` (undefined: one's own account) with a pubsub payload; returns the reply whatever its type. */
export function pubsubIq(c: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  return c.iqRaw(xml('iq', to ? { type, to } : { type }, payload));
}

export function ps(...children: Element[]): Element {
  return xml('pubsub', { xmlns: NS_PUBSUB }, ...children);
}

export function owner(...children: Element[]): Element {
  return xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, ...children);
}

/** A data form of `formType` with the given fields. */
export function form(formType: string, fields: Record<string, string | string[]>, type = 'submit'): Element {
  return xml('x', { xmlns: 'jabber:x:data', type },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, formType)),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, ...(Array.isArray(v) ? v : [v]).map((x) => xml('value', {}, x)))));
}

export const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
export const NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';

/** <publish node><item id>payload</item></publish>, with publish-options when given. */
export function publish(node: string, id: string | undefined, payload: Element, options?: Record<string, string>): Element {
  const p = xml('publish', { node }, xml('item', id ? { id } : {}, payload));
  return options ? ps(p, xml('publish-options', {}, form(PUBLISH_OPTIONS, options))) : ps(p);
}

export function ok(reply: Element): Element {
  assert.equal(reply.attrs.type, 'result', reply.toString());
  return reply;
}

/** The error reply's defined condition and pubsub#errors condition. */
export function failure(reply: Element): { type: string | undefined; condition: string | undefined; app: string | undefined } {
  assert.equal(reply.attrs.type, 'error', reply.toString());
  const error = reply.getChild('error');
  const els = error?.getChildElements() ?? [];
  return {
    type: error?.attrs.type as string | undefined,
    condition: els.find((e) => e.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && e.name !== 'text')?.name,
    app: els.find((e) => e.attrs.xmlns === NS_PUBSUB_ERRORS)?.name,
  };
}

/** A pubsub#event notification message for `node` (from `from` when given). */
export function isEvent(node: string, from?: string, what = 'items'): (el: Element) => boolean {
  return (el) => {
    if (el.name !== 'message') return false;
    if (from !== undefined && el.attrs.from !== from) return false;
    return el.getChild('event', NS_PUBSUB_EVENT)?.getChild(what)?.attrs.node === node;
  };
}

/** The <item/> elements of a notification or an items result. */
export function itemsOf(el: Element): Element[] {
  const items = el.getChild('event', NS_PUBSUB_EVENT)?.getChild('items') ?? el.getChild('pubsub', NS_PUBSUB)?.getChild('items');
  return items?.getChildren('item') ?? [];
}

/** Items of `node` at `at` (undefined: one's own). */
export async function fetchItems(c: TestClient, node: string, at?: string, attrs: Record<string, string> = {}): Promise<Element> {
  return pubsubIq(c, 'get', ps(xml('items', { node, ...attrs })), at);
}

/** The modules PEP tests run with (the defaults that matter here; `fast` keeps a key file that parallel adduser runs race on). */
export const PEP_MODULES = ['tls', 'saslauth', 'sasl2', 'bind', 'bind2', 'roster', 'disco', 'ping', 'vcard', 'private', 'caps', 'blocking', 'register', 'pep'];

/**
 * As client.ts's `login` (@xmpp/client with its defaults), with a patient stream timeout: these
 * tests open many streams on a machine shared by several test runs.
 */
export async function login(server: TestServer, username: string, password: string, opts: { resource?: string; presence?: boolean } = {}): Promise<TestClient> {
  const xmpp = xmppClient({ service: `xmpp://127.0.0.1:${server.c2sPort}`, domain: server.host, username, password, resource: opts.resource, timeout: 30_000 });
  xmpp.reconnect.stop();
  const c = new TestClient(xmpp, `${username}/${opts.resource ?? '?'}`);
  c.jid = (await xmpp.start()).toString();
  if (opts.presence) await c.send(xml('presence'));
  return c;
}

/** A round trip: everything the server sent `c` before now has arrived. */
export function sync(c: TestClient): Promise<Element> {
  return c.iq(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
}

export interface PepFixtureOptions {
  /** The password of every account (and of `connect` unless it names another). */
  password: string;
  /** Config fields over `{ modulesEnabled: PEP_MODULES }`. */
  config?: Record<string, unknown>;
  /** Clients send initial presence once logged in. */
  presence?: boolean;
}

/** What `pepFixture` gives a describe block: its server, and clients stopped after each test. */
export interface PepFixture {
  /** The server, started before the block's first test and destroyed after its last. */
  readonly server: TestServer;
  /** `user` logged in (`login` above) as `resource`; stopped after the test. */
  connect(user: string, resource: string, password?: string): Promise<TestClient>;
  /** Stop the clients of the running test now (before a restart). */
  stopClients(): Promise<void>;
}

/**
 * The set-up of the PEP and PubSub e2e specs (call it inside `describe`): one server with the
 * accounts `users` for the whole block, clients logged in by `connect` and stopped after each test.
 */
export function pepFixture(users: readonly string[], options: PepFixtureOptions): PepFixture {
  let server: TestServer | undefined;
  const clients: TestClient[] = [];
  const stopClients = async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  };
  before(async function () {
    server = await startServer({
      users: Object.fromEntries(users.map((u) => [u, options.password])),
      config: { modulesEnabled: PEP_MODULES, ...options.config },
    });
  });
  afterEach(stopClients);
  after(async function () {
    await server?.destroy();
  });
  const fixture: PepFixture = {
    get server() {
      if (!server) throw new Error('pepFixture: no server outside the describe block\'s tests');
      return server;
    },
    async connect(user, resource, password = options.password) {
      const c = await login(fixture.server, user, password, { resource, presence: options.presence });
      clients.push(c);
      return c;
    },
    stopClients,
  };
  return fixture;
}
