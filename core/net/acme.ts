// ACME (RFC 8555) built in: a certificate per host from an ACME CA (Let's Encrypt, or any RFC 8555
// directory), obtained when the host has none (or only the self-signed one made at first start,
// or one that does not cover it, or an expired one) and renewed before it expires — by default
// at two thirds of its lifetime, like certbot and Caddy; `renewBeforeDays` instead renews that
// many days before notAfter.
//
// Protocol work is done by `acme-client` (JWS signing, nonces and badNonce retries, polling);
// this file decides what to order and when, proves control of each name through HTTP-01 (§8.3,
// the HTTP server answers /.well-known/acme-challenge/<token>) or TLS-ALPN-01 (RFC 8737, the
// direct-TLS listener presents the challenge certificate), and stores the result where
// CertManager reads it (<dataDir>/certs/<host>.crt/.key), then has CertManager reload that host:
// new connections get the new certificate, established ones keep theirs.
//
// The account key (ECDSA P-256) is kept in <dataDir>/acme/<directory>/account.key (mode 0600)
// with the account URL beside it (account.json): one account per CA directory, reused across
// restarts (RFC 8555 §7.3 — a new key would be a new account). Each certificate gets a fresh key.
// Orders run one at a time. A failure is logged and retried later (10 min, 1 h, 3 h, 6 h, then
// every 12 h), never in a loop; what is served meanwhile stays as it is.
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import * as acme from 'acme-client';
import { verifyCertificateName } from '../util/cert-names.ts';
import { getLogger, type Logger } from '../util/log.ts';
import { tlsAlpnChallengeCertificate } from './acme-tls-alpn.ts';
import { isSelfSigned, parseCertificatePair, readCertificatePair, writeCertificatePair } from './cert-files.ts';
import type { CertReloadResult } from './certmanager.ts';

export type AcmeChallengeType = 'http-01' | 'tls-alpn-01';

/** One challenge to answer while the CA validates it. */
export interface AcmeChallenge {
  type: AcmeChallengeType;
  /** The identifier (domain) being validated. */
  host: string;
  token: string;
  /** token.thumbprint (RFC 8555 §8.1): what HTTP-01 serves and TLS-ALPN-01 digests. */
  keyAuthorization: string;
}

/**
 * What answers a challenge: present() before the CA is told to validate, remove() after
 * (whatever the outcome). The HTTP server implements one for HTTP-01 (Http01Responder), the
 * direct-TLS listener one for TLS-ALPN-01 (TlsAlpn01Responder).
 */
export interface ChallengeResponder {
  present(challenge: AcmeChallenge): void | Promise<void>;
  remove(challenge: AcmeChallenge): void | Promise<void>;
}

/** The path prefix of HTTP-01 (RFC 8555 §8.3). */
export const HTTP01_PATH = '/.well-known/acme-challenge/';

/**
 * HTTP-01: keeps the key authorizations of pending challenges by token; the HTTP server answers
 * `GET /.well-known/acme-challenge/:token` with respond(token) — for every Host: the CA asks
 * for the name being validated on port 80, which may be any configured host.
 */
export class Http01Responder implements ChallengeResponder {
  private readonly pending = new Map<string, AcmeChallenge>();

  present(ch: AcmeChallenge): void {
    this.pending.set(ch.token, ch);
  }

  remove(ch: AcmeChallenge): void {
    if (this.pending.get(ch.token) === ch) this.pending.delete(ch.token);
  }

  /** The body for a token, if a challenge is pending for it (and, when given, for that host). */
  respond(token: string, host?: string): string | undefined {
    const ch = this.pending.get(token);
    if (!ch) return undefined;
    if (host !== undefined && host !== '' && host.toLowerCase().replace(/\.$/, '') !== ch.host) return undefined;
    return ch.keyAuthorization;
  }

