// HTTP File Upload slots (XEP-0363), modules/mod_http_file_share/slots.ts.
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import { Element } from '@xmpp/xml';
import {
  NS_UPLOAD, UploadSlots, contentDisposition, discoForm, downloadHeaders, mediaType, parseSlotRequest, quotaRetry,
  sanitiseFilename, slotElement, slotErrorReply, slotPath, type UploadRecord, type UploadState, type UploadStore,
} from '../../modules/mod_http_file_share/slots.ts';

/** The store contract in memory (the module backs it with a map store). */
class MemoryStore implements UploadStore {
  readonly records = new Map<string, UploadRecord>();
  async get(id: string) {
    const r = this.records.get(id);
    return r && { ...r };
  }
  async put(r: UploadRecord) {
    this.records.set(r.id, { ...r });
  }
  async transition(id: string, from: UploadState, to: UploadState, patch: Partial<UploadRecord> = {}) {
    const r = this.records.get(id);
    if (!r || r.state !== from) return false;
    this.records.set(id, { ...r, ...patch, state: to });
    return true;
  }
  async byOwner(owner: string) {
    return [...this.records.values()].filter((r) => r.owner === owner);
  }
  async all() {
    return [...this.records.values()];
  }
  async delete(id: string) {
    this.records.delete(id);
  }
}

const DAY = 86_400_000;

function service(policy: ConstructorParameters<typeof UploadSlots>[0] = {}) {
  const store = new MemoryStore();
  const clock = { t: Date.UTC(2026, 0, 1) };
  let n = 0;
  const slots = new UploadSlots({ maxFileSize: 1000, dailyQuota: 2500, slotTtlMs: 60_000, fileTtlMs: 7 * DAY, ...policy }, store, () => clock.t, () => `id${++n}`);
  return { store, clock, slots };
}

async function slot(slots: UploadSlots, size = 100, filename = 'photo.jpg', contentType: string | undefined = 'image/jpeg', owner = 'romeo@example.org'): Promise<UploadRecord> {
  const r = await slots.requestSlot(owner, { filename, size: String(size), contentType });
  assert.ok(r.ok, JSON.stringify(r));
  return r.record;
}

const put = (size: number | undefined, type?: string) => ({ contentLength: size === undefined ? undefined : String(size), contentType: type });

