// `cadence cert import DIR…` (as `prosodyctl cert import`): find, for each configured host, the
// certificate and key that serve it in directory trees other tools write, and copy them to
// `<dataDir>/certs/<host>.crt` and `.key` (the key mode 0600), where the server reads them.
//
// What is recognised, wherever it sits in the tree (symbolic links followed, as Let's Encrypt's
// live/ links point into archive/):
//   <name>/fullchain.pem + <name>/privkey.pem   Let's Encrypt (certbot, acme.sh --install-cert …)
//   <name>/cert.pem + <name>/privkey.pem        the same without the chain (used only if nothing better)
//   <name>.crt + <name>.key, <name>.pem + <name>.key, <name>.cer + <name>.key
//   <name>.pem holding both certificate and key
// A candidate serves a host when its key matches, it has not expired and its names cover the host
// by RFC 6125 rules (core/util/cert-names.ts) — so a wildcard `*.example.org` certificate or one
// for the parent domain listing `conference.example.org` serves that component. Among those:
// one named after the host first, then one named after a parent domain, then any other; then
// one with its chain; then the one valid longest.
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { verifyCertificateName, type NameMatch } from '../util/cert-names.ts';
import { defaultCertificatePaths, isSelfSigned, readCertificatePair, writeCertificatePair, type CertificatePair, type CertificatePaths } from '../net/cert-files.ts';

export type CertLayout = 'letsencrypt' | 'letsencrypt-no-chain' | 'crt-key' | 'combined-pem';

export interface CertCandidate {
  certFile: string;
  keyFile: string;
  layout: CertLayout;
  /** The name the files carry: the directory name (Let's Encrypt) or the file name without extension. */
  name: string;
}

export interface CertImportOptions {
  /** Directories to search. */
  dirs: readonly string[];
  /** The configured hosts (virtual hosts and components). */
  hosts: readonly string[];
  /** The server's data directory: files go to <dataDir>/certs/. */
  dataDir: string;
  /** Where the config reads a host's certificate (to warn when `tls` points elsewhere). */
  configuredPaths?: (host: string) => CertificatePaths;
  now?: Date;
  /** Report what would be done without writing. */
  dryRun?: boolean;
}

export interface CertImportResult {
  host: string;
  /**
   * imported: copied; unchanged: <dataDir>/certs already holds these files; not-found: no file
   * in the trees serves the host; failed: one was chosen but could not be written.
   */
  status: 'imported' | 'unchanged' | 'not-found' | 'failed';
  /** What was chosen. */
  source?: CertCandidate;
  /** Where it went (or would go). */
  target?: { certFile: string; keyFile: string };
  matchedBy?: NameMatch;
  notAfter?: Date;
  /** One line for the operator. */
  message: string;
  /** Candidates named after the host (or a parent) that were passed over, and why. */
  rejected: { candidate: CertCandidate; reason: string }[];
  /** Notes that do not stop the import (the config reads another file, a self-signed certificate, …). */
  warnings: string[];
}

/** Limits of the directory walk: a mistyped `/` must not read the whole disk. */
const MAX_DEPTH = 8;
const MAX_ENTRIES = 20_000;

export async function importCertificates(opts: CertImportOptions): Promise<CertImportResult[]> {
  const now = opts.now ?? new Date();
  const candidates: CertCandidate[] = [];
  for (const dir of opts.dirs) candidates.push(...(await findCandidates(dir)));
  const parsed = new Map<CertCandidate, Awaited<ReturnType<typeof readCertificatePair>>>();
  const pairOf = async (c: CertCandidate) => {
    let r = parsed.get(c);
    if (!r) {
      r = await readCertificatePair(c.certFile, c.keyFile);
      parsed.set(c, r);
    }
    return r;
  };

  const results: CertImportResult[] = [];
  for (const host of opts.hosts) {
    const rejected: CertImportResult['rejected'] = [];
    const usable: { c: CertCandidate; pair: CertificatePair; matchedBy: NameMatch; rank: number }[] = [];
    for (const c of candidates) {
      const rank = nameRank(c.name, host);
      const r = await pairOf(c);
      if (!r.ok) {
        if (rank < 2) rejected.push({ candidate: c, reason: r.message });
        continue;
      }
      const leaf = r.pair.leaf;
      const m = verifyCertificateName(leaf, host, { service: 'xmpp-client' });
      if (!m.ok) {
        if (rank < 2) rejected.push({ candidate: c, reason: `its names (${leaf.subjectAltName ?? leaf.subject.replace(/\n/g, ', ')}) do not cover ${host}` });
        continue;
      }
      if (new Date(leaf.validTo).getTime() <= now.getTime()) {
        if (rank < 2) rejected.push({ candidate: c, reason: `expired on ${new Date(leaf.validTo).toISOString()}` });
        continue;
      }
      usable.push({ c, pair: r.pair, matchedBy: m.matchedBy, rank });
    }
    usable.sort(
      (a, b) =>
        a.rank - b.rank ||
        layoutRank(a.c.layout, a.pair) - layoutRank(b.c.layout, b.pair) ||
        new Date(b.pair.leaf.validTo).getTime() - new Date(a.pair.leaf.validTo).getTime(),
    );
    const best = usable[0];
    if (!best) {
      results.push({ host, status: 'not-found', message: `no certificate for ${host} in ${opts.dirs.join(', ')}`, rejected, warnings: [] });
      continue;
    }
    const target = defaultCertificatePaths(opts.dataDir, host);
    const warnings: string[] = [];
    const configured = opts.configuredPaths?.(host);
    if (configured?.configured) {
      warnings.push(`the config reads ${configured.certFile} for ${host} (tls): remove that option for the imported files to be used`);
    }
    if (isSelfSigned(best.pair.leaf)) warnings.push('the certificate is self-signed');
    if (best.pair.chain.length === 1 && !isSelfSigned(best.pair.leaf)) warnings.push('the file holds no intermediate certificate (use fullchain.pem where there is one)');
    const base = { host, source: best.c, target, matchedBy: best.matchedBy, notAfter: new Date(best.pair.leaf.validTo), rejected, warnings };
    const from = best.c.certFile === best.c.keyFile ? best.c.certFile : `${best.c.certFile} + ${path.basename(best.c.keyFile)}`;
    if (await sameContent(target, best.pair)) {
      results.push({ ...base, status: 'unchanged', message: `${host}: ${target.certFile} already holds ${from}` });
      continue;
    }
    if (opts.dryRun) {
      results.push({ ...base, status: 'imported', message: `${host}: would copy ${from} to ${target.certFile}` });
      continue;
    }
    try {
      await writeCertificatePair(target, best.pair);
      results.push({ ...base, status: 'imported', message: `${host}: ${from} → ${target.certFile} (valid until ${base.notAfter.toISOString()})` });
    } catch (err) {
      results.push({ ...base, status: 'failed', message: `${host}: cannot write ${target.certFile}: ${(err as Error).message}` });
    }
  }
  return results;
}

