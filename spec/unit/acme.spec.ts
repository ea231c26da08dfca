// The ACME manager's decisions (core/net/acme.ts) without a CA: when to renew, what needs an order
// now, the HTTP-01 answer on a real HTTP server (RFC 8555 §8.3), and start() scheduling hosts that
// need nothing yet. The protocol against a CA is in spec/e2e/acme.spec.ts (pebble).
import assert from 'node:assert/strict';
import http from 'node:http';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AcmeManager, Http01Responder, describeAcmeError, directoryFolder, needsNewCertificate, renewalTime, type AcmeChallenge } from '../../core/net/acme.ts';
import { HttpServer } from '../../core/net/http.ts';
import { S2sTestPki } from '../helpers/testca-s2s.ts';

const DAY = 86_400_000;

function get(port: number, urlPath: string, host: string): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
    }).on('error', reject);
  });
}

describe('ACME manager decisions', () => {
  it('renews at two thirds of the lifetime, or renewBeforeDays before expiry', () => {
    const from = new Date('2026-01-01T00:00:00Z');
    const to = new Date(from.getTime() + 90 * DAY);
    assert.equal(renewalTime(from, to).toISOString(), new Date(from.getTime() + 60 * DAY).toISOString());
    assert.equal(renewalTime(from, to, 10).toISOString(), new Date(to.getTime() - 10 * DAY).toISOString());
    // Short-lived certificates (6 days): renewed after 4.
    assert.equal(renewalTime(from, new Date(from.getTime() + 6 * DAY)).getTime() - from.getTime(), 4 * DAY);
  });

  it('orders at once for a host without a usable certificate', () => {
    const pki = S2sTestPki.create();
    const now = Date.now();
    assert.match(needsNewCertificate(undefined, 'a.test', now)!, /no certificate/);
    assert.match(needsNewCertificate(pki.selfSigned({ cn: 'a.test', dns: ['a.test'] }).x509, 'a.test', now)!, /self-signed/);
    assert.match(needsNewCertificate(pki.issue({ dns: ['b.test'] }).x509, 'a.test', now)!, /does not cover/);
    assert.match(needsNewCertificate(pki.issue({ dns: ['a.test'], expired: true }).x509, 'a.test', now)!, /expired/);
    assert.equal(needsNewCertificate(pki.issue({ dns: ['a.test'] }).x509, 'a.test', now), undefined);
  });

  it('keeps one account folder per directory', () => {
    assert.equal(directoryFolder('https://acme-v02.api.letsencrypt.org/directory'), 'acme-v02.api.letsencrypt.org_directory');
    assert.equal(directoryFolder('https://127.0.0.1:14000/dir'), '127.0.0.1_14000_dir');
  });

  it("reports the CA's problem detail rather than the whole authorization", () => {
    const authz = JSON.stringify({ status: 'invalid', challenges: [{ type: 'http-01', status: 'invalid', error: { type: 'urn:ietf:params:acme:error:connection', detail: 'Timeout during connect', status: 400 } }] });
    assert.equal(describeAcmeError(new Error(authz)), 'connection: Timeout during connect');
    assert.equal(describeAcmeError(new Error('socket hang up')), 'socket hang up');
  });

  describe('HTTP-01 responder (RFC 8555 §8.3)', () => {
    let server: HttpServer;
    let port: number;
    const responder = new Http01Responder();
    const ch: AcmeChallenge = { type: 'http-01', host: 'a.test', token: 'tok_-123', keyAuthorization: 'tok_-123.thumb' };

    before(async () => {
      server = new HttpServer({ httpPorts: [0], httpsPorts: [], interfaces: ['127.0.0.1'] });
      responder.route(server);
      await server.listen();
      port = server.addresses()[0]!.port;
    });
    after(() => server.close(0));

    it('answers the token of a pending challenge with its key authorization, for the host being validated only', async () => {
      assert.equal((await get(port, '/.well-known/acme-challenge/tok_-123', 'a.test')).status, 404);
      responder.present(ch);
      const ok = await get(port, '/.well-known/acme-challenge/tok_-123', 'A.test:80');
      assert.deepEqual(ok, { status: 200, type: 'application/octet-stream', body: 'tok_-123.thumb' });
      assert.equal((await get(port, '/.well-known/acme-challenge/tok_-123', 'b.test')).status, 404);
      assert.equal((await get(port, '/.well-known/acme-challenge/other', 'a.test')).status, 404);
      responder.remove(ch);
      assert.equal((await get(port, '/.well-known/acme-challenge/tok_-123', 'a.test')).status, 404);
    });
  });

  describe('scheduling', () => {
    let dataDir: string;
    before(() => {
      dataDir = mkdtempSync(path.join(tmpdir(), 'cadence-acme-unit-'));
    });
    after(() => rmSync(dataDir, { recursive: true, force: true }));

    it('schedules a host whose certificate is good for its renewal time, and skips hosts whose files the config names', async () => {
      const pki = S2sTestPki.create();
      const good = pki.issue({ dns: ['a.test'] });
      mkdirSync(path.join(dataDir, 'certs'), { recursive: true });
      writeFileSync(path.join(dataDir, 'certs', 'a.test.crt'), good.cert);
      copyFileSync(good.keyFile, path.join(dataDir, 'certs', 'a.test.key'));
      const m = new AcmeManager({
        directoryUrl: 'https://ca.invalid/directory', // never contacted: nothing is due
        dataDir,
        responders: {},
        certificatePaths: (h) => ({ certFile: path.join(dataDir, 'certs', `${h}.crt`), keyFile: path.join(dataDir, 'certs', `${h}.key`), configured: h === 'b.test' }),
        reload: () => Promise.reject(new Error('not expected')),
      });
      const [a, b] = await Promise.all([m.evaluate('a.test'), m.evaluate('b.test')]);
      m.stop();
      assert.equal(a.state, 'scheduled');
      const from = new Date(good.x509.validFrom).getTime();
      const to = new Date(good.x509.validTo).getTime();
      assert.equal(a.nextAt!.getTime(), from + ((to - from) * 2) / 3);
      assert.equal(b.state, 'skipped');
    });
  });
});
