// `cadence check` with the s2s module enabled reports each host's own SRV records (through the
// configured resolver: a loopback DNS server here) and whether its certificate covers the domain
// for server-to-server authentication.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULTS } from '../../core/config.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { runCli, writeConfig } from '../helpers/server.ts';
import { S2sTestPki } from '../helpers/testca-s2s.ts';

describe('cadence check: server-to-server', function () {
  this.timeout(60000);
  let dns: TestDnsServer;
  let dir: string;

  beforeEach(async () => {
    dns = await startDnsServer();
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-s2s-check-'));
  });
  afterEach(async () => {
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists own SRV records and certificate coverage, and counts a certificate for another name as a problem', async () => {
    const pki = S2sTestPki.create();
    const good = pki.issue({ cn: 'a.test', dns: ['a.test'] });
    const wrong = pki.issue({ cn: 'other.test', dns: ['other.test'] });
    dns.set('_xmpp-server._tcp.a.test', [{ type: 'SRV', priority: 5, weight: 0, port: 5270, target: 'xmpp.a.test' }]);
    const cfg = writeConfig(dir, 'a.test', {
      modulesEnabled: [...DEFAULTS.modulesEnabled, 's2s'],
      dnsServers: [dns.address],
      virtualHosts: {
        'a.test': { tls: { certificate: good.certFile, key: good.keyFile } },
        'b.test': { tls: { certificate: wrong.certFile, key: wrong.keyFile } },
      },
    });
    const r = await runCli(['-c', cfg, 'check']);
    assert.match(r.stdout, /server-to-server:/);
    assert.match(r.stdout, /\+ s2s a\.test: certificate .* covers it \(DNS-ID a\.test\)/);
    assert.match(r.stdout, /\+ s2s a\.test: SRV xmpp\.a\.test:5270/);
    assert.match(r.stdout, /! s2s b\.test: certificate .* does not cover it \(no-match\)/);
    assert.match(r.stdout, /- s2s b\.test: no _xmpp-server\/_xmpps-server SRV records; peers will try b\.test:5269/);
    assert.equal(r.code, 1, r.stdout);
  });
});
