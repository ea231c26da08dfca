// Federation tests: Cadence servers with mod_s2s on 127.0.0.1 (port 0), found through a DNS
// server the test starts on loopback (SRV `_xmpp-server._tcp.<domain>` → the listener's port, A →
// 127.0.0.1), so no test sends a DNS query off the machine.
import { client as xmppClient } from '@xmpp/client';
import { DEFAULTS } from '../../core/config.ts';
import { RawClient, TestClient, xml, type Element } from './client.ts';
import { startDnsServer, type TestDnsServer } from './dns-server.ts';
import { startServer, type TestServer } from './server.ts';

/** The port of a started server's listener `name` ('s2s', 's2s_direct_tls'). */
export function listenerPort(server: TestServer, name: string): number {
  const entry = server.addresses.find((a) => a.startsWith(`${name}=`));
  if (!entry) throw new Error(`no ${name} listener in ${server.addresses.join(' ')}`);
  return Number(entry.slice(entry.lastIndexOf(':') + 1));
}

/** Publish a server's s2s listener for its domain on the test DNS server. */
export function publish(dns: TestDnsServer, domain: string, port: number, directTls = false): void {
  dns.set(`_${directTls ? 'xmpps' : 'xmpp'}-server._tcp.${domain}`, [{ type: 'SRV', priority: 0, weight: 0, port, target: domain }]);
  dns.set(domain, [{ type: 'A', address: '127.0.0.1' }]);
}

export interface FederatedServerOptions {
  host: string;
  dns: TestDnsServer;
  users?: Record<string, string>;
  config?: Record<string, unknown>;
  /** Publish the listener in DNS once started (default true). */
  publish?: boolean;
}

/** A Cadence server for `host` with mod_s2s, resolving through the test DNS server. */
export async function startFederated(opts: FederatedServerOptions): Promise<TestServer> {
  const server = await startServer({
    host: opts.host,
    users: opts.users,
    config: {
      modulesEnabled: [...DEFAULTS.modulesEnabled, 's2s'],
      s2sPorts: [0],
      dnsServers: [opts.dns.address],
      ...opts.config,
    },
  });
  if (opts.publish !== false) publish(opts.dns, opts.host, listenerPort(server, 's2s'));
  return server;
}

const NS_ROSTER = 'jabber:iq:roster';

const isMessage = (from: string, body: string) => (s: Element) => s.name === 'message' && s.attrs.from?.toString().startsWith(from) && s.getChildText('body') === body;

/** Both users subscribe to each other and see each other's presence; messages go both ways. */
export async function federate(alice: TestClient, bob: TestClient): Promise<void> {
  await alice.send(xml('message', { to: bob.bare, type: 'chat' }, xml('body', {}, 'hello from a')));
  await bob.expect(isMessage(alice.bare, 'hello from a'), 15000);
  await bob.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'hello from b')));
  await alice.expect(isMessage(bob.bare, 'hello from b'), 15000);

  // Subscriptions both ways (RFC 6121 §3), across the servers.
  await alice.send(xml('presence', { to: bob.bare, type: 'subscribe' }));
  await bob.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === alice.bare, 15000);
  await bob.send(xml('presence', { to: alice.bare, type: 'subscribed' }));
  await alice.expect((s) => s.name === 'iq' && s.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.subscription === 'to', 15000);
  await bob.send(xml('presence', { to: alice.bare, type: 'subscribe' }));
  await alice.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === bob.bare, 15000);
  await alice.send(xml('presence', { to: bob.bare, type: 'subscribed' }));
  await bob.expect((s) => s.name === 'iq' && s.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.subscription === 'both', 15000);

  // Presence: each sees the other come online.
  await alice.send(xml('presence', {}, xml('status', {}, 'alice here')));
  await bob.expect((s) => s.name === 'presence' && s.attrs.type === undefined && s.attrs.from === alice.jid && s.getChildText('status') === 'alice here', 15000);
  await bob.send(xml('presence', {}, xml('status', {}, 'bob here')));
  await alice.expect((s) => s.name === 'presence' && s.attrs.type === undefined && s.attrs.from === bob.jid && s.getChildText('status') === 'bob here', 15000);
}


