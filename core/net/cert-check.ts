// Certificate checks for `cadence check`: for each domain the server presents a certificate for
// (virtual hosts, components), what would fail at start or make peers refuse it:
//   error    the file is missing or unreadable, holds no certificate or key, the key is encrypted
//            or is not the certificate's, the certificate has expired or is not valid yet, or its
//            names do not cover the domain (RFC 6125 §6 as RFC 6120 §13.7.2 and XEP-0178 profile
//            it: DNS-ID with wildcards, SRV-ID, XmppAddr, CN only without SAN names)
//   warning  it expires within `warnDays`, it is self-signed, the file lacks the intermediate
//            certificates (Let's Encrypt's cert.pem instead of fullchain.pem) or has them out of
//            order, or other users may read the key
//   info     a self-signed certificate will be generated at first start (default location, no file yet)
import { X509Certificate } from 'node:crypto';
import { stat } from 'node:fs/promises';
import tls from 'node:tls';
import { verifyCertificateName, type NameMatch } from '../util/cert-names.ts';
import { certificatePaths, isSelfSigned, readCertificatePair, type CertConfig, type PairProblem } from './cert-files.ts';

export type CertFindingCode =
  | PairProblem
  | 'will-generate'
  | 'expired'
  | 'not-yet-valid'
  | 'expires-soon'
  | 'name-mismatch'
  | 'self-signed'
  | 'incomplete-chain'
  | 'chain-order'
  | 'key-permissions';

export interface CertFinding {
  severity: 'error' | 'warning' | 'info';
  code: CertFindingCode;
  message: string;
}

/** The XMPP services a certificate is presented to: clients (c2s) and/or servers (s2s). */
export type CertService = 'xmpp-client' | 'xmpp-server';

export interface CertCheckTarget {
  /** The domain the certificate must cover. */
  domain: string;
  certFile: string;
  keyFile: string;
  /** true: named by `tls` in the config (a missing file is an error); false: the default location. */
  configured: boolean;
  /** Who gets this certificate (default both): name checks use the SRV-ID of each (RFC 6120 §13.7.1.2). */
  services?: CertService[];
}

export interface CertCheckReport {
  domain: string;
  certFile: string;
  keyFile: string;
  /** No finding of severity error. */
  ok: boolean;
  findings: CertFinding[];
  notAfter?: Date;
  /** How the domain matched, per service. */
  matchedBy?: Partial<Record<CertService, NameMatch>>;
}

export interface CertCheckOptions {
  now?: Date;
  /** Warn when the certificate expires within this many days (default 14). */
  warnDays?: number;
}

const DAY = 86_400_000;

/** One target per configured host: virtual hosts for clients and servers, components for servers. */
export function certificateTargets(config: CertConfig & { hosts: readonly { name: string; kind: 'virtualhost' | 'component' }[] }): CertCheckTarget[] {
  return config.hosts.map((h) => ({
    domain: h.name,
    ...certificatePaths(config, h.name),
    services: h.kind === 'component' ? ['xmpp-server'] : ['xmpp-client', 'xmpp-server'],
  }));
}

export async function checkCertificates(targets: readonly CertCheckTarget[], options: CertCheckOptions = {}): Promise<CertCheckReport[]> {
  const out: CertCheckReport[] = [];
  for (const t of targets) out.push(await checkCertificate(t, options));
  return out;
}

