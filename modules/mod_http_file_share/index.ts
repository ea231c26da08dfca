//% requires_core_features: stanza-events-v1, storage-map, user-deleted-event, http-routes, module-serial
// HTTP File Upload (XEP-0363) as a component (`components: { 'upload.example.org': { module:
// 'http_file_share' } }`): local users of the parent host ask for a slot (slots.ts checks name,
// size, type, per-file limit and daily quota), PUT the file to /file_share/<slot>/<name> on the
// component's HTTP host, and anyone with the URL GETs it with safe download headers. Files live
// under <dataDir>/http_file_share/, expire, and go with their owner's account. doc/web.md.
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { bare, defineModule, HttpError, split, type Json, type StanzaEvent } from '../../core/api.ts';
import { discoForm, downloadHeaders, NS_UPLOAD, parseSlotRequest, slotElement, slotErrorReply, slotPath, UPLOAD_DEFAULTS, UploadSlots, type UploadRecord, type UploadState, type UploadStore } from './slots.ts';

const BASE = '/file_share';

const OPTIONS = {
  maxFileSize: { type: 'integer', description: 'Largest file, in bytes', default: UPLOAD_DEFAULTS.maxFileSize, min: 1 },
  dailyQuota: { type: 'integer', description: 'Bytes a user may upload in any 24 hours (0: no quota)', default: UPLOAD_DEFAULTS.dailyQuota, min: 0 },
  slotExpiry: { type: 'integer', description: 'Seconds a slot (its PUT URL) stays valid', default: UPLOAD_DEFAULTS.slotTtlMs / 1000, min: 1 },
  fileExpiry: { type: 'integer', description: 'Seconds an uploaded file is kept (0: until the account is deleted)', default: UPLOAD_DEFAULTS.fileTtlMs / 1000, min: 0 },
  cleanupInterval: { type: 'integer', description: 'Seconds between removals of expired files and unused slots', default: 3600, min: 1 },
  allowedTypes: { type: 'string[]', description: "Content types that may be uploaded ('image/*' for a whole type); [] allows any", default: [] },
} as const;

