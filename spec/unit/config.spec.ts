// Configuration validation: options that moved into a module are refused at their old place with
// a message naming the new one (c2s settings are mod_c2s options since the module API reshape).
import assert from 'node:assert/strict';
import { validateConfig } from '../../core/config.ts';
import type { CoreError } from '../../core/util/errors.ts';

describe('config validation', function () {
  const base = { virtualHosts: { 'example.org': {} } };
  const modules = new Set(['c2s', 'ping']);
  const check = (raw: Record<string, unknown>) => validateConfig({ ...base, ...raw }, (n) => modules.has(n));

  for (const [old, now] of [
    ['c2sStanzaSizeLimit', 'c2s: { stanzaSizeLimit }'],
    ['c2sPreauthStanzaSizeLimit', 'c2s: { preauthStanzaSizeLimit }'],
    ['c2sMaxDepth', 'c2s: { maxDepth }'],
    ['c2sUnauthenticatedTimeout', 'c2s: { unauthenticatedTimeout }'],
    ['c2sKeepaliveInterval', 'c2s: { keepaliveInterval }'],
  ] as const) {
    it(`refuses ${old}, naming ${now}`, function () {
      assert.throws(() => check({ [old]: 10 }), (err: CoreError) => err.code === 'CONFIG_INVALID' && err.message.includes(`'${old}'`) && err.message.includes(now));
    });
  }

  it('accepts the c2s settings as options of mod_c2s, and ports at the top level', function () {
    const cfg = check({ c2sPorts: [5222], c2s: { stanzaSizeLimit: 65536, keepaliveInterval: 0 } });
    assert.deepEqual(cfg.c2s, { stanzaSizeLimit: 65536, keepaliveInterval: 0 });
  });

  it('accepts the s2s policy options per virtual host and per component, checking their types', function () {
    const perHost = { s2sRequireEncryption: true, s2sSecureAuth: true, s2sSecureDomains: ['a.example'], s2sInsecureDomains: ['b.example'], s2sBlocklist: ['c.example'], s2sAllowlist: ['d.example'] };
    const cfg = validateConfig({ virtualHosts: { 'example.org': perHost }, components: { 'muc.example.org': { module: 'ping', s2sSecureAuth: false } } }, (n) => modules.has(n));
    assert.deepEqual(cfg.virtualHosts?.['example.org'], perHost);
    assert.throws(() => validateConfig({ virtualHosts: { 'example.org': { s2sBlocklist: 'c.example' } } }, (n) => modules.has(n)), (err: CoreError) => err.code === 'CONFIG_INVALID' && err.message.includes('s2sBlocklist'));
    // Options of the listeners and the resolver stay global.
    assert.throws(() => validateConfig({ virtualHosts: { 'example.org': { s2sPorts: [5269] } } }, (n) => modules.has(n)), (err: CoreError) => err.code === 'CONFIG_INVALID');
  });
});
