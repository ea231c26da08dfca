// Federation tests: Cadence servers with mod_s2s on 127.0.0.1 (port 0), found through a DNS
// server the test starts on loopback (SRV `_xmpp-server._tcp.<domain>` → the listener's port, A →
// 127.0.0.1), so no test sends a DNS query off the machine.
import { DEFAULTS } from '../../core/config.ts';
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
