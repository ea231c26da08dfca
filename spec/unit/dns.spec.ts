// DNS for s2s: the wire format (RFC 1035, EDNS(0) RFC 6891, AD/DO RFC 4035), the stub client
// against a DNS server on loopback (spec/helpers/dns-server.ts — no query leaves the machine),
// SRV ordering (RFC 2782), and the targets of a remote domain (RFC 6120 §3.2, XEP-0368).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DnsClient, Resolver, orderSrv, parseDnsServer, parseHosts, parseS2sRoutes, resolveS2sTargets, type S2sRoute } from '../../core/net/dns.ts';
import { DnsFormatError, RRTYPE, decodeMessage, encodeName, encodeQuery, formatIpv6 } from '../../core/util/dns-message.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A seeded PRNG (mulberry32), so "random" SRV selection is the same on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('DNS wire format (RFC 1035, RFC 6891, RFC 4035)', () => {
  it('encodes a query: RD and AD set, one question, an OPT record with the DO bit', () => {
    const q = encodeQuery({ id: 0x1234, name: 'example.org', type: RRTYPE.SRV });
    assert.equal(q.toString('hex'), hex(`
      1234 0120 0001 0000 0000 0001
      07 6578616d706c65 03 6f7267 00 0021 0001
      00 0029 04d0 00008000 0000`).toString('hex'));
    const plain = encodeQuery({ id: 1, name: 'example.org.', type: RRTYPE.A, edns: false });
    assert.equal(plain.readUInt16BE(10), 0);
    assert.equal(plain.length, 12 + 13 + 4);
  });

  it('refuses names it cannot encode', () => {
    assert.throws(() => encodeName(`${'a'.repeat(64)}.example`), DnsFormatError);
    assert.throws(() => encodeName('a..example'), DnsFormatError);
    assert.throws(() => encodeName('exa mple.org'), DnsFormatError);
    assert.throws(() => encodeName(Array(130).fill('ab').join('.')), DnsFormatError);
    assert.deepEqual([...encodeName('.')], [0]);
    assert.deepEqual([...encodeName('_xmpp-server._tcp.a')], [12, ...Buffer.from('_xmpp-server'), 4, ...Buffer.from('_tcp'), 1, 97, 0]);
  });

  // A response built by hand: the SRV owner is a pointer to the question, its target a label
  // followed by a pointer into the question name; AD set; an OPT with an extended rcode of 0.
  const response = hex(`
    abcd 81a0 0001 0001 0000 0001
    0c 5f786d70702d736572766572 04 5f746370 07 6578616d706c65 03 6f7267 00 0021 0001
    c00c 0021 0001 00000e10 000d 000a 0005 1495 04 786d7070 c01e
    00 0029 1000 00008000 0000`);

  it('decodes an answer with compressed names, flags, EDNS and SRV data', () => {
    const m = decodeMessage(response);
    assert.equal(m.id, 0xabcd);
    assert.equal(m.flags.qr, true);
    assert.equal(m.flags.ad, true);
    assert.equal(m.flags.rd, true);
    assert.equal(m.flags.ra, true);
    assert.equal(m.rcode, 0);
    assert.deepEqual(m.questions, [{ name: '_xmpp-server._tcp.example.org', type: 33, class: 1 }]);
    assert.deepEqual(m.answers, [{ name: '_xmpp-server._tcp.example.org', type: 33, class: 1, ttl: 3600, data: { kind: 'SRV', priority: 10, weight: 5, port: 5269, target: 'xmpp.example.org' } }]);
    assert.deepEqual(m.edns, { udpSize: 4096, version: 0, dnssecOk: true });
  });

  it('refuses malformed messages: loops, forward pointers, truncation, bad lengths, stray OPT', () => {
    const bad = (patch: (b: Buffer) => Buffer) => () => decodeMessage(patch(Buffer.from(response)));
    // The answer's owner pointer made to point at itself, then forwards.
    assert.throws(bad((b) => { b.writeUInt16BE(0xc000 | 0x2f, 0x2f); return b; }), DnsFormatError);
    assert.throws(bad((b) => { b.writeUInt16BE(0xc000 | 0x40, 0x2f); return b; }), DnsFormatError);
    assert.throws(bad((b) => b.subarray(0, b.length - 14)), DnsFormatError);
    assert.throws(bad((b) => b.subarray(0, 11)), DnsFormatError);
    // SRV rdlength one octet too long.
    assert.throws(bad((b) => { b.writeUInt16BE(0x0e, 0x39); return b; }), DnsFormatError);
    // Label type 0x40 (extended labels) is not supported.
    assert.throws(bad((b) => { b[12] = 0x4c; return b; }), DnsFormatError);
    // An A record of five octets.
    const a = hex('0001 8180 0000 0001 0000 0000 00 0001 0001 00000000 0005 0102030405');
    assert.throws(() => decodeMessage(a), DnsFormatError);
    // An OPT in the answer section.
    const opt = hex('0001 8180 0000 0001 0000 0000 00 0029 1000 00000000 0000');
    assert.throws(() => decodeMessage(opt), DnsFormatError);
    // A name longer than 255 octets through pointers: four 63-octet labels, then one more.
    const long = Buffer.concat([hex('0001 8180 0001 0000 0000 0000'), ...Array(4).fill(Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([1, 0x61, 0]), hex('0001 0001')]);
    assert.throws(() => decodeMessage(long), DnsFormatError);
  });

  it('reads an extended rcode, a TTL with its top bit set as zero, escapes odd bytes in labels', () => {
    const m = decodeMessage(hex(`
      0001 8183 0000 0001 0000 0001
      03 612e62 00 0001 0001 80000000 0004 c0000201
      00 0029 1000 01000000 0000`));
    assert.equal(m.rcode, 3 | (1 << 4));
    assert.equal(m.answers[0]!.ttl, 0);
    assert.equal(m.answers[0]!.name, 'a\\046b');
    assert.deepEqual(m.answers[0]!.data, { kind: 'A', address: '192.0.2.1' });
  });

  it('formats IPv6 addresses as RFC 5952 says', () => {
    const v6 = (s: string) => formatIpv6(hex(s));
    assert.equal(v6('20010db8000000000000000000000001'), '2001:db8::1');
    assert.equal(v6('00000000000000000000000000000001'), '::1');
    assert.equal(v6('00000000000000000000000000000000'), '::');
    assert.equal(v6('fe800000000000000000000000000000'), 'fe80::');
    assert.equal(v6('20010db8000000010001000100010001'), '2001:db8:0:1:1:1:1:1');
    assert.equal(v6('20010000000000010000000000000001'), '2001:0:0:1::1');
    assert.equal(v6('20010db8000000000001000000000001'), '2001:db8::1:0:0:1');
  });
});

