import assert from 'node:assert/strict';
import { RosterManager } from '../../core/rostermanager.ts';
import { StorageManager } from '../../core/storage/manager.ts';

describe('roster manager', function () {
  let storage: StorageManager;
  let rosters: RosterManager;
  beforeEach(() => {
    storage = new StorageManager({ driver: 'memory', dataDir: '/nonexistent' });
    rosters = new RosterManager(storage);
  });
  afterEach(() => storage.close());

  it('saves items and metadata atomically and bumps the version', async function () {
    const r = await rosters.load('h', 'u');
    r.items.set('c@h', { subscription: 'to', groups: ['Friends'], name: 'C' });
    r.pending.set('p@h', '<presence type="subscribe"/>');
    await rosters.save('h', 'u', r, ['c@h']);
    await new Promise((res) => setImmediate(res));
    const again = await rosters.load('h', 'u');
    assert.notEqual(again, r, 'a fresh copy once nobody uses the old one');
    assert.equal(again.version, 1);
    assert.deepEqual(again.items.get('c@h'), { subscription: 'to', groups: ['Friends'], name: 'C' });
    assert.equal(again.pending.get('p@h'), '<presence type="subscribe"/>');
  });

  it('hands out the roster being saved, so a login never reads an older copy', async function () {
    const r = await rosters.load('h', 'u');
    r.items.set('c@h', { subscription: 'both', groups: [] });
    const saving = rosters.save('h', 'u', r, ['c@h']);
    const atLogin = await rosters.acquire('h', 'u');
    assert.equal(atLogin, r, 'the roster being saved');
    await saving;
    assert.equal(await rosters.load('h', 'u'), r, 'still pinned by the session');
    rosters.release('h', 'u');
    await new Promise((res) => setImmediate(res));
    assert.notEqual(await rosters.load('h', 'u'), r);
  });
});
