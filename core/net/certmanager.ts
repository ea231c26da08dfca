// TLS certificates per host: the configured `tls.certificate`/`tls.key` (host, else global), or a
// self-signed certificate generated on first start into <dataDir>/certs/<host>.{crt,key}.
//
// Listeners never keep a certificate of their own: SNI, STARTTLS and the no-SNI fallback all ask
// this manager per connection (or are told by onChange), so reload() — re-reading every host's
// files — changes what new connections get while established ones keep theirs. A pair that fails
// to load on reload (missing, garbled, key not matching) leaves the host's previous certificate
// in place and is reported; nothing is ever regenerated behind the operator's back.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { Config } from '../config.ts';
import { CoreError } from '../util/errors.ts';
import { getLogger } from '../util/log.ts';
import { certificatePaths, isSelfSigned, readCertificatePair, type CertificatePair, type PairProblem } from './cert-files.ts';

const log = getLogger('core:certmanager');

/** What a host presents now. */
export interface CertInfo {
  host: string;
  certFile: string;
  keyFile: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprint of the leaf, colon-separated hex (as openssl and Node print it). */
  fingerprint256: string;
  /** The leaf's subjectAltName as Node renders it ('DNS:a.example, DNS:*.a.example'). */
  subjectAltName: string | undefined;
  /** When this pair was loaded. */
  loadedAt: Date;
  /** Issued by itself (the pair generated at first start, or the operator's own). */
  selfSigned: boolean;
}

export interface CertReloadResult {
  host: string;
  /** updated: new files in use; unchanged: the same certificate and key as before; failed: the previous pair stays. */
  status: 'updated' | 'unchanged' | 'failed';
  certFile: string;
  keyFile: string;
  /** Why it failed (failed only). */
  problem?: PairProblem | 'tls';
  error?: string;
  /** The certificate in use after the reload: the new one, or the one kept. */
  notAfter?: Date;
}

interface Entry {
  pair: CertificatePair;
  context: tls.SecureContext;
  loadedAt: Date;
}

export class CertManager {
  private readonly entries = new Map<string, Entry>();
  private readonly changeListeners = new Set<() => void>();
  private readonly alpnChallenges = new Map<string, tls.SecureContext>();
  private defaultHost: string | undefined;
  private readonly currentConfig: () => Config;
  private reloading: Promise<unknown> = Promise.resolve();

  /** `config` may be a getter, so that a config reload changes where reload() looks. */
  constructor(config: Config | (() => Config)) {
    this.currentConfig = typeof config === 'function' ? config : () => config;
  }

  /** Load or create the certificate of every host. */
  async init(hosts: string[]): Promise<void> {
    for (const host of hosts) await this.addHost(host);
  }

  async addHost(host: string): Promise<void> {
    const config = this.currentConfig();
    const { certFile, keyFile, configured } = certificatePaths(config, host);
    if (!configured && (!existsSync(certFile) || !existsSync(keyFile))) await generate(host, certFile, keyFile);
    const result = await readCertificatePair(certFile, keyFile);
    if (!result.ok) throw new CoreError('TLS_FAILED', `cannot load the certificate of ${host}: ${result.message}`);
    let context: tls.SecureContext;
    try {
      context = secureContext(result.pair);
    } catch (err) {
      throw new CoreError('TLS_FAILED', `cannot load the certificate of ${host} (${certFile}, ${keyFile}): ${(err as Error).message}`);
    }
    this.entries.set(host, { pair: result.pair, context, loadedAt: new Date() });
    this.defaultHost ??= host;
  }

