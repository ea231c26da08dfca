// Certificates for server-to-server tests, made with the openssl CLI (as spec/helpers/testca.ts
// does for clients): a root CA, intermediates, and server certificates with exactly the names a
// test needs — DNS-IDs, SRV-IDs (otherName id-on-dnsSRV), XmppAddrs (otherName id-on-xmppAddr),
// URIs, a subject CN — or none, self-signed or expired. Files live in a temporary directory
// removed when the process exits.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface CertSpec {
  /** Subject commonName (omitted: the subject is only O=Cadence tests). */
  cn?: string;
  dns?: string[];
  /** id-on-xmppAddr values (UTF-8). */
  xmppAddrs?: string[];
  /** id-on-dnsSRV values, e.g. `_xmpp-server.example.org`. */
  srvNames?: string[];
  uris?: string[];
  /** A CA certificate (to issue others with). */
  ca?: boolean;
  /** notAfter in the past. */
  expired?: boolean;
  /** An explicit subjectKeyIdentifier (hex, `aa:bb:…`) instead of the key's hash. */
  subjectKeyId?: string;
}

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  /** PEM of this certificate. */
  cert: string;
  key: string;
  x509: X509Certificate;
  der: Buffer;
  /** PEM of this certificate followed by its issuers up to (not including) the root. */
  chain: string;
  /** Leaf first, the same certificates as `chain`. */
  chainDer: Buffer[];
}

let counter = 0;

export class S2sTestPki {
  readonly dir: string;
  readonly root: IssuedCert;

  private constructor(dir: string, root: IssuedCert) {
    this.dir = dir;
    this.root = root;
  }

  /** A new root CA in a fresh temporary directory. */
  static create(name = 'Cadence s2s test CA'): S2sTestPki {
    const dir = mkdtempSync(path.join(tmpdir(), 'cadence-s2s-pki-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const root = makeCert(dir, { cn: name, ca: true }, undefined);
    return new S2sTestPki(dir, root);
  }

  /** A certificate signed by `issuer` (default: the root). */
  issue(spec: CertSpec, issuer: IssuedCert = this.root): IssuedCert {
    return makeCert(this.dir, spec, issuer === this.root ? { ...issuer, chain: '', chainDer: [] } : issuer);
  }

  /** A self-signed certificate (no CA involved). */
  selfSigned(spec: CertSpec): IssuedCert {
    return makeCert(this.dir, spec, undefined);
  }
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function extensions(spec: CertSpec): string {
  // A section of numbered entries: there a comma inside a value (FORMAT:UTF8,UTF8:…) is no separator.
  const san = [
    ...(spec.dns ?? []).map((d, i) => `DNS.${i}=${d}`),
    ...(spec.xmppAddrs ?? []).map((x, i) => `otherName.${i}=1.3.6.1.5.5.7.8.5;FORMAT:UTF8,UTF8:${x}`),
    ...(spec.srvNames ?? []).map((s, i) => `otherName.${100 + i}=1.3.6.1.5.5.7.8.7;IA5:${s}`),
    ...(spec.uris ?? []).map((u, i) => `URI.${i}=${u}`),
  ];
  const lines = spec.ca
    ? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']
    : ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth,clientAuth'];
  if (san.length) lines.push('subjectAltName=@alt');
  lines.push(`subjectKeyIdentifier=${spec.subjectKeyId ?? 'hash'}`);
  return `[req]\ndistinguished_name=dn\n[dn]\n[v3]\n${lines.join('\n')}\n[alt]\n${san.join('\n')}\n`;
}

function makeCert(dir: string, spec: CertSpec, issuer: IssuedCert | undefined): IssuedCert {
  const base = `c${++counter}`;
  const file = (ext: string) => path.join(dir, `${base}.${ext}`);
  writeFileSync(file('cnf'), extensions(spec));
  const subject = spec.cn ? `/O=Cadence tests/CN=${spec.cn}` : '/O=Cadence tests';
  const days = spec.expired ? '-1' : '2';
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file('key')]);
  openssl(dir, ['req', '-new', '-utf8', '-key', file('key'), '-subj', subject, '-config', file('cnf'), '-out', file('csr')]);
  // Self-signed with -key; `-days -1` puts notAfter a day in the past.
  const signer = issuer ? ['-CA', issuer.certFile, '-CAkey', issuer.keyFile] : ['-key', file('key')];
  openssl(dir, ['x509', '-req', '-in', file('csr'), ...signer, '-extfile', file('cnf'), '-extensions', 'v3', '-days', days, '-sha256', '-set_serial', `0x${(Date.now() + counter).toString(16)}`, '-out', file('crt')]);
  const cert = readFileSync(file('crt'), 'utf8');
  const x509 = new X509Certificate(cert);
  const chain = issuer ? cert + issuer.chain : cert;
  return {
    certFile: file('crt'),
    keyFile: file('key'),
    cert,
    key: readFileSync(file('key'), 'utf8'),
    x509,
    der: x509.raw,
    chain,
    chainDer: issuer ? [x509.raw, ...issuer.chainDer] : [x509.raw],
  };
}
