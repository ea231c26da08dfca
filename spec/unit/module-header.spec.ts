import assert from 'node:assert/strict';
import { checkCoreFeatures, describeFeatureCheck, headerList, parseModuleHeader } from '../../core/module-header.ts';

describe('module header', function () {
  it('reads //% key: value lines at the top, trimming values', function () {
    const h = parseModuleHeader('#!/usr/bin/env node\n\n//% requires_core_features:  a, b ,c \n//%conflicts_core_features:x\n// a comment\n//% author: Ann Example\nimport x from "y";\n//% late: ignored\n');
    assert.deepEqual(h, { requires_core_features: 'a, b ,c', conflicts_core_features: 'x', author: 'Ann Example' });
    assert.deepEqual(headerList(h, 'requires_core_features'), ['a', 'b', 'c']);
    assert.deepEqual(headerList(h, 'missing'), []);
  });

  it('requires the key to be an identifier', function () {
    assert.deepEqual(parseModuleHeader('//% 1bad: x\n//% bad-key: y\n//% good_key: z\n'), { good_key: 'z' });
  });

  it('stops at the first line of code', function () {
    assert.deepEqual(parseModuleHeader('const a = 1;\n//% requires_core_features: x\n'), {});
  });

  it('checks required and conflicting features against the registry', function () {
    const features = new Map([['sessions-v1', ''], ['storage-keyval', '']]);
    assert.deepEqual(checkCoreFeatures({ requires_core_features: 'sessions-v1' }, features), { ok: true });
    const missing = checkCoreFeatures({ requires_core_features: 'sessions-v1, teleportation' }, features);
    assert.deepEqual(missing, { ok: false, missing: ['teleportation'], conflicting: [] });
    const conflict = checkCoreFeatures({ conflicts_core_features: 'storage-keyval, other' }, features);
    assert.deepEqual(conflict, { ok: false, missing: [], conflicting: ['storage-keyval'] });
    assert.match(describeFeatureCheck(missing), /requires missing core feature\(s\): teleportation/);
    assert.match(describeFeatureCheck(conflict), /conflicts with core feature\(s\): storage-keyval/);
  });
});
