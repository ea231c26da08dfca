// TLS certificates per host: the configured `tls.certificate`/`tls.key` (host, else global), or a
// self-signed certificate generated on first start into <dataDir>/certs/<host>.{crt,key}.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import selfsigned from 'selfsigned';
import type { Config } from '../config.ts';
import { CoreError } from '../util/errors.ts';
import { getLogger } from '../util/log.ts';

const log = getLogger('core:certmanager');

export class CertManager {
  private readonly contexts = new Map<string, tls.SecureContext>();
  private defaultHost: string | undefined;
  private defaultPem: { cert: Buffer; key: Buffer } | undefined;

  constructor(private readonly config: Config) {}

  /** Load or create the certificate of every host. */
  async init(hosts: string[]): Promise<void> {
    for (const host of hosts) await this.addHost(host);
  }

  async addHost(host: string): Promise<void> {
    const tlsCfg = this.config.get<{ certificate?: string; key?: string }>(host, 'tls');
    let certFile: string;
    let keyFile: string;
    if (tlsCfg?.certificate && tlsCfg.key) {
      certFile = path.resolve(this.config.baseDir, tlsCfg.certificate);
      keyFile = path.resolve(this.config.baseDir, tlsCfg.key);
    } else {
      const dir = path.join(this.config.dataDir, 'certs');
      certFile = path.join(dir, `${host}.crt`);
      keyFile = path.join(dir, `${host}.key`);
      if (!existsSync(certFile) || !existsSync(keyFile)) await generate(host, dir, certFile, keyFile);
    }
    try {
      const pem = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
      const ctx = tls.createSecureContext({ ...pem, minVersion: 'TLSv1.2' });
      this.contexts.set(host, ctx);
      if (!this.defaultHost) {
        this.defaultHost = host;
        this.defaultPem = pem;
      }
    } catch (err) {
      throw new CoreError('TLS_FAILED', `cannot load the certificate of ${host} (${certFile}, ${keyFile}): ${(err as Error).message}`);
    }
  }

  /** The context for a host; subdomains fall back to their parent's certificate. */
  context(host: string | undefined): tls.SecureContext | undefined {
    if (host) {
      let h: string = host;
      for (;;) {
        const c = this.contexts.get(h);
        if (c) return c;
        const dot = h.indexOf('.');
        if (dot < 0) break;
        h = h.slice(dot + 1);
      }
    }
    return this.defaultHost ? this.contexts.get(this.defaultHost) : undefined;
  }

  /** Certificate for clients that send no SNI (direct TLS listeners). */
  get fallback(): { cert: Buffer; key: Buffer } | undefined {
    return this.defaultPem;
  }

  /** For tls.Server's SNICallback. */
  sni = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    cb(null, this.context(servername.toLowerCase()));
  };
}

async function generate(host: string, dir: string, certFile: string, keyFile: string): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  log.info('generating a self-signed certificate for %s in %s', host, dir);
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
