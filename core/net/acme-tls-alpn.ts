// TLS-ALPN-01 (RFC 8737): the challenge certificate, and the listener side that presents it.
//
// The CA connects to port 443 (the direct-TLS port here) with SNI = the domain and ALPN offering
// only `acme-tls/1`, and expects a self-signed certificate with one dNSName (the domain) and the
// critical acmeIdentifier extension holding SHA-256(key authorization) (§3). Node's SNICallback
// is not told the offered ALPN protocols, and ALPNCallback cannot change the certificate, so a
// listener that may see such a handshake reads the ClientHello first (acceptDirectTls): only
// while a validation is under way, and only to decide which TLS server takes the socket — the
// bytes are put back and TLS starts from the first one.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { toAsciiDomain } from '../util/domain.ts';
import { bitString, boolean, explicit, implicitPrimitive, octetString, oid, sequence, set, time, unsignedInteger, utf8String } from '../util/der-writer.ts';
import type { Logger } from '../util/log.ts';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, type ClientHello } from '../util/tls-client-hello.ts';

/** The ALPN protocol of the validation handshake (RFC 8737 §6.2). */
export const ACME_TLS_ALPN = 'acme-tls/1';
/** id-pe-acmeIdentifier (RFC 8737 §6.1). */
export const OID_ACME_IDENTIFIER = '1.3.6.1.5.5.7.1.31';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_COMMON_NAME = '2.5.4.3';
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/**
 * The challenge certificate for `domain` (RFC 8737 §3): self-signed, subjectAltName with exactly
 * one dNSName (the domain, in A-labels), the critical acmeIdentifier extension whose value is
 * the DER OCTET STRING of SHA-256(keyAuthorization). A fresh P-256 key each time; valid for a
 * week around `now` (the CA does not look at the dates; clocks may differ).
 */
export function tlsAlpnChallengeCertificate(domain: string, keyAuthorization: string, now = new Date()): { cert: string; key: string } {
  const name = toAsciiDomain(domain);
  if (name === null || name.includes('*')) throw new RangeError(`not a domain name: ${domain}`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const algorithm = sequence(oid(OID_ECDSA_WITH_SHA256));
  const subject = sequence(set(sequence(oid(OID_COMMON_NAME), utf8String('ACME TLS-ALPN-01 challenge'))));
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and non-zero (RFC 5280 §4.1.2.2)
  const digest = createHash('sha256').update(keyAuthorization, 'utf8').digest();
  const extensions = sequence(
    sequence(oid(OID_SUBJECT_ALT_NAME), octetString(sequence(implicitPrimitive(2, Buffer.from(name, 'ascii'))))),
    sequence(oid(OID_ACME_IDENTIFIER), boolean(true), octetString(octetString(digest))),
  );
  const tbs = sequence(
    explicit(0, unsignedInteger(2)), // v3
    unsignedInteger(serial),
    algorithm,
    subject,
    sequence(time(new Date(now.getTime() - 86_400_000)), time(new Date(now.getTime() + 6 * 86_400_000))),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, extensions),
  );
  const signature = sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const der = sequence(tbs, algorithm, bitString(signature));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return {
    cert: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** Where challenge certificates come from: CertManager. */
export interface AlpnChallengeSource {
  readonly alpnChallengesPending: boolean;
  alpnChallenge(servername: string): tls.SecureContext | undefined;
}

/** How long a listener waits for a ClientHello while a validation is under way. */
const PEEK_TIMEOUT_MS = 10_000;

/**
 * Hands a freshly accepted socket to `server` (a tls.Server that is not listening itself), or —
 * while a TLS-ALPN-01 validation is under way and the ClientHello asks for `acme-tls/1` and a
 * name with a challenge — answers the validation handshake with the challenge certificate.
 * Outside validations nothing is read: the socket goes straight to `server`.
 */
export function acceptDirectTls(socket: net.Socket, server: tls.Server, challenges: AlpnChallengeSource, log?: Logger): void {
  if (!challenges.alpnChallengesPending) {
    server.emit('connection', socket);
    return;
  }
  void peekClientHello(socket).then((hello) => {
    if (hello === 'closed') return;
    const ctx = hello && hello.serverName !== undefined && hello.alpn.includes(ACME_TLS_ALPN) ? challenges.alpnChallenge(hello.serverName) : undefined;
    if (!ctx) {
      server.emit('connection', socket);
      return;
    }
    log?.('TLS-ALPN-01 validation handshake for %s from %s', hello!.serverName, socket.remoteAddress);
    answerAlpnChallenge(socket, ctx, log);
  });
}

/**
 * Reads the ClientHello without consuming it: the bytes read are put back into the socket.
 * undefined when the first bytes are not a ClientHello or none came in time; 'closed' when the
 * socket ended or failed meanwhile (it is then destroyed).
 */
export function peekClientHello(socket: net.Socket, timeoutMs = PEEK_TIMEOUT_MS): Promise<ClientHello | undefined | 'closed'> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const finish = (result: ClientHello | undefined | 'closed') => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onGone);
      if (result === 'closed') {
        socket.destroy();
      } else {
        socket.pause();
        if (buffered.length) socket.unshift(buffered);
      }
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const r = parseClientHello(buffered);
      if (r.status === 'incomplete' && buffered.length <= MAX_CLIENT_HELLO_BYTES) return;
      finish(r.status === 'ok' ? r.hello : undefined);
    };
    const onGone = () => finish('closed');
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
    socket.once('error', onGone);
  });
}

/** The validation handshake: the challenge certificate, `acme-tls/1`, then close — no application data (RFC 8737 §4). */
function answerAlpnChallenge(socket: net.Socket, ctx: tls.SecureContext, log?: Logger): void {
  const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: ctx, ALPNProtocols: [ACME_TLS_ALPN] });
  const timer = setTimeout(() => secure.destroy(), PEEK_TIMEOUT_MS);
  timer.unref();
  secure.once('secure', () => secure.end());
  secure.on('data', () => secure.destroy()); // application data is not part of acme-tls/1
  secure.on('error', (err) => log?.('TLS-ALPN-01 validation handshake from %s failed: %s', socket.remoteAddress, err.message));
  secure.once('close', () => clearTimeout(timer));
}
