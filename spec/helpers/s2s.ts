// Federation tests: Cadence servers with mod_s2s on 127.0.0.1 (port 0), found through a DNS
// server the test starts on loopback (SRV `_xmpp-server._tcp.<domain>` → the listener's port, A →
// 127.0.0.1), so no test sends a DNS query off the machine.
import { client as xmppClient } from '@xmpp/client';
import { DEFAULTS } from '../../core/config.ts';
import { TestClient, xml, type Element } from './client.ts';
import type { TestDnsServer } from './dns-server.ts';
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
  const c = new TestClient(xmpp, `${username}@${domain}`);
  c.jid = (await xmpp.start()).toString();
  await c.send(xml('presence'));
  await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
  return c;
}
