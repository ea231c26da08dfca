import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StanzaError } from '../../core/util/errors.ts';
import { ArchiveIdNotFoundError, StorageManager } from '../../core/storage/manager.ts';
import type { Json, StorageConfig } from '../../core/storage/manager.ts';
import { newArchiveId } from '../../core/storage/drivers/common.ts';

const HOST = 'example.com';
const OTHER = 'other.example';

for (const driver of ['memory', 'sqlite'] as const) {
  describe(`storage (${driver} driver)`, () => {
    let dir: string;
    let cfg: StorageConfig;
    let sm: StorageManager;

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'cadence-storage-'));
      cfg = { driver, dataDir: join(dir, 'data') };
      sm = new StorageManager(cfg);
    });

    afterEach(async () => {
      await sm.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('reports its driver name', () => {
      assert.equal(sm.driverName, driver);
    });

    describe('keyval', () => {
      it('gets, sets and deletes with undefined', async () => {
        const kv = sm.keyval(HOST, 'accounts');
        assert.equal(await kv.get('alice'), undefined);
        await kv.set('alice', { password: 'x', n: 1, list: [1, 'a', null, true] });
        assert.deepEqual(await kv.get('alice'), { password: 'x', n: 1, list: [1, 'a', null, true] });
        await kv.set('alice', 'replaced');
        assert.equal(await kv.get('alice'), 'replaced');
        await kv.set('alice', undefined);
        assert.equal(await kv.get('alice'), undefined);
      });

      it('keeps null distinct from missing, and supports the null (host-wide) user', async () => {
        const kv = sm.keyval(HOST, 'settings');
        await kv.set('bob', null);
        assert.equal(await kv.get('bob'), null);
        await kv.set(null, { motd: 'hi' });
        assert.deepEqual(await kv.get(null), { motd: 'hi' });
        assert.equal(await kv.get('carol'), undefined);
      });

      it('lists users (sorted, without the null user)', async () => {
        const kv = sm.keyval(HOST, 'accounts');
        assert.deepEqual(await kv.users(), []);
        await kv.set('zed', 1);
        await kv.set('alice', 2);
        await kv.set(null, 3);
        await kv.set('bob', 4);
        await kv.set('bob', undefined);
        assert.deepEqual(await kv.users(), ['alice', 'zed']);
        assert.deepEqual(await sm.keyval(HOST, 'other').users(), []);
      });

      it('does not share objects with the caller', async () => {
        const kv = sm.keyval(HOST, 'x');
        const v = { a: [1] };
        await kv.set('u', v);
        v.a.push(2);
        const got = await kv.get<{ a: number[] }>('u');
        assert.deepEqual(got, { a: [1] });
        got!.a.push(3);
        assert.deepEqual(await kv.get('u'), { a: [1] });
      });

      it('separates stores', async () => {
        await sm.keyval(HOST, 'a').set('u', 1);
        await sm.keyval(HOST, 'b').set('u', 2);
        assert.equal(await sm.keyval(HOST, 'a').get('u'), 1);
        assert.equal(await sm.keyval(HOST, 'b').get('u'), 2);
      });
    });

    describe('map', () => {
      it('gets, sets and deletes keys', async () => {
        const m = sm.map(HOST, 'roster');
        assert.equal(await m.get('alice', 'bob@example.com'), undefined);
        await m.set('alice', 'bob@example.com', { subscription: 'both' });
        await m.set('alice', 'carol@example.com', { subscription: 'none' });
        assert.deepEqual(await m.get('alice', 'bob@example.com'), { subscription: 'both' });
        await m.set('alice', 'bob@example.com', undefined);
        assert.equal(await m.get('alice', 'bob@example.com'), undefined);
        assert.deepEqual([...(await m.getAll('alice')).keys()], ['carol@example.com']);
      });

      it('getAll returns a Map of all keys of the user only', async () => {
        const m = sm.map(HOST, 'roster');
        assert.equal((await m.getAll('alice')).size, 0);
        await m.set('alice', 'k1', 1);
        await m.set('alice', 'k2', [2]);
        await m.set('bob', 'k3', 3);
        await m.set(null, 'k4', 4);
        const all = await m.getAll('alice');
        assert.ok(all instanceof Map);
        assert.deepEqual(Object.fromEntries(all), { k1: 1, k2: [2] });
        assert.deepEqual(Object.fromEntries(await m.getAll(null)), { k4: 4 });
      });

      it('setKeys sets and deletes several keys', async () => {
        const m = sm.map(HOST, 'private');
        await m.set('alice', 'old', 'x');
        await m.setKeys('alice', { a: 1, b: { c: 'd' }, old: undefined });
        assert.deepEqual(Object.fromEntries(await m.getAll('alice')), { a: 1, b: { c: 'd' } });
      });

      it('setKeys is atomic: a bad value changes nothing', async () => {
        const m = sm.map(HOST, 'private');
        await m.setKeys('alice', { a: 1, b: 2 });
        // Neither JSON (BigInt) nor structured-clone (function) can serialise this.
        const bad = { big: 1n, fn: () => 0 } as unknown as Json;
        await assert.rejects(m.setKeys('alice', { a: 10, c: 3, b: undefined, z: bad }));
        assert.deepEqual(Object.fromEntries(await m.getAll('alice')), { a: 1, b: 2 });
      });

      it('clear removes every key of that user in that store only', async () => {
        const m = sm.map(HOST, 'roster');
        await m.setKeys('alice', { a: 1, b: 2 });
        await m.set('bob', 'a', 1);
        await sm.map(HOST, 'other').set('alice', 'a', 1);
        await m.clear('alice');
        assert.equal((await m.getAll('alice')).size, 0);
        assert.equal(await m.get('bob', 'a'), 1);
        assert.equal(await sm.map(HOST, 'other').get('alice', 'a'), 1);
      });

      it('does not share objects with the caller', async () => {
        const m = sm.map(HOST, 'x');
        const v = { a: 1 };
        await m.set('u', 'k', v);
        v.a = 2;
        const all = await m.getAll<{ a: number }>('u');
        all.get('k')!.a = 3;
        assert.deepEqual(await m.get('u', 'k'), { a: 1 });
      });
    });

    describe('archive', () => {
      const fill = async (user: string | null = 'alice') => {
        const a = sm.archive(HOST, 'mam');
        const ids: string[] = [];
        const withs = ['bob@example.com/phone', 'carol@example.com', 'bob@example.com', 'bob@example.com/laptop', 'bobby@example.com/x', undefined];
        for (let i = 0; i < withs.length; i++) {
          const w = withs[i];
          ids.push(await a.append(user, { when: 1000 * (i + 1), ...(w ? { with: w } : {}), payload: `<m n="${i}"/>` }));
        }
        return { a, ids };
      };

      it('appends and finds in insertion order with generated unique ids', async () => {
        const { a, ids } = await fill();
        assert.equal(new Set(ids).size, ids.length);
        const items = await a.find('alice');
        assert.deepEqual(items.map((i) => i.id), ids);
        assert.deepEqual(items[0], { id: ids[0], when: 1000, with: 'bob@example.com/phone', payload: '<m n="0"/>' });
        assert.deepEqual(items[5], { id: ids[5], when: 6000, payload: '<m n="5"/>' });
        assert.ok(!('with' in items[5]!));
      });

      it('orders by insertion, not by when', async () => {
        const a = sm.archive(HOST, 'mam');
        const late = await a.append('u', { when: 5000, payload: 'a' });
        const early = await a.append('u', { when: 1000, payload: 'b' });
        assert.deepEqual((await a.find('u')).map((i) => i.id), [late, early]);
      });

      it('defaults when to now and keeps a given id', async () => {
        const a = sm.archive(HOST, 'mam');
        const before = Date.now();
        const id = await a.append('u', { payload: 'p', id: 'my-id' });
        assert.equal(id, 'my-id');
        const [item] = await a.find('u');
        assert.equal(item!.id, 'my-id');
        assert.ok(item!.when >= before && item!.when <= Date.now());
      });

      it('appending an existing id replaces that item', async () => {
        const a = sm.archive(HOST, 'mam');
        await a.append('u', { payload: 'one', id: 'x' });
        await a.append('u', { payload: 'two', id: 'y' });
        await a.append('u', { payload: 'three', id: 'x' });
        assert.deepEqual((await a.find('u')).map((i) => i.payload), ['two', 'three']);
      });

      it('limit, reverse', async () => {
        const { a, ids } = await fill();
        assert.deepEqual((await a.find('alice', { limit: 2 })).map((i) => i.id), ids.slice(0, 2));
        assert.deepEqual((await a.find('alice', { reverse: true })).map((i) => i.id), [...ids].reverse());
        assert.deepEqual((await a.find('alice', { reverse: true, limit: 2 })).map((i) => i.id), [ids[5], ids[4]]);
        assert.deepEqual(await a.find('alice', { limit: 0 }), []);
      });

      it('after/before are exclusive id bounds', async () => {
        const { a, ids } = await fill();
        assert.deepEqual((await a.find('alice', { after: ids[1] })).map((i) => i.id), ids.slice(2));
        assert.deepEqual((await a.find('alice', { before: ids[2] })).map((i) => i.id), ids.slice(0, 2));
        assert.deepEqual((await a.find('alice', { after: ids[0], before: ids[4] })).map((i) => i.id), ids.slice(1, 4));
        assert.deepEqual((await a.find('alice', { after: ids[0], limit: 2 })).map((i) => i.id), ids.slice(1, 3));
        // The page just before ids[4], newest first.
        assert.deepEqual((await a.find('alice', { before: ids[4], limit: 2, reverse: true })).map((i) => i.id), [ids[3], ids[2]]);
        assert.deepEqual(await a.find('alice', { after: ids[5] }), []);
        assert.deepEqual(await a.find('alice', { after: ids[3], before: ids[2] }), []);
      });

      it('rejects an unknown after/before id with item-not-found', async () => {
        const { a } = await fill();
        await assert.rejects(a.find('alice', { after: 'nope' }), (err: unknown) => {
          assert.ok(err instanceof ArchiveIdNotFoundError);
          assert.ok(err instanceof StanzaError);
          assert.equal(err.condition, 'item-not-found');
          return true;
        });
        await assert.rejects(a.count('alice', { before: 'nope' }), ArchiveIdNotFoundError);
        // An id from another user's archive is unknown too.
        const other = await a.append('bob', { payload: 'x' });
        await assert.rejects(a.find('alice', { after: other }), ArchiveIdNotFoundError);
      });

      it('with matches exactly, and a bare JID also matches its full JIDs', async () => {
        const { a, ids } = await fill();
        assert.deepEqual((await a.find('alice', { with: 'bob@example.com' })).map((i) => i.id), [ids[0], ids[2], ids[3]]);
        assert.deepEqual((await a.find('alice', { with: 'bob@example.com/phone' })).map((i) => i.id), [ids[0]]);
        assert.deepEqual((await a.find('alice', { with: 'carol@example.com' })).map((i) => i.id), [ids[1]]);
        assert.deepEqual(await a.find('alice', { with: 'carol@example.com/x' }), []);
        assert.deepEqual(await a.find('alice', { with: 'bob@example' }), []);
        assert.deepEqual((await a.find('alice', { with: 'example.com' })), []);
      });

      it('start/end are inclusive bounds on when', async () => {
        const { a, ids } = await fill();
        assert.deepEqual((await a.find('alice', { start: 2000, end: 4000 })).map((i) => i.id), ids.slice(1, 4));
        assert.deepEqual((await a.find('alice', { start: 5500 })).map((i) => i.id), [ids[5]]);
        assert.deepEqual((await a.find('alice', { end: 1000 })).map((i) => i.id), [ids[0]]);
        assert.deepEqual((await a.find('alice', { start: 2000, with: 'bob@example.com', limit: 1 })).map((i) => i.id), [ids[2]]);
      });

      it('ids selects given items', async () => {
        const { a, ids } = await fill();
        assert.deepEqual((await a.find('alice', { ids: [ids[4]!, ids[1]!, 'unknown'] })).map((i) => i.id), [ids[1], ids[4]]);
        assert.deepEqual(await a.find('alice', { ids: [] }), []);
      });

      it('count ignores limit and reverse', async () => {
        const { a, ids } = await fill();
        assert.equal(await a.count('alice'), 6);
        assert.equal(await a.count('alice', { with: 'bob@example.com' }), 3);
        assert.equal(await a.count('alice', { after: ids[1], limit: 1, reverse: true }), 4);
        assert.equal(await a.count('nobody'), 0);
      });

      it('delete removes matching items and returns how many', async () => {
        const { a, ids } = await fill();
        assert.equal(await a.delete('alice', { end: 2000 }), 2);
        assert.deepEqual((await a.find('alice')).map((i) => i.id), ids.slice(2));
        assert.equal(await a.delete('alice', { limit: 1 }), 1);
        assert.deepEqual((await a.find('alice')).map((i) => i.id), ids.slice(3));
        assert.equal(await a.delete('alice', { limit: 1, reverse: true }), 1);
        assert.deepEqual((await a.find('alice')).map((i) => i.id), ids.slice(3, 5));
        assert.equal(await a.delete('alice', { with: 'nobody@example.com' }), 0);
        assert.equal(await a.delete('alice'), 2);
        assert.equal(await a.count('alice'), 0);
      });

      it('delete of an unknown paging id deletes nothing', async () => {
        const { a } = await fill();
        await assert.rejects(a.delete('alice', { after: 'nope' }), ArchiveIdNotFoundError);
        assert.equal(await a.count('alice'), 6);
      });

      it('keeps users and stores apart, including the null user', async () => {
        await fill('alice');
        const a = sm.archive(HOST, 'mam');
        await a.append(null, { payload: 'host' });
        await sm.archive(HOST, 'offline').append('alice', { payload: 'off' });
        assert.equal(await a.count('alice'), 6);
        assert.deepEqual((await a.find(null)).map((i) => i.payload), ['host']);
        assert.deepEqual((await sm.archive(HOST, 'offline').find('alice')).map((i) => i.payload), ['off']);
        assert.equal(await a.count('bob'), 0);
      });
    });

    it('purgeUser removes the user from every store of every kind on that host only', async () => {
      await sm.keyval(HOST, 'accounts').set('alice', { p: 1 });
      await sm.keyval(HOST, 'vcard').set('alice', 'v');
      await sm.keyval(HOST, 'accounts').set('bob', { p: 2 });
      await sm.keyval(HOST, 'accounts').set(null, 'host');
      await sm.map(HOST, 'roster').setKeys('alice', { a: 1, b: 2 });
      await sm.map(HOST, 'roster').set('bob', 'a', 1);
      await sm.archive(HOST, 'mam').append('alice', { payload: 'x' });
      await sm.archive(HOST, 'offline').append('alice', { payload: 'y' });
      await sm.archive(HOST, 'mam').append('bob', { payload: 'z' });
      await sm.keyval(OTHER, 'accounts').set('alice', { p: 3 });
      await sm.map(OTHER, 'roster').set('alice', 'a', 1);
      await sm.archive(OTHER, 'mam').append('alice', { payload: 'w' });

      await sm.purgeUser(HOST, 'alice');

      assert.equal(await sm.keyval(HOST, 'accounts').get('alice'), undefined);
      assert.equal(await sm.keyval(HOST, 'vcard').get('alice'), undefined);
      assert.equal((await sm.map(HOST, 'roster').getAll('alice')).size, 0);
      assert.equal(await sm.archive(HOST, 'mam').count('alice'), 0);
      assert.equal(await sm.archive(HOST, 'offline').count('alice'), 0);
      assert.deepEqual(await sm.keyval(HOST, 'accounts').users(), ['bob']);
      assert.equal(await sm.keyval(HOST, 'accounts').get(null), 'host');
      assert.equal(await sm.map(HOST, 'roster').get('bob', 'a'), 1);
      assert.equal(await sm.archive(HOST, 'mam').count('bob'), 1);
      assert.deepEqual(await sm.keyval(OTHER, 'accounts').get('alice'), { p: 3 });
      assert.equal(await sm.map(OTHER, 'roster').get('alice', 'a'), 1);
      assert.equal(await sm.archive(OTHER, 'mam').count('alice'), 1);
    });

    it('isolates hosts', async () => {
      await sm.keyval(HOST, 'accounts').set('alice', 1);
      await sm.map(HOST, 'roster').set('alice', 'k', 1);
      const id = await sm.archive(HOST, 'mam').append('alice', { payload: 'x' });
      assert.equal(await sm.keyval(OTHER, 'accounts').get('alice'), undefined);
      assert.deepEqual(await sm.keyval(OTHER, 'accounts').users(), []);
      assert.equal(await sm.map(OTHER, 'roster').get('alice', 'k'), undefined);
      assert.equal(await sm.archive(OTHER, 'mam').count('alice'), 0);
      await assert.rejects(sm.archive(OTHER, 'mam').find('alice', { after: id }), ArchiveIdNotFoundError);
    });

    it('rejects calls after close', async () => {
      const kv = sm.keyval(HOST, 'accounts');
      await sm.close();
      await assert.rejects(kv.get('alice'));
      await assert.rejects(sm.keyval(HOST, 'accounts').set('alice', 1));
      sm = new StorageManager(cfg); // for afterEach
    });

    if (driver === 'sqlite') {
      it('writes <dataDir>/cadence.sqlite with private permissions', () => {
        const file = join(cfg.dataDir, 'cadence.sqlite');
        assert.ok(existsSync(file));
        assert.equal(statSync(cfg.dataDir).mode & 0o777, 0o700);
        assert.equal(statSync(file).mode & 0o077, 0);
      });

      it('is durable: a new StorageManager on the same dataDir reads the data back', async () => {
        await sm.keyval(HOST, 'accounts').set('alice', { password: 'secret' });
        await sm.map(HOST, 'roster').setKeys('alice', { 'bob@example.com': { name: 'Bob' } });
        const id1 = await sm.archive(HOST, 'mam').append('alice', { when: 42, with: 'bob@example.com/x', payload: '<message/>' });
        await sm.close();

        sm = new StorageManager(cfg);
        assert.deepEqual(await sm.keyval(HOST, 'accounts').get('alice'), { password: 'secret' });
        assert.deepEqual(await sm.keyval(HOST, 'accounts').users(), ['alice']);
        assert.deepEqual(await sm.map(HOST, 'roster').get('alice', 'bob@example.com'), { name: 'Bob' });
        const id2 = await sm.archive(HOST, 'mam').append('alice', { when: 43, payload: '<message/>' });
        const items = await sm.archive(HOST, 'mam').find('alice');
        assert.deepEqual(items, [
          { id: id1, when: 42, with: 'bob@example.com/x', payload: '<message/>' },
          { id: id2, when: 43, payload: '<message/>' },
        ]);
      });
    }
  });
}

describe('archive ids', () => {
  it('are unique and sort in generation order', () => {
    const ids = Array.from({ length: 5000 }, () => newArchiveId());
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    assert.match(ids[0]!, /^[0-9a-z]{20}$/);
  });
});