describe('HTTP File Upload slots (XEP-0363)', () => {
  describe('slot requests', () => {
    it('reads the <request/> of a slot iq', () => {
      const iq = parse(`<iq type='get' id='1'><request xmlns='${NS_UPLOAD}' filename='très cool.jpg' size='23456' content-type='image/jpeg'/></iq>`) as unknown as Element;
      assert.deepEqual(parseSlotRequest(iq), { filename: 'très cool.jpg', size: '23456', contentType: 'image/jpeg' });
      assert.equal(parseSlotRequest(parse('<iq type="get"/>') as unknown as Element), undefined);
    });

    it('hands out a stored, single-use slot with a sanitised name and an expiry', async () => {
      const { slots, store, clock } = service();
      const r = await slot(slots, 100, 'très cool.jpg', 'Image/JPEG; charset=x');
      assert.equal(r.filename, 'très cool.jpg');
      assert.equal(r.contentType, 'image/jpeg');
      assert.equal(r.state, 'pending');
      assert.equal(r.putExpiresAt, clock.t + 60_000);
      assert.deepEqual(await store.get(r.id), r, 'durable before it is handed out');
      assert.equal(slotPath(r), '/id1/tr%C3%A8s%20cool.jpg');
    });

    it('refuses a file over the size limit with not-acceptable and <file-too-large/>', async () => {
      const { slots } = service();
      const r = await slots.requestSlot('romeo@example.org', { filename: 'big.iso', size: '1001', contentType: undefined });
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.deepEqual([r.error.type, r.error.condition, r.error.maxFileSize], ['modify', 'not-acceptable', 1000]);
      const iq = parse(`<iq type='get' id='s1' from='romeo@example.org/a' to='upload.example.org'><request xmlns='${NS_UPLOAD}' filename='big.iso' size='1001'/></iq>`) as unknown as Element;
      const reply = slotErrorReply(iq, r.error);
      assert.equal(reply.attrs.type, 'error');
      assert.equal(reply.getChild('error')!.getChild('file-too-large', NS_UPLOAD)!.getChildText('max-file-size'), '1000');
      assert.ok(reply.getChild('error')!.getChild('not-acceptable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    });

    it('takes the daily quota as the size limit when it is smaller', async () => {
      const { slots } = service({ maxFileSize: 5000, dailyQuota: 2000 });
      assert.equal(slots.maxFileSize, 2000);
      const r = await slots.requestSlot('romeo@example.org', { filename: 'a', size: '2001', contentType: undefined });
      assert.equal(!r.ok && r.error.maxFileSize, 2000);
    });

    it('refuses a request without a name, with a bad size or content type (bad-request)', async () => {
      const { slots } = service();
      for (const req of [
        { filename: undefined, size: '1', contentType: undefined },
        { filename: '  ', size: '1', contentType: undefined },
        { filename: 'a', size: undefined, contentType: undefined },
        { filename: 'a', size: '-1', contentType: undefined },
        { filename: 'a', size: '1.5', contentType: undefined },
        { filename: 'a', size: '1', contentType: 'jpeg' },
      ]) {
        const r = await slots.requestSlot('romeo@example.org', req);
        assert.equal(!r.ok && r.error.condition, 'bad-request', JSON.stringify(req));
      }
    });

    it('refuses content types outside the allowed list with not-allowed', async () => {
      const { slots } = service({ allowedTypes: ['image/*', 'application/pdf'] });
      assert.equal((await slots.requestSlot('r@e', { filename: 'a.png', size: '1', contentType: 'image/png' })).ok, true);
      const r = await slots.requestSlot('r@e', { filename: 'a.html', size: '1', contentType: 'text/html' });
      assert.equal(!r.ok && r.error.condition, 'not-allowed');
    });

    it('keeps a daily quota per user, counting uploads of the last 24 hours, with a retry time', async () => {
      const { slots, clock } = service();
      const a = await slot(slots, 1000);
      assert.ok((await slots.beginPut(a.id, a.filename, put(1000, 'image/jpeg'))).ok);
      await slots.finishPut(a.id, true);
      clock.t += 3_600_000;
      const b = await slot(slots, 1000);
      const r = await slots.requestSlot('romeo@example.org', { filename: 'c.jpg', size: '600', contentType: 'image/jpeg' });
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.deepEqual([r.error.type, r.error.condition], ['wait', 'resource-constraint']);
      assert.equal(r.error.retryAt, a.createdAt + DAY, 'when the oldest upload leaves the window');
      const reply = slotErrorReply(parse("<iq type='get' id='q'/>") as unknown as Element, r.error);
      assert.match(reply.getChild('error')!.getChild('retry', NS_UPLOAD)!.attrs.stamp, /^2026-01-02T00:00:00Z$/);
      assert.equal((await slots.requestSlot('juliet@example.org', { filename: 'c', size: '600', contentType: undefined })).ok, true, 'another user has her own quota');
      clock.t += 60_001;
      // b's slot expired unused: it no longer counts.
      assert.equal((await slots.requestSlot('romeo@example.org', { filename: 'c', size: '600', contentType: undefined })).ok, true);
      void b;
      clock.t = a.createdAt + DAY + 1;
      assert.equal(quotaRetry([{ ...a, state: 'stored' }], clock.t, 2500, 2500), undefined, 'a day later the quota is free');
    });
    it('frees the quota of a file once it has expired, before cleanup removes it', async () => {
      const { slots, clock } = service({ dailyQuota: 1000, fileTtlMs: 10_000 });
      const a = await slot(slots, 800);
      assert.ok((await slots.beginPut(a.id, a.filename, put(800, 'image/jpeg'))).ok);
      await slots.finishPut(a.id, true);
      const full = await slots.requestSlot('romeo@example.org', { filename: 'b.jpg', size: '800', contentType: 'image/jpeg' });
      assert.equal(full.ok, false, 'the stored file counts while it is served');
      clock.t += 10_000;
      assert.equal(await slots.getFile(a.id, a.filename), undefined, 'expired: no longer served');
      assert.equal((await slots.requestSlot('romeo@example.org', { filename: 'b.jpg', size: '800', contentType: 'image/jpeg' })).ok, true);
    });
  });

  describe('PUT verification', () => {
    it('accepts the right slot, name, size and type once, then refuses a replay with 409', async () => {
      const { slots, store } = service();
      const r = await slot(slots);
      const ok = await slots.beginPut(r.id, r.filename, put(100, 'image/jpeg'));
      assert.ok(ok.ok);
      assert.equal((await store.get(r.id))!.state, 'uploading');
      assert.deepEqual(await slots.beginPut(r.id, r.filename, put(100, 'image/jpeg')), { ok: false, status: 409, text: 'This upload slot has been used' });
      await slots.finishPut(r.id, true);
      assert.equal((await slots.beginPut(r.id, r.filename, put(100, 'image/jpeg'))).ok, false);
      assert.equal((await store.get(r.id))!.state, 'stored');
    });

    it('refuses unknown slots, wrong names, expired slots, missing or wrong lengths and other types', async () => {
      const { slots, clock } = service();
      const r = await slot(slots);
      const status = async (id: string, name: string, h: ReturnType<typeof put>) => {
        const v = await slots.beginPut(id, name, h);
        return v.ok ? 0 : v.status;
      };
      assert.equal(await status('nope', r.filename, put(100, 'image/jpeg')), 404);
      assert.equal(await status(r.id, 'other.jpg', put(100, 'image/jpeg')), 404);
      assert.equal(await status(r.id, r.filename, put(undefined, 'image/jpeg')), 411);
      assert.equal(await status(r.id, r.filename, put(101, 'image/jpeg')), 413);
      assert.equal(await status(r.id, r.filename, put(99, 'image/jpeg')), 400);
      assert.equal(await status(r.id, r.filename, put(100, 'text/html')), 415);
      assert.equal(await status(r.id, r.filename, put(100, 'bogus')), 400);
      clock.t += 60_001;
      assert.equal(await status(r.id, r.filename, put(100, 'image/jpeg')), 410);
    });

    it('takes the PUT content type when the slot named none, within the allowed types', async () => {
      const { slots } = service({ allowedTypes: ['image/*'] });
      const req = await slots.requestSlot('romeo@example.org', { filename: 'x', size: '10', contentType: undefined });
      assert.ok(req.ok);
      const r = req.record;
      assert.equal(r.contentType, 'application/octet-stream');
      const bad = await slots.beginPut(r.id, 'x', put(10, 'text/html'));
      assert.equal(!bad.ok && bad.status, 415);
      const ok = await slots.beginPut(r.id, 'x', put(10, 'image/png'));
      assert.equal(ok.ok && ok.record.contentType, 'image/png');
    });

    it('lets only one of two concurrent PUTs claim the slot', async () => {
      const { slots } = service();
      const r = await slot(slots);
      const both = await Promise.all([slots.beginPut(r.id, r.filename, put(100)), slots.beginPut(r.id, r.filename, put(100))]);
      assert.deepEqual(both.map((b) => b.ok).sort(), [false, true]);
    });
  });

  describe('serving, expiry and deletion', () => {
    it('serves stored files only, until they expire', async () => {
      const { slots, clock } = service();
      const r = await slot(slots);
      assert.equal(await slots.getFile(r.id, r.filename), undefined, 'not before it is stored');
      await slots.beginPut(r.id, r.filename, put(100));
      assert.equal(await slots.getFile(r.id, r.filename), undefined, 'not while uploading');
      await slots.finishPut(r.id, true);
      assert.equal((await slots.getFile(r.id, r.filename))?.id, r.id);
      assert.equal(await slots.getFile(r.id, 'x.jpg'), undefined);
      clock.t += 7 * DAY;
      assert.equal(await slots.getFile(r.id, r.filename), undefined);
    });

    it('cleans up expired unused slots, failed uploads and expired files, and returns them', async () => {
      const { slots, clock, store } = service();
      const unused = await slot(slots, 10, 'unused');
      const failed = await slot(slots, 10, 'failed');
      const kept = await slot(slots, 10, 'kept');
      await slots.beginPut(failed.id, 'failed', put(10));
      await slots.finishPut(failed.id, false);
      await slots.beginPut(kept.id, 'kept', put(10));
      await slots.finishPut(kept.id, true);
      assert.deepEqual((await slots.cleanup()).map((r) => r.filename), ['failed']);
      clock.t += 60_001;
      assert.deepEqual((await slots.cleanup()).map((r) => r.filename), ['unused']);
      assert.deepEqual([...store.records.keys()], [kept.id]);
      clock.t += 7 * DAY;
      assert.deepEqual((await slots.cleanup()).map((r) => r.filename), ['kept']);
      void unused;
    });

    it('removes every record of a deleted account', async () => {
      const { slots, store } = service();
      await slot(slots, 10, 'a');
      await slot(slots, 10, 'b', 'image/jpeg', 'juliet@example.org');
      assert.deepEqual((await slots.removeOwner('romeo@example.org')).map((r) => r.filename), ['a']);
      assert.deepEqual([...store.records.values()].map((r) => r.owner), ['juliet@example.org']);
    });

    it('serves with nosniff, a sandboxing CSP and a safe Content-Disposition', async () => {
      const base: UploadRecord = { id: 'abc', owner: 'r@e', filename: 'très "cool".jpg', size: 5, contentType: 'image/jpeg', typeDeclared: true, createdAt: 0, putExpiresAt: 0, state: 'stored' };
      const h = downloadHeaders(base);
      assert.equal(h['Content-Type'], 'image/jpeg');
      assert.equal(h['Content-Length'], '5');
      assert.equal(h['X-Content-Type-Options'], 'nosniff');
      assert.equal(h['Content-Security-Policy'], "default-src 'none'; frame-ancestors 'none'; sandbox");
      assert.equal(h['Content-Disposition'], `inline; filename="tr_s _cool_.jpg"; filename*=UTF-8''tr%C3%A8s%20%22cool%22.jpg`);
      assert.match(downloadHeaders({ ...base, contentType: 'text/html', filename: 'page.html' })['Content-Disposition'], /^attachment; /, 'HTML is a download');
      assert.match(downloadHeaders({ ...base, contentType: 'image/svg+xml', filename: 'x.svg' })['Content-Disposition'], /^attachment; /, 'SVG can hold script');
      assert.equal(contentDisposition('a\\b%c.txt', false), `attachment; filename="a_b_c.txt"; filename*=UTF-8''a%5Cb%25c.txt`);
    });
  });

  describe('file names and types', () => {
    it('sanitises names: path parts, controls, bidi overrides, reserved characters, dots, device names, length', () => {
      assert.equal(sanitiseFilename('../../etc/passwd'), 'passwd');
      assert.equal(sanitiseFilename('C:\\Users\\x\\doc.pdf'), 'doc.pdf');
      assert.equal(sanitiseFilename('evil\u202Egpj.exe'), 'evilgpj.exe');
      assert.equal(sanitiseFilename('a\u0000b\nc.txt'), 'abc.txt');
      assert.equal(sanitiseFilename('what?<>:"|*.txt'), 'what_______.txt');
      assert.equal(sanitiseFilename('.htaccess'), 'htaccess');
      assert.equal(sanitiseFilename('name. . '), 'name');
      assert.equal(sanitiseFilename('CON.txt'), '_CON.txt');
      assert.equal(sanitiseFilename('...'), 'file');
      assert.equal(sanitiseFilename('e\u0301t\u00e9.txt'), '\u00e9t\u00e9.txt', 'NFC');
      const long = sanitiseFilename(`${'é'.repeat(300)}.jpeg`);
      assert.ok(Buffer.byteLength(long) <= 200);
      assert.ok(long.endsWith('é.jpeg'), 'the extension survives');
    });

    it('reads media types', () => {
      assert.equal(mediaType('Image/PNG'), 'image/png');
      assert.equal(mediaType('text/plain; charset=utf-8'), 'text/plain');
      assert.equal(mediaType('text'), undefined);
      assert.equal(mediaType('a/b/c'), undefined);
    });
  });

  describe('elements', () => {
    it('builds <slot/> with only the allowed headers, newlines removed', () => {
      const s = slotElement('https://u.example/a/b.jpg', 'https://u.example/a/b.jpg', { Authorization: 'Basic x\r\ny', 'X-Other': 'no' });
      assert.equal(s.toString(), `<slot xmlns="${NS_UPLOAD}"><put url="https://u.example/a/b.jpg"><header name="Authorization">Basic xy</header></put><get url="https://u.example/a/b.jpg"/></slot>`);
    });

    it('announces max-file-size in a disco form', () => {
      const x = discoForm(1000).toString();
      assert.match(x, /<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:http:upload:0<\/value><\/field>/);
      assert.match(x, /<field var="max-file-size"><value>1000<\/value><\/field>/);
    });
  });
});
