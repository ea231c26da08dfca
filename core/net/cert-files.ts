// Certificate and key files: where a host's pair lives, PEM blocks, and reading a pair with the
// reason it is unusable (missing, unreadable, not a certificate, an encrypted or garbled key, a
// key that does not belong to the certificate), and writing a pair in place without a moment of
// half-written files. Shared by CertManager (start and reload),
// `cadence check` (core/net/cert-check.ts), `cadence cert import` and ACME, so that each of them
// accepts and refuses exactly the same files.
import { X509Certificate, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The parts of the configuration that say where certificates are. `Config` has them. */
export interface CertConfig {
  get<T = unknown>(host: string | undefined, key: string): T | undefined;
  readonly baseDir: string;
  readonly dataDir: string;
}

export interface CertificatePaths {
  certFile: string;
  keyFile: string;
  /**
   * true: `tls.certificate`/`tls.key` of the host (or the global ones) name the files; false: the
   * default location `<dataDir>/certs/<host>.crt` and `.key`, where a self-signed pair is made on
   * first start and where `cadence cert import` and ACME put theirs.
   */
  configured: boolean;
}

/** Where the certificate of `host` is read from. */
export function certificatePaths(config: CertConfig, host: string): CertificatePaths {
  const tlsCfg = config.get<{ certificate?: string; key?: string }>(host, 'tls');
  if (tlsCfg?.certificate && tlsCfg.key) {
    return { certFile: path.resolve(config.baseDir, tlsCfg.certificate), keyFile: path.resolve(config.baseDir, tlsCfg.key), configured: true };
  }
  return { ...defaultCertificatePaths(config.dataDir, host), configured: false };
}

/** `<dataDir>/certs/<host>.crt` and `<host>.key`. */
export function defaultCertificatePaths(dataDir: string, host: string): { certFile: string; keyFile: string } {
  const dir = path.join(dataDir, 'certs');
  return { certFile: path.join(dir, `${host}.crt`), keyFile: path.join(dir, `${host}.key`) };
}

export interface PemBlock {
  /** The word(s) after BEGIN: 'CERTIFICATE', 'PRIVATE KEY', 'EC PRIVATE KEY', … */
  label: string;
  /** The whole block, BEGIN to END line, newline-terminated. */
  text: string;
  /** Headers such as `Proc-Type: 4,ENCRYPTED` (legacy OpenSSL encrypted keys). */
  headers: string[];
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** The PEM blocks of a file, in order; text outside blocks (comments, `Bag Attributes`) is skipped. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const body = m[2]!;
    const headers = body.split(/\r?\n/).filter((l) => /^[A-Za-z-]+: /.test(l));
    out.push({ label: m[1]!, text: `${m[0].replace(/\r\n/g, '\n')}\n`, headers });
  }
  return out;
}

const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);

export type PairProblem =
  | 'missing' // a file does not exist
  | 'unreadable' // it exists but cannot be read (permissions, a directory, …)
  | 'no-certificate' // no CERTIFICATE block
  | 'bad-certificate' // a CERTIFICATE block that does not parse
  | 'no-key' // no private key block
  | 'encrypted-key' // a passphrase-protected key: the server has no way to ask for the passphrase
  | 'bad-key' // a key block that does not parse
  | 'key-mismatch'; // the key is not the one of the (first) certificate

/** A usable pair: the certificate chain (leaf first) and its key, as PEM text. */
export interface CertificatePair {
  certFile: string;
  keyFile: string;
  /** The CERTIFICATE blocks only, leaf first. */
  certPem: string;
  /** The private key block only. */
  keyPem: string;
  /** Parsed chain, leaf first. */
  chain: X509Certificate[];
  leaf: X509Certificate;
  key: KeyObject;
}

export type PairResult =
  | { ok: true; pair: CertificatePair }
  | { ok: false; problem: PairProblem; file: string; message: string };