export async function checkCertificate(target: CertCheckTarget, options: CertCheckOptions = {}): Promise<CertCheckReport> {
  const now = options.now ?? new Date();
  const warnDays = options.warnDays ?? 14;
  const findings: CertFinding[] = [];
  const report = (): CertCheckReport => ({
    domain: target.domain,
    certFile: target.certFile,
    keyFile: target.keyFile,
    ok: !findings.some((f) => f.severity === 'error'),
    findings,
    ...extra,
  });
  const extra: Partial<CertCheckReport> = {};

  const read = await readCertificatePair(target.certFile, target.keyFile);
  if (!read.ok) {
    if (read.problem === 'missing' && !target.configured) {
      findings.push({ severity: 'info', code: 'will-generate', message: `no certificate yet: a self-signed one will be generated at first start in ${target.certFile}` });
    } else {
      findings.push({ severity: 'error', code: read.problem, message: read.message });
    }
    return report();
  }
  const { leaf, chain } = read.pair;
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  extra.notAfter = notAfter;

  if (notAfter.getTime() <= now.getTime()) {
    findings.push({ severity: 'error', code: 'expired', message: `expired on ${notAfter.toISOString()}` });
  } else if (notBefore.getTime() > now.getTime()) {
    findings.push({ severity: 'error', code: 'not-yet-valid', message: `not valid before ${notBefore.toISOString()}` });
  } else {
    const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY);
    if (notAfter.getTime() - now.getTime() < warnDays * DAY) {
      findings.push({ severity: 'warning', code: 'expires-soon', message: `expires in ${days} day(s), on ${notAfter.toISOString()}` });
    }
  }

  const services = target.services ?? ['xmpp-client', 'xmpp-server'];
  const matchedBy: Partial<Record<CertService, NameMatch>> = {};
  const uncovered: CertService[] = [];
  for (const service of services) {
    const m = verifyCertificateName(leaf, target.domain, { service });
    if (m.ok) matchedBy[service] = m.matchedBy;
    else uncovered.push(service);
  }
  extra.matchedBy = matchedBy;
  if (uncovered.length) {
    const who = uncovered.map((s) => (s === 'xmpp-client' ? 'clients' : 'servers')).join(' and ');
    findings.push({
      severity: 'error',
      code: 'name-mismatch',
      message: `its names (${describeNames(leaf)}) do not cover ${target.domain}: ${who} will refuse it (RFC 6125)`,
    });
  }

  if (isSelfSigned(leaf)) {
    findings.push({ severity: 'warning', code: 'self-signed', message: 'self-signed: clients ask their users to accept it, and most servers refuse it for server-to-server streams' });
  } else {
    checkChain(chain, findings);
  }

  try {
    const st = await stat(target.keyFile);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      findings.push({ severity: 'warning', code: 'key-permissions', message: `other users may read the key ${target.keyFile} (mode ${(st.mode & 0o777).toString(8)}; use 600)` });
    }
  } catch {
    // read above: it exists
  }
  return report();
}

function describeNames(cert: X509Certificate): string {
  if (cert.subjectAltName) return cert.subjectAltName;
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  return cn ? `CN=${cn}` : 'none';
}

let rootSubjects: Set<string> | undefined;

/** Subjects of Node's bundled root CAs: a leaf issued directly by one needs no intermediate. */
function isRootSubject(name: string): boolean {
  if (!rootSubjects) {
    rootSubjects = new Set();
    for (const pem of tls.rootCertificates) {
      try {
        rootSubjects.add(new X509Certificate(pem).subject);
      } catch {
        // skip a root Node cannot parse
      }
    }
  }
  return rootSubjects.has(name);
}

function checkChain(chain: X509Certificate[], findings: CertFinding[]): void {
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!)) {
      findings.push({ severity: 'warning', code: 'chain-order', message: `certificate ${i + 2} in the file did not issue certificate ${i + 1}: the chain is out of order or holds unrelated certificates` });
      return;
    }
  }
  const last = chain[chain.length - 1]!;
  if (!isSelfSigned(last) && !isRootSubject(last.issuer) && chain.length === 1) {
    findings.push({
      severity: 'warning',
      code: 'incomplete-chain',
      message: `the file holds no intermediate certificate (issuer ${last.issuer.replace(/\n/g, ', ')}): unless that issuer is a root your peers trust, they cannot verify the chain — use the full chain (Let's Encrypt: fullchain.pem)`,
    });
  }
}
