// `cadence check`, federation part (when the s2s module is enabled): this server's own SRV records
// (`_xmpp-server._tcp` and `_xmpps-server._tcp` of each host, asked through the configured
// resolver, `dnsServers`) and whether each host's certificate covers its domain for s2s
// (RFC 6125 / XEP-0178 names; components are covered by their own or their parent's certificate).
import { existsSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { Config } from '../config.ts';
import { certificatePaths } from '../net/cert-files.ts';
import { Resolver, parseS2sRoutes, resolveS2sTargets } from '../net/dns.ts';
import { verifyCertificateName } from '../util/cert-names.ts';

/** Lines to print and the number of problems. */
export async function checkS2s(config: Config, hosts: readonly string[]): Promise<{ lines: string[]; problems: number }> {
  const lines: string[] = [];
  let problems = 0;
  const servers = config.get<string[]>(undefined, 'dnsServers');
  const resolver = new Resolver({ servers, attempts: 1, timeoutMs: 2000 });
  const routes = parseS2sRoutes(config.get(undefined, 's2sRoutes'));
  if (!routes.ok) {
    for (const e of routes.errors) lines.push(`  ! ${e}`);
    problems += routes.errors.length;
  }
  for (const host of hosts) {
    // Certificate coverage: the host's certificate, else its parent's (as the CertManager looks them up).
    let certHost: string | undefined = host;
    let file: string | undefined;
    while (certHost) {
      const p = certificatePaths(config, certHost).certFile;
      if (existsSync(p)) {
        file = p;
        break;
      }
      const dot: number = certHost.indexOf('.');
      certHost = dot < 0 ? undefined : certHost.slice(dot + 1);
    }
    if (!file) {
      lines.push(`  - s2s ${host}: no certificate yet (a self-signed one is made at first start: peers will accept dialback only)`);
    } else {
      try {
        const check = verifyCertificateName(new X509Certificate(readFileSync(file)), host);
        if (check.ok) lines.push(`  + s2s ${host}: certificate ${file} covers it (${check.matchedBy} ${check.presented})`);
        else {
          lines.push(`  ! s2s ${host}: certificate ${file} does not cover it (${check.reason}): peers will refuse SASL EXTERNAL`);
          problems++;
        }
      } catch (err) {
        lines.push(`  ! s2s ${host}: certificate ${file} unreadable: ${(err as Error).message}`);
        problems++;
      }
    }
    // Own SRV records, as a peer would find them.
    const r = await resolveS2sTargets(host, { resolver, routes: new Map() });
    if (!r.ok) {
      lines.push(`  ! s2s ${host}: ${r.detail}`);
      problems++;
    } else {
      const t = r.targets;
      if (t.length === 1 && t[0]!.source === 'fallback') lines.push(`  - s2s ${host}: no _xmpp-server/_xmpps-server SRV records; peers will try ${host}:5269`);
      else lines.push(`  + s2s ${host}: SRV ${t.map((x) => `${x.host}:${x.port}${x.directTls ? ' (direct TLS)' : ''}${x.secure ? ' (DNSSEC)' : ''}`).join(', ')}`);
    }
  }
  return { lines, problems };
}