describe('DNS client and resolver against a loopback server', () => {
  let dns: TestDnsServer;
  let dns2: TestDnsServer;
  let hostsDir: string;
  beforeEach(async () => {
    dns = await startDnsServer();
    dns2 = await startDnsServer();
    hostsDir = mkdtempSync(path.join(tmpdir(), 'cadence-hosts-'));
  });
  afterEach(async () => {
    await dns.close();
    await dns2.close();
    rmSync(hostsDir, { recursive: true, force: true });
  });
  const resolver = (extra: Partial<ConstructorParameters<typeof Resolver>[0]> = {}) =>
    new Resolver({ servers: [dns.address], hostsFile: false, timeoutMs: 500, attempts: 1, ...extra });

  it('parses server addresses with and without ports', () => {
    assert.deepEqual(parseDnsServer('127.0.0.1'), { address: '127.0.0.1', port: 53, family: 4 });
    assert.deepEqual(parseDnsServer('127.0.0.1:5353'), { address: '127.0.0.1', port: 5353, family: 4 });
    assert.deepEqual(parseDnsServer('::1'), { address: '::1', port: 53, family: 6 });
    assert.deepEqual(parseDnsServer('[2001:DB8::53]:5353'), { address: '2001:db8::53', port: 5353, family: 6 });
    for (const bad of ['', 'dns.example', '127.0.0.1:0', '127.0.0.1:70000', '[::1]:x']) assert.equal(parseDnsServer(bad), undefined, bad);
    assert.throws(() => new DnsClient({ servers: ['resolver.example'] }), TypeError);
  });

  it('asks nobody when configured with no servers, and the system\'s servers only when not configured', async () => {
    const none = new Resolver({ servers: [], hostsFile: false });
    assert.deepEqual(none.client.servers, []);
    assert.deepEqual(await none.lookup('example.org', RRTYPE.A), { ok: false, error: 'network', detail: 'no DNS servers configured' });
    assert.equal(new Resolver({ hostsFile: false }).client.servers.length > 0, true);
  });

  it('asks with EDNS and DO, and reports answers with AD as DNSSEC-validated', async () => {
    dns.set('signed.example', [{ type: 'A', address: '192.0.2.10' }], { secure: true });
    dns.set('unsigned.example', [{ type: 'A', address: '192.0.2.11' }]);
    const r = resolver();
    const signed = await r.lookup('signed.example', RRTYPE.A);
    assert.ok(signed.ok);
    assert.equal(signed.secure, true);
    assert.deepEqual(signed.records.map((x) => x.data), [{ kind: 'A', address: '192.0.2.10' }]);
    const unsigned = await r.lookup('unsigned.example', RRTYPE.A);
    assert.ok(unsigned.ok);
    assert.equal(unsigned.secure, false);
    assert.ok(dns.queries.every((q) => q.edns && q.dnssecOk && q.transport === 'udp'));
    // The AD bit is ignored when the operator says not to trust it.
    const distrust = await resolver({ trustAd: 'never' }).lookup('signed.example', RRTYPE.A);
    assert.ok(distrust.ok);
    assert.equal(distrust.secure, false);
  });

  it('reads SRV, TLSA, AAAA and NXDOMAIN answers', async () => {
    dns.set('_xmpp-server._tcp.example.org', [{ type: 'SRV', priority: 5, weight: 10, port: 5269, target: 'xmpp.example.org' }]);
    dns.set('_5269._tcp.xmpp.example.org', [{ type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: 'aa'.repeat(32) }]);
    dns.set('xmpp.example.org', [{ type: 'AAAA', address: '2001:db8::5' }, { type: 'A', address: '192.0.2.5' }]);
    const r = resolver();
    assert.deepEqual(await r.srv('_xmpp-server._tcp.example.org'), { ok: true, records: [{ priority: 5, weight: 10, port: 5269, target: 'xmpp.example.org' }], secure: false, nxdomain: false });
    const tlsa = await r.tlsa('xmpp.example.org', 5269);
    assert.ok(tlsa.ok);
    assert.deepEqual(tlsa.records, [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 0xaa) }]);
    assert.deepEqual(await r.addresses('xmpp.example.org'), { ok: true, addresses: [{ address: '2001:db8::5', family: 6 }, { address: '192.0.2.5', family: 4 }], secure: false, source: 'dns' });
    assert.deepEqual(await r.srv('_xmpp-server._tcp.nowhere.example'), { ok: true, records: [], secure: false, nxdomain: true });
    assert.deepEqual(await r.addresses('nowhere.example'), { ok: false, error: 'not-found', detail: 'nowhere.example does not exist (NXDOMAIN)' });
  });

  it("answers 'not-found' for addresses only when DNS says so (NXDOMAIN, or a name without address records); a failed lookup is the failure", async () => {
    dns.set('noaddress.example', []);
    dns.behave('broken.example', 'servfail');
    const r = resolver();
    assert.deepEqual(await r.addresses('noaddress.example'), { ok: false, error: 'not-found', detail: 'noaddress.example has no address records' });
    const broken = await r.addresses('broken.example');
    assert.equal(!broken.ok && broken.error, 'servfail');
  });

  it('retries over TCP when the UDP answer is truncated', async () => {
    dns.set('big.example', [{ type: 'A', address: '192.0.2.20' }]);
    dns.behave('big.example', 'truncate');
    const r = await resolver().lookup('big.example', RRTYPE.A);
    assert.ok(r.ok);
    assert.deepEqual(r.records.map((x) => x.data), [{ kind: 'A', address: '192.0.2.20' }]);
    assert.deepEqual(dns.queries.map((q) => q.transport), ['udp', 'tcp']);
  });

  it('moves to the next server on SERVFAIL, REFUSED or silence, and reports failure when all fail', async () => {
    dns.set('peer.example', [{ type: 'A', address: '192.0.2.1' }]);
    dns2.set('peer.example', [{ type: 'A', address: '192.0.2.2' }]);
    dns.behave('peer.example', 'servfail');
    const r = await new Resolver({ servers: [dns.address, dns2.address], hostsFile: false, timeoutMs: 300, attempts: 1 }).lookup('peer.example', RRTYPE.A);
    assert.ok(r.ok);
    assert.deepEqual(r.records.map((x) => x.data), [{ kind: 'A', address: '192.0.2.2' }]);
    dns2.behave('peer.example', 'silent');
    dns.behave('peer.example', 'refused');
    const none = await new DnsClient({ servers: [dns.address, dns2.address], timeoutMs: 200, attempts: 1 }).query('peer.example', RRTYPE.A);
    assert.equal(none.ok, false);
    assert.equal(!none.ok && none.error, 'timeout');
    dns2.behave('peer.example', 'servfail');
    const servfail = await new DnsClient({ servers: [dns2.address], timeoutMs: 200, attempts: 2 }).query('peer.example', RRTYPE.A);
    assert.equal(!servfail.ok && servfail.error, 'servfail');
    assert.equal(dns2.queries.filter((q) => q.name === 'peer.example').length, 4);
  });

  it('ignores a forged answer with the wrong id and takes the real one', async () => {
    dns.set('victim.example', [{ type: 'A', address: '192.0.2.30' }]);
    dns.behave('victim.example', 'forge-first');
    const r = await resolver().lookup('victim.example', RRTYPE.A);
    assert.ok(r.ok);
    assert.deepEqual(r.records.map((x) => x.data), [{ kind: 'A', address: '192.0.2.30' }]);
  });

  it('follows CNAME chains, secure only when every step is', async () => {
    dns.set('alias.example', [{ type: 'CNAME', target: 'middle.example' }], { secure: true });
    dns.set('middle.example', [{ type: 'CNAME', target: 'host.example' }], { secure: true });
    dns.set('host.example', [{ type: 'A', address: '192.0.2.40' }], { secure: true });
    const r = await resolver().addresses('alias.example');
    assert.ok(r.ok);
    assert.deepEqual(r.addresses, [{ address: '192.0.2.40', family: 4 }]);
    dns.set('loop1.example', [{ type: 'CNAME', target: 'loop2.example' }]);
    dns.set('loop2.example', [{ type: 'CNAME', target: 'loop1.example' }]);
    const loop = await resolver().lookup('loop1.example', RRTYPE.A);
    assert.equal(loop.ok, false);
    dns.set('half.example', [{ type: 'CNAME', target: 'host2.example' }], { secure: true });
    dns.set('host2.example', [{ type: 'A', address: '192.0.2.41' }]);
    const half = await resolver().lookup('half.example', RRTYPE.A);
    assert.ok(half.ok);
    assert.equal(half.secure, false);
  });

  it('answers addresses from the hosts file without asking DNS, and IP literals directly', async () => {
    const file = path.join(hostsDir, 'hosts');
    writeFileSync(file, '# test hosts\n127.0.0.2 prosody.test  # a peer\n127.0.0.3\tejabberd.test ejabberd\n::1 prosody.test\n');
    const r = resolver({ hostsFile: file });
    assert.deepEqual(await r.addresses('Prosody.Test.'), { ok: true, addresses: [{ address: '127.0.0.2', family: 4 }, { address: '::1', family: 6 }], secure: false, source: 'hosts' });
    assert.deepEqual(await r.addresses('ejabberd'), { ok: true, addresses: [{ address: '127.0.0.3', family: 4 }], secure: false, source: 'hosts' });
    assert.deepEqual(await r.addresses('[::1]'), { ok: true, addresses: [{ address: '::1', family: 6 }], secure: false, source: 'literal' });
    assert.equal(dns.queries.length, 0);
    assert.deepEqual(parseHosts('bogus line\n10.0.0.1\n'), new Map());
  });

  it('caches answers for their TTL and negative answers for the SOA minimum it lacks (none here)', async () => {
    let clock = 0;
    dns.set('cached.example', [{ type: 'A', address: '192.0.2.50', ttl: 60 }]);
    const r = resolver({ now: () => clock });
    await r.lookup('cached.example', RRTYPE.A);
    await r.lookup('cached.example', RRTYPE.A);
    assert.equal(dns.queries.length, 1);
    clock += 61_000;
    await r.lookup('cached.example', RRTYPE.A);
    assert.equal(dns.queries.length, 2);
    // Without an SOA, a negative answer is not cached.
    await r.lookup('missing.example', RRTYPE.A);
    await r.lookup('missing.example', RRTYPE.A);
    assert.equal(dns.queries.length, 4);
    // Concurrent identical questions share one query.
    await Promise.all([r.lookup('together.example', RRTYPE.A), r.lookup('together.example', RRTYPE.A)]);
    assert.equal(dns.queries.length, 5);
  });

  it('reports addresses as secure only when both the A and the AAAA answers were validated', async () => {
    dns.set('both.example', [{ type: 'A', address: '192.0.2.60' }, { type: 'AAAA', address: '2001:db8::60' }], { secure: true });
    const r = await resolver().addresses('both.example');
    assert.ok(r.ok);
    assert.equal(r.secure, true);
    dns.behave('both.example', 'servfail');
    const r2 = await resolver().addresses('both.example');
    assert.equal(r2.ok, false);
  });
});