export default defineModule({
  description: 'HTTP File Upload (XEP-0363) component',
  // A component host has no modules of its own: iq dispatch and service discovery come with it.
  depends: ['iq', 'disco'],
  options: OPTIONS,
  async load(module) {
    // The component serves the users of its parent host (upload.example.org → example.org).
    const parent = module.host.slice(module.host.indexOf('.') + 1);
    const dir = path.join(module.dataDir, 'http_file_share');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fileOf = (id: string) => path.join(dir, id);

    // One map store, key = slot id; transitions are serialised per id (one read-check-write).
    const records = module.storage.map('http_file_share');
    const store: UploadStore = {
      get: async (id) => (await records.get<Json>(null, id)) as UploadRecord | undefined,
      put: (r) => records.set(null, r.id, r as unknown as Json),
      transition: (id, from: UploadState, to: UploadState, patch) =>
        Promise.resolve(module.serial(`upload:${id}`, async () => {
          const r = (await records.get<Json>(null, id)) as UploadRecord | undefined;
          if (!r || r.state !== from) return false;
          await records.set(null, id, { ...r, ...patch, state: to } as unknown as Json);
          return true;
        })),
      byOwner: async (owner) => [...(await records.getAll<Json>(null)).values()].map((r) => r as unknown as UploadRecord).filter((r) => r.owner === owner),
      all: async () => [...(await records.getAll<Json>(null)).values()].map((r) => r as unknown as UploadRecord),
      delete: (id) => records.set(null, id, undefined),
    };
    const allowed = module.option('allowedTypes');
    const slots = new UploadSlots({
      maxFileSize: module.option('maxFileSize'),
      dailyQuota: module.option('dailyQuota'),
      slotTtlMs: module.option('slotExpiry') * 1000,
      fileTtlMs: module.option('fileExpiry') * 1000,
      allowedTypes: allowed.length ? allowed : undefined,
    }, store);

    module.addIdentity('store', 'file', 'HTTP File Upload');
    module.addFeature(NS_UPLOAD);
    module.addItem('extension', discoForm(slots.maxFileSize));

    module.hook(`iq-get/host/${NS_UPLOAD}:request`, async ({ origin, stanza }: StanzaEvent) => {
      const from = String(stanza.attrs.from ?? '');
      const owner = bare(from);
      if (!owner || split(owner).host !== parent || origin.type !== 'c2s') {
        throw module.stanzaError('cancel', 'forbidden', `Only users of ${parent} may upload here`);
      }
      const request = parseSlotRequest(stanza)!;
      const r = await slots.requestSlot(owner, request);
      if (!r.ok) {
        origin.send(slotErrorReply(stanza, r.error));
        return true;
      }
      const url = module.http.url(`${BASE}${slotPath(r.record)}`);
      module.log('slot for %s: %d bytes of %s', owner, r.record.size, r.record.contentType);
      origin.send(module.iqResult(stanza, slotElement(url, url)));
      return true;
    });

    const cors = { origins: '*' as const, headers: ['Content-Type'] };
    module.http.route('PUT', `${BASE}/:slot/:name`, async (req) => {
      const id = req.params.slot!;
      const begun = await slots.beginPut(id, req.params.name!, { contentLength: req.headers['content-length'], contentType: req.headers['content-type'] });
      // Refused before a byte of the body is read (with Expect: 100-continue, never sent).
      if (!begun.ok) throw new HttpError(begun.status, begun.text);
      const part = `${fileOf(id)}.part`;
      let stored = false;
      try {
        const fh = await open(part, 'wx', 0o600);
        try {
          let bytes = 0;
          for await (const chunk of req.bodyStream()) {
            bytes += chunk.length;
            if (bytes > begun.record.size) throw new HttpError(413, 'More bytes than the slot allows');
            await fh.write(chunk);
          }
          if (bytes !== begun.record.size) throw new HttpError(400, `Expected ${begun.record.size} bytes, got ${bytes}`);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(part, fileOf(id));
        stored = true;
      } finally {
        if (!stored) await rm(part, { force: true });
        await slots.finishPut(id, stored);
      }
      module.log('stored %d bytes for %s', begun.record.size, begun.record.owner);
      return { status: 201 };
    }, { maxBodyBytes: slots.maxFileSize, timeoutMs: 30 * 60_000, redactParams: ['slot', 'name'], cors });

    module.http.route('GET', `${BASE}/:slot/:name`, async (req) => {
      const r = await slots.getFile(req.params.slot!, req.params.name!);
      if (!r) throw new HttpError(404, 'Not found');
      return { status: 200, headers: downloadHeaders(r), body: req.method === 'HEAD' ? undefined : createReadStream(fileOf(r.id)) };
    }, { redactParams: ['slot', 'name'], cors });

    const unlink = async (gone: UploadRecord[]) => {
      for (const r of gone) {
        await rm(fileOf(r.id), { force: true });
        await rm(`${fileOf(r.id)}.part`, { force: true });
      }
    };
    module.setInterval(() => {
      slots.cleanup()
        .then(async (gone) => {
          await unlink(gone);
          if (gone.length) module.log.info('removed %d expired uploads and unused slots', gone.length);
        })
        .catch((err: unknown) => module.log.error('upload cleanup failed: %s', err));
    }, module.option('cleanupInterval') * 1000);
    // An account's uploads go with it.
    module.hookEachHost('user-deleted', async ({ host, username }) => {
      if (host !== parent) return;
      const gone = await slots.removeOwner(`${username}@${host}`);
      await unlink(gone);
      if (gone.length) module.log.info('removed %d uploads of deleted account %s@%s', gone.length, username, host);
    });
  },
});