  /**
   * Registers the route on an HTTP server (core/net/http.ts HttpServer.route): 200 with the key
   * authorization as application/octet-stream (§8.3), 404 for unknown tokens. Returns the
   * function that removes the route.
   */
  route(http: { route(host: string, method: string, pattern: string, handler: (req: { params: Readonly<Record<string, string>>; host: string }) => Http01Reply, opts?: { redactParams?: readonly string[] }): () => void }): () => void {
    return http.route('*', 'GET', `${HTTP01_PATH}:token`, (req): Http01Reply => {
      const body = this.respond(req.params.token ?? '', req.host);
      if (body === undefined) return { status: 404, headers: { 'content-type': 'text/plain' }, body: 'no such challenge\n' };
      return { status: 200, headers: { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' }, body };
    }, { redactParams: ['token'] }); // the access log shows the path without the token
  }
}

/** The answer of the HTTP-01 route (a core/net/http.ts HttpReply). */
export interface Http01Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** TLS-ALPN-01: the challenge certificate goes to CertManager, which the direct-TLS listeners ask. */
export class TlsAlpn01Responder implements ChallengeResponder {
  constructor(private readonly certs: { setAlpnChallenge(host: string, pem: { cert: string; key: string }): void; clearAlpnChallenge(host: string): void }) {}

  present(ch: AcmeChallenge): void {
    this.certs.setAlpnChallenge(ch.host, tlsAlpnChallengeCertificate(ch.host, ch.keyAuthorization));
  }

  remove(ch: AcmeChallenge): void {
    this.certs.clearAlpnChallenge(ch.host);
  }
}

export interface AcmeOptions {
  /** The CA's directory URL (Let's Encrypt: acme.directory.letsencrypt.production). */
  directoryUrl: string;
  /** Contact address for the account (expiry and policy mail from the CA). */
  email?: string;
  /** The server's data directory: account under <dataDir>/acme/, certificates under <dataDir>/certs/. */
  dataDir: string;
  /** Which challenge proves control (default http-01). */
  challenge?: AcmeChallengeType;
  responders: Partial<Record<AcmeChallengeType, ChallengeResponder>>;
  /** Where a host's certificate is read from — only hosts whose `tls` option is not set are managed. */
  certificatePaths(host: string): { certFile: string; keyFile: string; configured: boolean };
  /** CertManager.reload: called with the host after its new files are in place. */
  reload(hosts: string[]): Promise<CertReloadResult[]>;
  /** Renew this many days before notAfter instead of at 2/3 of the lifetime. */
  renewBeforeDays?: number;
  /** An extra CA certificate (PEM) to trust for the directory's HTTPS: a private CA, or a test CA. */
  directoryCa?: string;
  /** Clock (tests move it to reach the renewal time). */
  now?: () => number;
  /** First poll interval while the CA validates or issues (acme-client backoff; default 2 s). */
  pollIntervalMs?: number;
  /** Told about every outcome (logging is done here already). */
  onEvent?: (event: AcmeEvent) => void;
  log?: Logger;
}

export type AcmeEvent =
  | { type: 'issued'; host: string; notAfter: Date; renewAt: Date; challenge: AcmeChallengeType | 'reused-authorization' }
  | { type: 'failed'; host: string; error: string; retryAt: Date }
  | { type: 'skipped'; host: string; reason: string };

/** Per host, what the manager knows. */
export interface AcmeHostStatus {
  host: string;
  state: 'scheduled' | 'ordering' | 'failed' | 'skipped';
  /** When the next order runs. */
  nextAt?: Date;
  notAfter?: Date;
  lastError?: string;
  failures: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const RETRY_DELAYS_MS = [10 * 60_000, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR];
/** Timers are re-armed at least this often, so a suspended machine or a clock change is noticed. */
const MAX_TIMER_MS = 12 * HOUR;
/** A certificate fresh from the CA is never renewed sooner than this, whatever renewBeforeDays says. */
const MIN_RENEW_AFTER_MS = HOUR;

/**
 * When to renew a certificate valid from notBefore to notAfter: at 2/3 of its lifetime (for 90
 * days, 30 days before expiry), or `renewBeforeDays` before notAfter.
 */
export function renewalTime(notBefore: Date, notAfter: Date, renewBeforeDays?: number): Date {
  if (renewBeforeDays !== undefined) return new Date(notAfter.getTime() - renewBeforeDays * DAY);
  return new Date(notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3);
}

/** Why a host's current certificate needs an order now; undefined when it can wait until renewalTime(). */
export function needsNewCertificate(cert: X509Certificate | undefined, host: string, now: number): string | undefined {
  if (!cert) return 'it has no certificate';
  if (isSelfSigned(cert)) return 'it has a self-signed certificate';
  if (!verifyCertificateName(cert, host, { service: 'xmpp-client' }).ok) return 'its certificate does not cover it';
  if (new Date(cert.validTo).getTime() <= now) return 'its certificate has expired';
  return undefined;
}

/**
 * A failure in one line: acme-client reports an invalid authorization or order as its JSON; the
 * problem document inside (RFC 8555 §6.7, e.g. a challenge's `error`) says what went wrong.
 */
export function describeAcmeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  let doc: unknown;
  try {
    doc = JSON.parse(message);
  } catch {
    return message;
  }
  const problems: string[] = [];
  const visit = (o: unknown): void => {
    if (!o || typeof o !== 'object') return;
    const p = o as { type?: unknown; detail?: unknown; error?: unknown; challenges?: unknown };
    if (typeof p.detail === 'string') problems.push(`${typeof p.type === 'string' ? p.type.replace('urn:ietf:params:acme:error:', '') : 'error'}: ${p.detail}`);
    visit(p.error);
    if (Array.isArray(p.challenges)) p.challenges.forEach(visit);
  };
  visit(doc);
  return problems.length ? problems.join('; ') : message;
}

/** The directory's folder name under <dataDir>/acme/: host and path, made file-name safe. */
export function directoryFolder(directoryUrl: string): string {
  const u = new URL(directoryUrl);
  return `${u.host}${u.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '_').replace(/_+$/, '');
}

export class AcmeManager {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly status = new Map<string, AcmeHostStatus>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private client: acme.Client | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly inFlight = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(private readonly opts: AcmeOptions) {
    this.log = opts.log ?? getLogger('core:acme');
    this.now = opts.now ?? Date.now;
    if (opts.directoryCa) {
      // acme-client has one HTTP client for the process; Cadence runs one ACME manager.
      acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, opts.directoryCa] });
    }
    const acmeLog = getLogger('core:acme:client');
    acme.setLogger((msg) => acmeLog('%s', msg));
  }

  get challengeType(): AcmeChallengeType {
    return this.opts.challenge ?? 'http-01';
  }

  /** Looks at every host now and keeps each one's certificate renewed until stop(). */
  start(hosts: readonly string[]): void {
    this.stopped = false;
    for (const host of hosts) void this.evaluate(host);
  }

  /** No more orders are started; resolves when the one under way (if any) has finished. */
  stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    return this.queue.then(() => undefined);
  }

  hosts(): AcmeHostStatus[] {
    return [...this.status.values()].map((s) => ({ ...s }));
  }

  /**
   * Decides for one host: order now (no usable certificate, or renewal time reached) or schedule
   * the renewal. Resolves once that is done (an order included).
   */
  async evaluate(host: string): Promise<AcmeHostStatus> {
    const paths = this.opts.certificatePaths(host);
    if (paths.configured) {
      const reason = `the config names its certificate (tls.certificate ${paths.certFile}); ACME manages only certificates in ${path.join(this.opts.dataDir, 'certs')}`;
      this.setStatus(host, { state: 'skipped', lastError: reason });
      this.opts.onEvent?.({ type: 'skipped', host, reason });
      this.log('%s: not managed by ACME: %s', host, reason);
      return this.status.get(host)!;
    }
    const current = await readCertificatePair(paths.certFile, paths.keyFile);
    const cert = current.ok ? current.pair.leaf : undefined;
    const now = this.now();
    const why = needsNewCertificate(cert, host, now);
    if (why === undefined && cert) {
      const at = renewalTime(new Date(cert.validFrom), new Date(cert.validTo), this.opts.renewBeforeDays);
      if (at.getTime() > now) {
        this.schedule(host, at, { state: 'scheduled', notAfter: new Date(cert.validTo) });
        return this.status.get(host)!;
      }
      this.log.info('%s: certificate expires %s: renewing', host, cert.validTo);
    } else {
      this.log.info('%s: ordering a certificate: %s', host, why);
    }
    await this.order(host);
    return this.status.get(host)!;
  }

  /** Orders a certificate for `host` now (queued behind any order under way; joined if one for the host is). */
  order(host: string): Promise<void> {
    const pending = this.inFlight.get(host);
    if (pending) return pending;
    const run = this.queue.then(() => this.runOrder(host)).finally(() => this.inFlight.delete(host));
    this.inFlight.set(host, run);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async runOrder(host: string): Promise<void> {
    const prev = this.status.get(host);
    this.setStatus(host, { state: 'ordering' });
    try {
      const { notAfter, notBefore, challenge } = await this.obtain(host);
      let renewAt = renewalTime(notBefore, notAfter, this.opts.renewBeforeDays);
      const earliest = this.now() + MIN_RENEW_AFTER_MS;
      if (renewAt.getTime() < earliest) renewAt = new Date(earliest);
      this.log.info('%s: certificate issued, valid until %s; renewal from %s', host, notAfter.toISOString(), renewAt.toISOString());
      this.schedule(host, renewAt, { state: 'scheduled', notAfter, failures: 0, lastError: undefined });
      this.opts.onEvent?.({ type: 'issued', host, notAfter, renewAt, challenge });
    } catch (err) {
      const failures = (prev?.failures ?? 0) + 1;
      const error = describeAcmeError(err);
      const retryAt = new Date(this.now() + RETRY_DELAYS_MS[Math.min(failures - 1, RETRY_DELAYS_MS.length - 1)]!);
      this.log.error('%s: ACME order failed (%d in a row): %s; retrying at %s', host, failures, error, retryAt.toISOString());
      this.schedule(host, retryAt, { state: 'failed', failures, lastError: error });
      this.opts.onEvent?.({ type: 'failed', host, error, retryAt });
      throw new Error(error, { cause: err });
    }
  }

  private setStatus(host: string, patch: Partial<AcmeHostStatus>): void {
    const s = this.status.get(host) ?? { host, state: 'scheduled', failures: 0 };
    this.status.set(host, { ...s, ...patch });
  }

  private schedule(host: string, at: Date, patch: Partial<AcmeHostStatus>): void {
    this.setStatus(host, { ...patch, nextAt: at });
    const old = this.timers.get(host);
    if (old) clearTimeout(old);
    this.timers.delete(host);
    if (this.stopped) return;
    const delay = Math.max(0, Math.min(at.getTime() - this.now(), MAX_TIMER_MS));
    const timer = setTimeout(() => {
      this.timers.delete(host);
      if (this.now() >= at.getTime()) void this.evaluate(host).catch(() => undefined);
      else this.schedule(host, at, {});
    }, delay);
    timer.unref();
    this.timers.set(host, timer);
  }

  /** The account: key from <dataDir>/acme/<directory>/, registered (or found) at the CA. */
  private async account(): Promise<acme.Client> {
    if (this.client) return this.client;
    const dir = path.join(this.opts.dataDir, 'acme', directoryFolder(this.opts.directoryUrl));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keyFile = path.join(dir, 'account.key');
    const infoFile = path.join(dir, 'account.json');
    let accountKey: Buffer;
    try {
      accountKey = await readFile(keyFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      accountKey = await acme.crypto.createPrivateEcdsaKey('P-256');
      await writeFile(keyFile, accountKey, { mode: 0o600, flag: 'wx' });
      this.log.info('ACME: new account key in %s', keyFile);
    }
    const poll = this.opts.pollIntervalMs ?? 2000;
    const client = new acme.Client({
      directoryUrl: this.opts.directoryUrl,
      accountKey,
      backoffMin: poll,
      backoffMax: Math.max(poll * 8, 30_000),
      backoffAttempts: 12,
    });
    // newAccount with an existing key returns that account (RFC 8555 §7.3.1); the contact is
    // brought up to date when it changed.
    const contact = this.opts.email ? [`mailto:${this.opts.email}`] : [];
    const account = await client.createAccount({ termsOfServiceAgreed: true, contact });
    if (JSON.stringify(account.contact ?? []) !== JSON.stringify(contact)) await client.updateAccount({ contact });
    await writeFile(infoFile, `${JSON.stringify({ directory: this.opts.directoryUrl, url: client.getAccountUrl(), contact }, null, 2)}\n`, { mode: 0o600 });
    this.client = client;
    return client;
  }

  /** One order (RFC 8555 §7.4): authorizations, challenges, finalize with a new key, download, store, reload. */
  private async obtain(host: string): Promise<{ notBefore: Date; notAfter: Date; challenge: AcmeChallengeType | 'reused-authorization' }> {
    const client = await this.account();
    const type = this.challengeType;
    const responder = this.opts.responders[type];
    if (!responder) throw new Error(`no responder for ${type} challenges`);

    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: host }] });
    let used: AcmeChallengeType | 'reused-authorization' = 'reused-authorization';
    for (const authz of await client.getAuthorizations(order)) {
      // §7.1.4: the CA may hand back an authorization that is already valid.
      if (authz.status === 'valid') continue;
      if (authz.status !== 'pending') throw new Error(`the authorization for ${authz.identifier.value} is ${authz.status}`);
      const challenge = authz.challenges.find((c) => c.type === type);
      if (!challenge) throw new Error(`the CA offers no ${type} challenge for ${authz.identifier.value} (it offers ${authz.challenges.map((c) => c.type).join(', ')})`);
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      const ch: AcmeChallenge = { type, host: authz.identifier.value.toLowerCase(), token: 'token' in challenge ? challenge.token : '', keyAuthorization };
      await responder.present(ch);
      try {
        this.log('%s: answering %s', host, type);
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(authz);
      } finally {
        await responder.remove(ch);
      }
      used = type;
    }

    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    const [, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, key);
    const finalized = await client.finalizeOrder(order, csr);
    const chainPem = await client.getCertificate(finalized);

    const paths = this.opts.certificatePaths(host);
    const checked = parseCertificatePair(chainPem, key.toString('utf8'), `certificate from ${this.opts.directoryUrl}`, 'the new key');
    if (!checked.ok) throw new Error(`the CA returned an unusable certificate: ${checked.message}`);
    const leaf = checked.pair.leaf;
    if (!verifyCertificateName(leaf, host, { service: 'xmpp-client' }).ok) throw new Error(`the CA returned a certificate that does not cover ${host} (${leaf.subjectAltName ?? leaf.subject})`);
    await writeCertificatePair(paths, checked.pair);
    const [reloaded] = await this.opts.reload([host]);
    if (!reloaded || reloaded.status === 'failed') throw new Error(`stored in ${paths.certFile}, but the reload failed: ${reloaded?.error ?? 'no result'}`);
    return { notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo), challenge: used };
  }
}