describe('SRV ordering (RFC 2782)', () => {
  const rec = (name: string, priority: number, weight: number) => ({ name, priority, weight });

  it('orders by ascending priority whatever the input order', () => {
    const out = orderSrv([rec('c', 30, 0), rec('a', 10, 0), rec('b', 20, 0)], () => 0.5);
    assert.deepEqual(out.map((r) => r.name), ['a', 'b', 'c']);
  });

  it('selects within a priority by the running sum of weights, weight 0 first in the sum', () => {
    const group = [rec('b', 10, 10), rec('a', 10, 0), rec('c', 10, 20)];
    // random 0: the running sum reaches 0 at the weight-0 record, then at each next record.
    assert.deepEqual(orderSrv(group, () => 0).map((r) => r.name), ['a', 'b', 'c']);
    // random near 1: the last record of the running sum, each time.
    assert.deepEqual(orderSrv(group, () => 0.999).map((r) => r.name), ['c', 'b', 'a']);
    // All weights 0: the order given.
    assert.deepEqual(orderSrv([rec('x', 1, 0), rec('y', 1, 0), rec('z', 1, 0)], () => 0.7).map((r) => r.name), ['x', 'y', 'z']);
  });

  it('picks records in proportion to their weights (seeded, so the same on every run)', () => {
    const random = seeded(42);
    const first = { light: 0, heavy: 0, zero: 0 };
    for (let i = 0; i < 20000; i++) {
      const out = orderSrv([rec('zero', 1, 0), rec('light', 1, 10), rec('heavy', 1, 30)], random);
      first[out[0]!.name as keyof typeof first]++;
    }
    // Expected: heavy 30/41, light 10/41, zero 1/41 (it wins only when the pick is 0).
    assert.ok(Math.abs(first.heavy / 20000 - 30 / 41) < 0.02, JSON.stringify(first));
    assert.ok(Math.abs(first.light / 20000 - 10 / 41) < 0.02, JSON.stringify(first));
    assert.ok(first.zero / 20000 < 0.05, JSON.stringify(first));
  });
});