  /**
   * Re-read the certificate and key of every host (or of `hosts`). Each host is done on its own:
   * one bad pair never keeps the others from updating. Listeners registered with onChange() are
   * told once at the end when anything changed. Reloads run one at a time.
   */
  reload(hosts?: string[]): Promise<CertReloadResult[]> {
    const run = this.reloading.then(() => this.doReload(hosts ?? [...this.entries.keys()]));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async doReload(hosts: string[]): Promise<CertReloadResult[]> {
    const config = this.currentConfig();
    const results: CertReloadResult[] = [];
    let changed = false;
    for (const host of hosts) {
      const { certFile, keyFile } = certificatePaths(config, host);
      const old = this.entries.get(host);
      const keep = (problem: PairProblem | 'tls', error: string): void => {
        results.push({ host, status: 'failed', certFile, keyFile, problem, error, notAfter: old ? new Date(old.pair.leaf.validTo) : undefined });
        log.warn('certificate of %s not reloaded: %s%s', host, error, old ? ` (still using ${old.pair.certFile}, valid until ${old.pair.leaf.validTo})` : '');
      };
      if (!old) {
        keep('missing', `${host} is not a host of this server`);
        continue;
      }
      const read = await readCertificatePair(certFile, keyFile);
      if (!read.ok) {
        keep(read.problem, read.message);
        continue;
      }
      const pair = read.pair;
      if (pair.certPem === old.pair.certPem && pair.keyPem === old.pair.keyPem && certFile === old.pair.certFile && keyFile === old.pair.keyFile) {
        results.push({ host, status: 'unchanged', certFile, keyFile, notAfter: new Date(pair.leaf.validTo) });
        continue;
      }
      let context: tls.SecureContext;
      try {
        context = secureContext(pair);
      } catch (err) {
        keep('tls', `TLS refuses the pair ${certFile}, ${keyFile}: ${(err as Error).message}`);
        continue;
      }
      this.entries.set(host, { pair, context, loadedAt: new Date() });
      changed = true;
      results.push({ host, status: 'updated', certFile, keyFile, notAfter: new Date(pair.leaf.validTo) });
      log.info('certificate of %s reloaded from %s (%s, valid until %s)', host, certFile, pair.leaf.fingerprint256.slice(0, 23), pair.leaf.validTo);
    }
    if (changed) this.notifyChange();
    return results;
  }

  /** Called after a reload changed a certificate (listeners that hold a default context refresh it). */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private notifyChange(): void {
    for (const l of this.changeListeners) {
      try {
        l();
      } catch (err) {
        log.error('certificate change listener failed: %s', err);
      }
    }
  }

  /** The context for a host; subdomains fall back to their parent's certificate. */
  context(host: string | undefined): tls.SecureContext | undefined {
    if (host) {
      let h: string = host;
      for (;;) {
        const c = this.entries.get(h);
        if (c) return c.context;
        const dot = h.indexOf('.');
        if (dot < 0) break;
        h = h.slice(dot + 1);
      }
    }
    return this.defaultHost ? this.entries.get(this.defaultHost)?.context : undefined;
  }

  /** The PEM pair for a host, looked up like context() (s2s builds contexts of its own with it). */
  pem(host: string | undefined): { cert: string; key: string } | undefined {
    if (host) {
      let h: string = host;
      for (;;) {
        const c = this.entries.get(h);
        if (c) return { cert: c.pair.certPem, key: c.pair.keyPem };
        const dot = h.indexOf('.');
        if (dot < 0) break;
        h = h.slice(dot + 1);
      }
    }
    return this.fallback;
  }

  /** Certificate for clients that send no SNI (direct TLS listeners): the first host's, as loaded now. */
  get fallback(): { cert: string; key: string } | undefined {
    const e = this.defaultHost ? this.entries.get(this.defaultHost) : undefined;
    return e ? { cert: e.pair.certPem, key: e.pair.keyPem } : undefined;
  }

  /** For tls.Server's SNICallback. */
  sni = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    cb(null, this.context(servername.toLowerCase()));
  };

  /** The hosts that have a certificate. */
  hosts(): string[] {
    return [...this.entries.keys()];
  }

  /** What `host` presents now (no parent fallback). */
  info(host: string): CertInfo | undefined {
    const e = this.entries.get(host);
    if (!e) return undefined;
    const leaf = e.pair.leaf;
    return {
      host,
      certFile: e.pair.certFile,
      keyFile: e.pair.keyFile,
      subject: leaf.subject,
      issuer: leaf.issuer,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      fingerprint256: leaf.fingerprint256,
      subjectAltName: leaf.subjectAltName,
      loadedAt: e.loadedAt,
      selfSigned: isSelfSigned(leaf),
    };
  }

  // ---- TLS-ALPN-01 (RFC 8737): the challenge certificate presented to `acme-tls/1` handshakes ----

  /** Present `pem` to handshakes that ask for `host` with ALPN `acme-tls/1` (core/net/acme-tls-alpn.ts). */
  setAlpnChallenge(host: string, pem: { cert: string; key: string }): void {
    this.alpnChallenges.set(host.toLowerCase(), tls.createSecureContext({ ...pem, minVersion: 'TLSv1.2' }));
  }

  clearAlpnChallenge(host: string): void {
    this.alpnChallenges.delete(host.toLowerCase());
  }

  /** The challenge context for an SNI name, if a TLS-ALPN-01 validation of it is under way. */
  alpnChallenge(servername: string): tls.SecureContext | undefined {
    return this.alpnChallenges.get(servername.toLowerCase().replace(/\.$/, ''));
  }

  /** Whether any validation is under way (listeners inspect ClientHellos only then). */
  get alpnChallengesPending(): boolean {
    return this.alpnChallenges.size > 0;
  }
}

function secureContext(pair: CertificatePair): tls.SecureContext {
  return tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem, minVersion: 'TLSv1.2' });
}

async function generate(host: string, certFile: string, keyFile: string): Promise<void> {
  const dir = path.dirname(certFile);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  log.info('generating a self-signed certificate for %s in %s', host, dir);
  // Loaded only here: selfsigned and its X.509 libraries are a large part of an idle server's memory.
  const { default: selfsigned } = await import('selfsigned');
  const now = new Date();
  const pems = await selfsigned.generate([{ name: 'commonName', value: host }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 86_400_000),
    notAfterDate: new Date(now.getTime() + 5 * 365 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: host }, { type: 2, value: `*.${host}` }] },
    ],
  });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  writeFileSync(certFile, pems.cert, { mode: 0o644 });
}