/** Log in to any server (a peer on its own loopback address) with @xmpp/client's defaults; sends presence and asks for the roster. */
export async function loginAt(address: string, port: number, domain: string, username: string, password: string): Promise<TestClient> {
  const xmpp = xmppClient({ service: `xmpp://${address}:${port}`, domain, username, password });
  xmpp.reconnect.stop();
  // A peer's first stream under load can take longer than @xmpp/connection's 2 s default.
  (xmpp as unknown as { timeout: number }).timeout = 20_000;
  const c = new TestClient(xmpp, `${username}@${domain}`);
  c.jid = (await xmpp.start()).toString();
  await c.send(xml('presence'));
  await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
  return c;
}

/** What `federationFixture` gives a test: the DNS server of this test, and servers and users it stops afterwards. */
export interface FederationFixture {
  /** The loopback DNS server of the running test (new for each test). */
  readonly dns: TestDnsServer;
  /** The servers started in this test (their output is printed when it fails). */
  readonly servers: TestServer[];
  /** A federated server for `host` (published in DNS unless `publish: false`), stopped after the test. */
  start(host: string, config?: Record<string, unknown>, users?: Record<string, string>, options?: { publish?: boolean }): Promise<TestServer>;
  /** A user of `server` (on `domain`, default its host) logged in with the fixture's password (available, roster asked), stopped after the test. */
  user(server: TestServer, name: string, domain?: string): Promise<TestClient>;
  /** Run `cleanup` after the test (raw peers, fake servers). */
  after(cleanup: () => unknown): void;
}

/**
 * The federation fixture of the s2s e2e specs (call it inside `describe`): a loopback DNS server per
 * test, Cadence servers started through `startFederated`, users logged in with `password`; after each
 * test everything is stopped, and the servers' output printed when the test failed.
 */
export function federationFixture(password: string): FederationFixture {
  let dns: TestDnsServer | undefined;
  const servers: TestServer[] = [];
  const clients: TestClient[] = [];
  const cleanups: (() => unknown)[] = [];
  beforeEach(async () => {
    dns = await startDnsServer();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const s of servers) console.log(`---- ${s.host}\n${s.output}`);
    for (const c of cleanups.splice(0)) await c();
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(servers.splice(0).map((s) => s.destroy()));
    await dns?.close();
    dns = undefined;
  });
  const fixture: FederationFixture = {
    get dns() {
      if (!dns) throw new Error('federationFixture: no DNS server outside a test');
      return dns;
    },
    servers,
    async start(host, config = {}, users = {}, options = {}) {
      const server = await startFederated({ host, dns: fixture.dns, users, config, publish: options.publish });
      servers.push(server);
      return server;
    },
    async user(server, name, domain = server.host) {
      const c = await loginAt('127.0.0.1', server.c2sPort, domain, name, password);
      clients.push(c);
      return c;
    },
    after(cleanup) {
      cleanups.push(cleanup);
    },
  };
  return fixture;
}

/** An s2s stream header from `from` to `to` (jabber:server with the dialback prefix). */
export const s2sHeader = (from: string, to: string, extra = ''): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='${from}' to='${to}' version='1.0'${extra}>`;

/** A raw peer server on an encrypted s2s stream: the features before and after STARTTLS. */
export interface RawPeer {
  peer: RawClient;
  plainFeatures: Element;
  features: Element;
}

/**
 * A hand-driven remote server: connects to `server`'s s2s listener as `from` presenting `cert`,
 * opens a stream to `to`, negotiates STARTTLS and opens the stream again. Closed after the test
 * through `fixture.after`.
 */
export async function rawPeer(fixture: FederationFixture, server: TestServer, cert: { cert: string; key: string }, from: string, to: string): Promise<RawPeer> {
  const peer = await RawClient.connect(listenerPort(server, 's2s'), { tls: { cert: cert.cert, key: cert.key } });
  fixture.after(() => peer.close());
  peer.write(s2sHeader(from, to));
  const plainFeatures = await peer.expect((el) => el.name === 'stream:features');
  peer.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
  await peer.expect((el) => el.name === 'proceed');
  await peer.upgradeTls(to);
  peer.write(s2sHeader(from, to));
  const features = await peer.expect((el) => el.name === 'stream:features');
  return { peer, plainFeatures, features };
}

/** SASL EXTERNAL on a raw peer's stream (after `<bidi/>` when asked), then the stream restart. */
export async function rawPeerExternal(peer: RawClient, from: string, to: string, options: { bidi?: boolean } = {}): Promise<void> {
  peer.write(`${options.bidi ? "<bidi xmlns='urn:xmpp:bidi'/>" : ''}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`);
  await peer.expect((el) => el.name === 'success');
  peer.resetParser();
  peer.write(s2sHeader(from, to));
  await peer.expect((el) => el.name === 'stream:features');
}