/** Reads and checks a certificate file and a key file (the same file for a combined `.pem`). */
export async function readCertificatePair(certFile: string, keyFile: string): Promise<PairResult> {
  const cert = await readText(certFile);
  if (!cert.ok) return cert;
  const key = keyFile === certFile ? cert : await readText(keyFile);
  if (!key.ok) return key;
  return parseCertificatePair(cert.text, key.text, certFile, keyFile);
}

async function readText(file: string): Promise<{ ok: true; text: string } | { ok: false; problem: PairProblem; file: string; message: string }> {
  try {
    return { ok: true, text: await readFile(file, 'utf8') };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return { ok: false, problem: 'missing', file, message: `${file} does not exist` };
    return { ok: false, problem: 'unreadable', file, message: `cannot read ${file}: ${e.code ?? e.message}` };
  }
}

/** Checks a pair given as PEM text; the file names are only for the messages. */
export function parseCertificatePair(certText: string, keyText: string, certFile: string, keyFile: string): PairResult {
  const certBlocks = pemBlocks(certText).filter((b) => b.label === 'CERTIFICATE');
  if (certBlocks.length === 0) return { ok: false, problem: 'no-certificate', file: certFile, message: `${certFile} holds no PEM certificate` };
  const chain: X509Certificate[] = [];
  for (const [i, b] of certBlocks.entries()) {
    try {
      chain.push(new X509Certificate(b.text));
    } catch (err) {
      return { ok: false, problem: 'bad-certificate', file: certFile, message: `certificate ${i + 1} in ${certFile} does not parse: ${(err as Error).message}` };
    }
  }
  const blocks = pemBlocks(keyText);
  if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY') || blocks.some((b) => KEY_LABELS.has(b.label) && b.headers.some((h) => /^Proc-Type: 4,ENCRYPTED/i.test(h)))) {
    return { ok: false, problem: 'encrypted-key', file: keyFile, message: `the key in ${keyFile} is encrypted with a passphrase; decrypt it (openssl pkey -in key -out key.plain)` };
  }
  const keyBlock = blocks.find((b) => KEY_LABELS.has(b.label));
  if (!keyBlock) return { ok: false, problem: 'no-key', file: keyFile, message: `${keyFile} holds no PEM private key` };
  let key: KeyObject;
  try {
    key = createPrivateKey(keyBlock.text);
  } catch (err) {
    return { ok: false, problem: 'bad-key', file: keyFile, message: `the key in ${keyFile} does not parse: ${(err as Error).message}` };
  }
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(key)) {
    return { ok: false, problem: 'key-mismatch', file: keyFile, message: `the key in ${keyFile} does not belong to the certificate in ${certFile}` };
  }
  return {
    ok: true,
    pair: { certFile, keyFile, certPem: certBlocks.map((b) => b.text).join(''), keyPem: keyBlock.text, chain, leaf, key },
  };
}

/** A self-signed certificate: issued by itself and verifiable with its own key. */
export function isSelfSigned(cert: X509Certificate): boolean {
  if (cert.issuer !== cert.subject) return false;
  try {
    return cert.verify(cert.publicKey);
  } catch {
    return false;
  }
}

/**
 * Writes the chain (certificates only) and the key (mode 0600), each through a temporary file
 * renamed into place, the key first: a reload between the two renames sees a key that does not
 * match and keeps the old pair (CertManager.reload), never half a file.
 */
export async function writeCertificatePair(target: { certFile: string; keyFile: string }, pair: { certPem: string; keyPem: string }): Promise<void> {
  await mkdir(path.dirname(target.certFile), { recursive: true, mode: 0o700 });
  const tmp = (f: string) => `${f}.${randomBytes(6).toString('hex')}.tmp`;
  const keyTmp = tmp(target.keyFile);
  const certTmp = tmp(target.certFile);
  try {
    await writeFile(keyTmp, pair.keyPem, { mode: 0o600, flag: 'wx' });
    await writeFile(certTmp, pair.certPem, { mode: 0o644, flag: 'wx' });
    await rename(keyTmp, target.keyFile);
    await rename(certTmp, target.certFile);
  } finally {
    await rm(keyTmp, { force: true });
    await rm(certTmp, { force: true });
  }
}
