// The operator's commands end to end, as a person or a script runs them: `user list`, `deluser`
// confirmation, `backup` while the server runs and `restore`, `import prosody`, XEP-0227
// `export`/`import`, `cert import`, `check` catching broken setups, and `shell` without a server.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { PROSODY_FIXTURE } from '../helpers/prosody.ts';
import { TestServer, writeConfig } from '../helpers/server.ts';

const PASS = 'operator-pass';

/** A server set up in a fresh directory (not started). */
function setUp(config: Record<string, unknown> = {}, host = 'localhost'): TestServer {
  const dir = mkdtempSync(path.join(tmpdir(), 'cadence-ops-'));
  return new TestServer(dir, writeConfig(dir, host, config), host);
}

describe('e2e: operator commands', function () {
  this.timeout(120_000);
  const servers: TestServer[] = [];
  const clients: TestClient[] = [];
  const fresh = (config?: Record<string, unknown>) => {
    const s = setUp(config);
    servers.push(s);
    return s;
  };
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(servers.splice(0).map((s) => s.destroy()));
  });

  it('`shell` without a running server says so in one line, no stack trace', async function () {
    const server = fresh();
    const r = await server.cli(['shell', 'server', 'info']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no server is running for this config/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('`user list [HOST]` lists the accounts; `deluser` needs --yes when not on a terminal', async function () {
    const server = fresh({ virtualHosts: { localhost: {}, 'other.example': {} } });
    await server.adduser('alice', PASS);
    await server.adduser('bob', PASS);
    assert.equal((await server.cli(['adduser', 'carol@other.example'], `${PASS}\n`)).code, 0);
    let r = await server.cli(['user', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['alice@localhost', 'bob@localhost', 'carol@other.example']);
    r = await server.cli(['user', 'list', 'other.example']);
    assert.deepEqual(r.stdout.trim().split('\n'), ['carol@other.example']);

    r = await server.cli(['deluser', 'bob@localhost']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not confirmed: add --yes/);
    assert.match((await server.cli(['user', 'list', 'localhost'])).stdout, /bob@localhost/);
    r = await server.cli(['deluser', 'bob@localhost', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await server.cli(['user', 'list', 'localhost'])).stdout.trim().split('\n'), ['alice@localhost']);
  });

  it('`backup` copies the database while the server runs; `restore` brings it back', async function () {
    const server = fresh();
    await server.adduser('alice', PASS);
    await server.start();
    const alice = await login(server, 'alice', PASS, { resource: 'b' });
    clients.push(alice);
    await alice.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Backup'))));
    const file = path.join(server.dir, 'backup.sqlite');
    let r = await server.cli(['backup', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // After the backup: another account, and a changed vCard.
    await server.adduser('zed', PASS);
    await alice.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Changed later'))));

    r = await server.cli(['restore', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /stop it before restoring/);
    await alice.stop();
    await server.stop();
    r = await server.cli(['restore', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await server.cli(['user', 'list'])).stdout.trim().split('\n'), ['alice@localhost']);
    server.output = '';
    await server.start();
    const again = await login(server, 'alice', PASS, { resource: 'r' });
    clients.push(again);
    const vcard = await again.iq(xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.equal(vcard.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Alice Backup');
  });

  it('`import prosody DIR` brings accounts with their passwords; XEP-0227 export and import carry them on', async function () {
    const hosts = { localhost: {}, 'old-host.example': {} };
    const server = fresh({ virtualHosts: hosts });
    let r = await server.cli(['import', 'prosody', PROSODY_FIXTURE, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /dry run: nothing written/);
    assert.equal((await server.cli(['user', 'list'])).stdout.trim(), '');
    r = await server.cli(['import', 'prosody', PROSODY_FIXTURE]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /imported \d+ account\(s\)/);
    assert.match((await server.cli(['user', 'list', 'localhost'])).stdout, /^alice@localhost$/m);
    // The same import again leaves the existing accounts alone, and says so.
    r = await server.cli(['import', 'prosody', PROSODY_FIXTURE]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /already existed and were left alone/);

    const file = path.join(server.dir, 'export.xml');
    r = await server.cli(['export', 'xep0227', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(readFileSync(file, 'utf8'), /urn:xmpp:pie:0/);

    const other = fresh({ virtualHosts: hosts });
    r = await other.cli(['import', 'xep0227', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await other.start();
    const alice = await login(other, 'alice', 'pässword 1', { resource: 'moved' });
    clients.push(alice);
    const vcard = await alice.iq(xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.ok(vcard.getChild('vCard', 'vcard-temp')?.children.length, 'the vCard came along');
  });

  it('`cert import DIR` picks the Let\'s Encrypt files for the host, and a running server serves them', async function () {
    const server = fresh();
    await server.start();
    const live = path.join(server.dir, 'letsencrypt', 'live', 'localhost');
    mkdirSync(live, { recursive: true });
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
      '-keyout', path.join(live, 'privkey.pem'), '-out', path.join(live, 'fullchain.pem'),
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    const r = await server.cli(['cert', 'import', path.join(server.dir, 'letsencrypt', 'live')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const installed = path.join(server.dir, 'data', 'certs', 'localhost.crt');
    assert.equal(new X509Certificate(readFileSync(installed)).fingerprint256, new X509Certificate(readFileSync(path.join(live, 'fullchain.pem'))).fingerprint256);
    assert.match(r.stdout, /running server: localhost: updated/);
  });

  it('`check` reports a missing certificate file, a port listed twice, no client port, and certificate expiry and names', async function () {
    const broken = fresh({ c2sPorts: [5999], c2sDirectTlsPorts: [5999], tls: { certificate: '/nonexistent/c.crt', key: '/nonexistent/c.key' } });
    let r = await broken.cli(['check']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /port 5999 is listed twice \(c2sPorts and c2sDirectTlsPorts\)/);
    assert.match(r.stdout, /\/nonexistent\/c\.crt does not exist/);
    assert.match(r.stdout, /problem\(s\) found/);

    const noPorts = fresh({ c2sPorts: [], c2sDirectTlsPorts: [] });
    r = await noPorts.cli(['check']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /c2sPorts and c2sDirectTlsPorts are both empty: no client can connect/);

    const dir = mkdtempSync(path.join(tmpdir(), 'cadence-check-'));
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '5',
        '-subj', '/CN=elsewhere.example', '-addext', 'subjectAltName=DNS:elsewhere.example',
        '-keyout', path.join(dir, 'c.key'), '-out', path.join(dir, 'c.crt'),
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      const wrongName = fresh({ tls: { certificate: path.join(dir, 'c.crt'), key: path.join(dir, 'c.key') } });
      r = await wrongName.cli(['check']);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /localhost: .*c\.crt, valid until \d{4}-\d{2}-\d{2}/);
      assert.match(r.stdout, /error: .*localhost/);
      assert.match(r.stdout, /warning: .*expires/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(!existsSync(path.join(broken.dir, 'data', 'cadence.sock')));
  });
});
