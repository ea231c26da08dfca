// A test certificate authority, made once per test run with the openssl CLI, and a certificate for
// `localhost` signed by it: the server is configured with the certificate (`tls` in its config), and
// client processes trust the CA the way their users' systems do — through the trust-store settings
// their TLS library already reads (SSL_CERT_FILE for OpenSSL and Go, NODE_EXTRA_CA_CERTS for Node),
// with verification left on and no option a normal application would not set.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCa {
  /** The CA certificate (PEM): what clients trust. */
  caFile: string;
  /** The server's certificate for `localhost` (PEM, signed by the CA) and its key. */
  certFile: string;
  keyFile: string;
  /** The server config's `tls` value. */
  serverTls: { certificate: string; key: string };
}

let made: TestCa | undefined;
let unrelated: string | undefined;

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA certificate and key in `dir` (ca.pem, ca.key). */
function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', `/O=Cadence tests/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.pem'),
  ]);
}

/** The run's CA and server certificate (made on first use, removed when the process exits). */
export function testCa(): TestCa {
  if (made) return made;
  const dir = tempDir('cadence-ca-');
  const file = (name: string) => path.join(dir, name);
  makeCa(dir, 'Cadence test CA');
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', file('localhost.key'), '-out', file('localhost.csr')]);
  // What a public CA puts in a server certificate: the name in subjectAltName (Go and modern
  // OpenSSL ignore the CN), serverAuth, and key identifiers linking it to its issuer.
  writeFileSync(file('localhost.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:localhost',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid,issuer',
    '',
  ].join('\n'));
  openssl(dir, [
    'x509', '-req', '-in', file('localhost.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-set_serial', `0x${Date.now().toString(16)}`, '-days', '2', '-sha256',
    '-extfile', file('localhost.ext'), '-out', file('localhost.crt'),
  ]);
  rmSync(file('ca.key'));
  made = {
    caFile: file('ca.pem'),
    certFile: file('localhost.crt'),
    keyFile: file('localhost.key'),
    serverTls: { certificate: file('localhost.crt'), key: file('localhost.key') },
  };
  return made;
}

/**
 * The environment for a client process that trusts the test CA through its system trust settings.
 * Anything that switches verification off in this (mocha) process is left out.
 */
export function trustingEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return trustEnv(testCa().caFile, base);
}

/**
 * The same with another CA in the trust settings instead of the test CA — which did not sign
 * the server's certificate — to show that a client really verifies it.
 */
export function untrustingEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (!unrelated) {
    const dir = tempDir('cadence-other-ca-');
    makeCa(dir, 'Unrelated CA');
    unrelated = path.join(dir, 'ca.pem');
  }
  return trustEnv(unrelated, base);
}

function trustEnv(caFile: string, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, SSL_CERT_FILE: caFile, NODE_EXTRA_CA_CERTS: caFile };
  delete env.NODE_TLS_REJECT_UNAUTHORIZED;
  delete env.SSL_CERT_DIR;
  return env;
}