describe('targets of a remote domain (RFC 6120 §3.2, XEP-0368)', () => {
  let dns: TestDnsServer;
  let resolver: Resolver;
  beforeEach(async () => {
    dns = await startDnsServer();
    resolver = new Resolver({ servers: [dns.address], hostsFile: false, timeoutMs: 300, attempts: 1 });
  });
  afterEach(() => dns.close());

  it('uses a static route alone, without any DNS query (RFC 6120 §3.2.3)', async () => {
    const parsed = parseS2sRoutes({
      'peer.example': '127.0.0.2:5269',
      'Bücher.example': ['[::1]:5270', { host: 'xmpp.bücher.example', port: 5223, directTls: true }],
      'plain.example': 'relay.example',
    });
    assert.ok(parsed.ok);
    const routes = parsed.routes as Map<string, S2sRoute[]>;
    assert.deepEqual(await resolveS2sTargets('peer.example', { resolver, routes }), { ok: true, targets: [{ host: '127.0.0.2', port: 5269, directTls: false, source: 'route', secure: false }] });
    assert.deepEqual(await resolveS2sTargets('bücher.example', { resolver, routes }), {
      ok: true,
      targets: [
        { host: '::1', port: 5270, directTls: false, source: 'route', secure: false },
        { host: 'xmpp.xn--bcher-kva.example', port: 5223, directTls: true, source: 'route', secure: false },
      ],
    });
    assert.deepEqual((await resolveS2sTargets('plain.example', { resolver, routes })).ok && routes.get('plain.example'), [{ host: 'relay.example', port: 5269, directTls: false }]);
    assert.equal(dns.queries.length, 0);
  });

  it('reports every invalid route', () => {
    const parsed = parseS2sRoutes({ 'a..example': 'x', 'b.example': 'host:0', 'c.example': 42, 'd.example': { host: 'h', port: '1' }, 'e.example': { host: 'h', directTls: 'yes' } });
    assert.equal(parsed.ok, false);
    assert.equal(!parsed.ok && parsed.errors.length, 5);
    assert.equal(parseS2sRoutes(['x']).ok, false);
    assert.deepEqual(parseS2sRoutes(undefined), { ok: true, routes: new Map() });
  });

  it('merges _xmpp-server and _xmpps-server records and orders them together, direct TLS marked', async () => {
    dns.set('_xmpp-server._tcp.example.org', [
      { type: 'SRV', priority: 10, weight: 0, port: 5269, target: 'starttls.example.org' },
      { type: 'SRV', priority: 30, weight: 0, port: 5269, target: 'backup.example.org' },
    ], { secure: true });
    dns.set('_xmpps-server._tcp.example.org', [{ type: 'SRV', priority: 20, weight: 0, port: 5270, target: 'direct.example.org' }]);
    const r = await resolveS2sTargets('example.org', { resolver });
    assert.deepEqual(r, {
      ok: true,
      targets: [
        { host: 'starttls.example.org', port: 5269, directTls: false, source: 'srv', secure: true },
        { host: 'direct.example.org', port: 5270, directTls: true, source: 'srv', secure: false },
        { host: 'backup.example.org', port: 5269, directTls: false, source: 'srv', secure: true },
      ],
    });
    // Once SRV records exist, the domain's own address is never a target (§3.2.1 step 8).
    assert.ok(!dns.queries.some((q) => q.name === 'example.org'));
  });

  it('treats a lone "." as no service: no fallback (RFC 2782, RFC 6120 §3.2.1 step 3)', async () => {
    dns.set('_xmpp-server._tcp.closed.example', [{ type: 'SRV', priority: 0, weight: 0, port: 0, target: '.' }]);
    const r = await resolveS2sTargets('closed.example', { resolver });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error, 'no-service');
  });

  it('with "." for _xmpps-server uses the _xmpp-server records, and without any, no fallback (XEP-0368 §5)', async () => {
    dns.set('_xmpps-server._tcp.a.example', [{ type: 'SRV', priority: 0, weight: 0, port: 0, target: '.' }]);
    dns.set('_xmpp-server._tcp.a.example', [{ type: 'SRV', priority: 5, weight: 0, port: 5269, target: 'xmpp.a.example' }]);
    assert.deepEqual(await resolveS2sTargets('a.example', { resolver }), { ok: true, targets: [{ host: 'xmpp.a.example', port: 5269, directTls: false, source: 'srv', secure: false }] });
    dns.set('_xmpps-server._tcp.b.example', [{ type: 'SRV', priority: 0, weight: 0, port: 0, target: '.' }]);
    const b = await resolveS2sTargets('b.example', { resolver });
    assert.equal(!b.ok && b.error, 'no-service');
  });

  it('ignores a "." record among real ones', async () => {
    dns.set('_xmpp-server._tcp.mixed.example', [
      { type: 'SRV', priority: 0, weight: 0, port: 0, target: '.' },
      { type: 'SRV', priority: 5, weight: 0, port: 5269, target: 'xmpp.mixed.example' },
    ]);
    const r = await resolveS2sTargets('mixed.example', { resolver });
    assert.deepEqual(r.ok && r.targets.map((t) => t.host), ['xmpp.mixed.example']);
  });

  it('falls back to the domain on 5269 with STARTTLS when no SRV record exists (RFC 6120 §3.2.2)', async () => {
    assert.deepEqual(await resolveS2sTargets('nosrv.example', { resolver }), { ok: true, targets: [{ host: 'nosrv.example', port: 5269, directTls: false, source: 'fallback', secure: false }] });
    // A validated denial of both SRV names makes the fallback secure (DANE may then apply).
    dns.set('_xmpp-server._tcp.signed.example', [], { secure: true });
    dns.set('_xmpps-server._tcp.signed.example', [], { secure: true });
    assert.deepEqual(await resolveS2sTargets('signed.example', { resolver }), { ok: true, targets: [{ host: 'signed.example', port: 5269, directTls: false, source: 'fallback', secure: true }] });
  });

  it('falls back too when the SRV queries get no answer (RFC 6120 §3.2.1 step 9)', async () => {
    dns.behave('_xmpp-server._tcp.flaky.example', 'silent');
    dns.behave('_xmpps-server._tcp.flaky.example', 'servfail');
    const r = await resolveS2sTargets('flaky.example', { resolver });
    assert.deepEqual(r, { ok: true, targets: [{ host: 'flaky.example', port: 5269, directTls: false, source: 'fallback', secure: false }], srvFailed: true });
  });

  it('asks for internationalised domains in A-label form, and refuses invalid domains', async () => {
    dns.set('_xmpp-server._tcp.xn--bcher-kva.example', [{ type: 'SRV', priority: 0, weight: 0, port: 5269, target: 'xmpp.xn--bcher-kva.example' }]);
    const r = await resolveS2sTargets('BÜCHER.example', { resolver });
    assert.deepEqual(r.ok && r.targets.map((t) => t.host), ['xmpp.xn--bcher-kva.example']);
    const bad = await resolveS2sTargets('exa mple.org', { resolver });
    assert.equal(!bad.ok && bad.error, 'invalid-domain');
    const literal = await resolveS2sTargets('[::1]', { resolver });
    assert.deepEqual(literal.ok && literal.targets, [{ host: '::1', port: 5269, directTls: false, source: 'fallback', secure: false }]);
  });

  it('can leave out the _xmpps-server lookup', async () => {
    await resolveS2sTargets('only-starttls.example', { resolver, directTls: false });
    assert.deepEqual(dns.queries.map((q) => q.name), ['_xmpp-server._tcp.only-starttls.example']);
  });
});