/** 0: named after the host; 1: after a parent domain (or `_wildcard.`/`*.` of one); 2: anything else. */
function nameRank(name: string, host: string): number {
  const n = name.toLowerCase().replace(/^(\*|_wildcard)\./, '');
  if (name.toLowerCase() === host) return 0;
  if (host.endsWith(`.${n}`) || n === host) return 1;
  return 2;
}

function layoutRank(layout: CertLayout, pair: CertificatePair): number {
  // A file with the chain beats one without; Let's Encrypt's fullchain beats a same-rank .crt.
  const chain = pair.chain.length > 1 ? 0 : 2;
  return chain + (layout === 'letsencrypt' ? 0 : layout === 'letsencrypt-no-chain' ? 1 : 0.5);
}

/** All candidates under `root` (depth- and size-bounded, each real directory visited once). */
export async function findCandidates(root: string): Promise<CertCandidate[]> {
  const out: CertCandidate[] = [];
  const seen = new Set<string>();
  let entries = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    let real: string;
    try {
      real = await realpath(dir);
    } catch {
      return;
    }
    if (seen.has(real) || depth > MAX_DEPTH) return;
    seen.add(real);
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return;
    }
    entries += names.length;
    if (entries > MAX_ENTRIES) return;
    const files = new Set<string>();
    const subdirs: string[] = [];
    for (const name of names) {
      const full = path.join(dir, name);
      try {
        const st = await stat(full); // follows links
        if (st.isDirectory()) subdirs.push(full);
        else if (st.isFile()) files.add(name);
      } catch {
        // dangling link
      }
    }
    const dirName = path.basename(dir);
    if (files.has('privkey.pem')) {
      if (files.has('fullchain.pem')) out.push({ certFile: path.join(dir, 'fullchain.pem'), keyFile: path.join(dir, 'privkey.pem'), layout: 'letsencrypt', name: dirName });
      else if (files.has('cert.pem')) out.push({ certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'privkey.pem'), layout: 'letsencrypt-no-chain', name: dirName });
    }
    for (const file of files) {
      const ext = path.extname(file);
      const stem = file.slice(0, -ext.length);
      if (!stem || ['fullchain', 'privkey', 'cert', 'chain'].includes(stem)) continue;
      if (ext === '.crt' || ext === '.cer' || ext === '.pem') {
        if (files.has(`${stem}.key`)) {
          out.push({ certFile: path.join(dir, file), keyFile: path.join(dir, `${stem}.key`), layout: 'crt-key', name: stem });
        } else if (ext === '.pem' && (await holdsPair(path.join(dir, file)))) {
          out.push({ certFile: path.join(dir, file), keyFile: path.join(dir, file), layout: 'combined-pem', name: stem });
        }
      }
    }
    for (const sub of subdirs) await walk(sub, depth + 1);
  };
  await walk(root, 0);
  return out;
}

/** A .pem with both a certificate and a private key (a key alone is no candidate). */
async function holdsPair(file: string): Promise<boolean> {
  try {
    const st = await stat(file);
    if (st.size > 1024 * 1024) return false;
    const text = await readFile(file, 'utf8');
    return text.includes('-----BEGIN CERTIFICATE-----') && /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.test(text);
  } catch {
    return false;
  }
}

async function sameContent(target: { certFile: string; keyFile: string }, pair: CertificatePair): Promise<boolean> {
  try {
    const [c, k] = await Promise.all([readFile(target.certFile, 'utf8'), readFile(target.keyFile, 'utf8')]);
    return c === pair.certPem && k === pair.keyPem;
  } catch {
    return false;
  }
}
