// HTTP File Upload (XEP-0363): slots and the checks around them, without XMPP routing, HTTP or
// files of its own. The glue (mod_http_file_share, doc/web.md) answers the slot request with
// requestSlot(), runs beginPut() before it writes a byte of a PUT body and finishPut() after,
// serves GET with downloadHeaders(), and calls cleanup() periodically and removeOwner() when an
// account is deleted. Records live in an injected UploadStore (durable when its promises resolve).
//
// Slot URLs are capability URLs: /<slot id>/<file name>, the id 128 random bits (XEP-0363 §11:
// long randomized parts), so no extra PUT headers are needed. A slot is used once: the first PUT
// claims it atomically, a second one is refused (no replay).
import { randomBytes } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { errorReply, resultForm, type StanzaErrorCondition, type StanzaErrorType } from '../../core/api.ts';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';
const DAY_MS = 86_400_000;

export interface UploadPolicy {
  /** Largest file (bytes). */
  maxFileSize: number;
  /** Bytes a user may upload in any 24 hours (0: no quota). */
  dailyQuota: number;
  /** How long a slot's PUT URL is valid (ms); XEP-0363 §10 recommends about a minute. */
  slotTtlMs: number;
  /** How long an uploaded file is kept (ms); 0 keeps it until the account is deleted. */
  fileTtlMs: number;
  /** If set, only these content types (type/subtype, lower case; 'image/*' matches a type) may be uploaded. */
  allowedTypes?: readonly string[];
}

export const UPLOAD_DEFAULTS: UploadPolicy = {
  maxFileSize: 100 * 1024 * 1024,
  dailyQuota: 1024 * 1024 * 1024,
  slotTtlMs: 5 * 60_000,
  fileTtlMs: 30 * DAY_MS,
};

export type UploadState = 'pending' | 'uploading' | 'stored' | 'failed';

export interface UploadRecord {
  id: string;
  /** Bare JID of the uploader. */
  owner: string;
  /** The sanitised file name (the last URL segment). */
  filename: string;
  size: number;
  /** The content type: the requested one, else the PUT's, else application/octet-stream. */
  contentType: string;
  /** The client named a content type in its slot request, so the PUT must match it. */
  typeDeclared: boolean;
  createdAt: number;
  /** After this, the PUT URL is no longer accepted. */
  putExpiresAt: number;
  state: UploadState;
  storedAt?: number;
}

/** Where records live; the glue backs it with module storage (a map store). */
export interface UploadStore {
  get(id: string): Promise<UploadRecord | undefined>;
  put(record: UploadRecord): Promise<void>;
  /** Move a record from state `from` to `to` (with `patch`) atomically; false if it was not in `from`. */
  transition(id: string, from: UploadState, to: UploadState, patch?: Partial<UploadRecord>): Promise<boolean>;
  byOwner(owner: string): Promise<UploadRecord[]>;
  all(): Promise<UploadRecord[]>;
  delete(id: string): Promise<void>;
}

/** Why a slot was refused (XEP-0363 §4.1): the stanza error to reply with. */
export interface SlotError {
  type: StanzaErrorType;
  condition: StanzaErrorCondition;
  text: string;
  /** <file-too-large><max-file-size/></file-too-large> */
  maxFileSize?: number;
  /** <retry stamp=''/>: when a quota allows this upload again. */
  retryAt?: number;
}

export type SlotResult = { ok: true; record: UploadRecord } | { ok: false; error: SlotError };

export interface SlotRequest {
  filename: string | undefined;
  size: string | undefined;
  contentType: string | undefined;
}

/** The `<request/>` of a slot iq (XEP-0363 §4), or undefined if the iq has none. */
export function parseSlotRequest(iq: Element): SlotRequest | undefined {
  const req = iq.getChild('request', NS_UPLOAD);
  if (!req) return undefined;
  const a = req.attrs as Record<string, string | undefined>;
  return { filename: a.filename, size: a.size, contentType: a['content-type'] };
}

// ---- file names and content types ----

const RESERVED_WINDOWS = /^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i;
// C0/C1 controls, DEL, and bidi controls that make "gpj.exe" look like "exe.jpg".
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const MAX_NAME_BYTES = 200;

/**
 * A file name safe as a URL segment, a file name on any disk and a Content-Disposition value:
 * NFC, the last path component only, no control or bidi characters, none of <>:"/\|?*, no
 * leading dots, no trailing dots or spaces, not a Windows device name, at most 200 bytes of
 * UTF-8 (cut before the extension). An empty result is 'file'.
 */
export function sanitiseFilename(name: string): string {
  let n = name.normalize('NFC');
  n = n.slice(Math.max(n.lastIndexOf('/'), n.lastIndexOf('\\')) + 1);
  n = n.replace(UNSAFE_CHARS, '').replace(/[<>:"|?*]/g, '_').trim();
  n = n.replace(/^\.+/, '').replace(/[. ]+$/, '');
  if (RESERVED_WINDOWS.test(n)) n = `_${n}`;
  if (Buffer.byteLength(n) > MAX_NAME_BYTES) {
    const dot = n.lastIndexOf('.');
    const ext = dot > 0 && n.length - dot <= 16 ? n.slice(dot) : '';
    let stem = n.slice(0, n.length - ext.length);
    while (Buffer.byteLength(stem + ext) > MAX_NAME_BYTES) stem = [...stem].slice(0, -1).join('');
    n = stem + ext;
  }
  return n || 'file';
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})\\s*(;.*)?$`);

/** `type/subtype` in lower case (parameters dropped), or undefined when malformed. */
export function mediaType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = MEDIA_TYPE.exec(value.trim());
  return m ? `${m[1]}/${m[2]}`.toLowerCase() : undefined;
}

function typeAllowed(allowed: readonly string[] | undefined, type: string): boolean {
  if (!allowed) return true;
  return allowed.some((a) => a === type || (a.endsWith('/*') && type.startsWith(a.slice(0, -1))));
}

// ---- the service ----

export class UploadSlots {
  readonly policy: UploadPolicy;

  constructor(
    policy: Partial<UploadPolicy>,
    private readonly store: UploadStore,
    private readonly now: () => number = Date.now,
    private readonly newId: () => string = () => randomBytes(16).toString('base64url'),
  ) {
    this.policy = { ...UPLOAD_DEFAULTS, ...policy };
  }

  /** The largest file accepted: maxFileSize, or the daily quota if smaller (a larger file could never fit). For disco. */
  get maxFileSize(): number {
    const { maxFileSize, dailyQuota } = this.policy;
    return dailyQuota > 0 ? Math.min(maxFileSize, dailyQuota) : maxFileSize;
  }

  /** A slot for `owner`, or the error to reply with (XEP-0363 §4, §4.1). The record is stored before it resolves. */
  async requestSlot(owner: string, req: SlotRequest): Promise<SlotResult> {
    const fail = (type: StanzaErrorType, condition: StanzaErrorCondition, text: string, extra: Partial<SlotError> = {}): SlotResult => ({ ok: false, error: { type, condition, text, ...extra } });
    if (req.filename === undefined || req.filename.trim() === '') return fail('modify', 'bad-request', 'The request needs a file name');
    if (req.size === undefined || !/^\d{1,15}$/.test(req.size)) return fail('modify', 'bad-request', 'The request needs the file size in bytes');
    const size = Number(req.size);
    let contentType = 'application/octet-stream';
    if (req.contentType !== undefined) {
      const t = mediaType(req.contentType);
      if (!t) return fail('modify', 'bad-request', `Not a content type: ${req.contentType}`);
      contentType = t;
    }
    const { dailyQuota, allowedTypes } = this.policy;
    const maxFileSize = this.maxFileSize;
    if (size > maxFileSize) {
      return fail('modify', 'not-acceptable', `File too large. The maximum file size is ${maxFileSize} bytes`, { maxFileSize });
    }
    if (req.contentType !== undefined && !typeAllowed(allowedTypes, contentType)) {
      return fail('cancel', 'not-allowed', `Files of type ${contentType} are not accepted here`);
    }
    const now = this.now();
    if (dailyQuota > 0) {
      // Files past their time no longer count, whether or not cleanup() has removed them yet.
      const live = (await this.store.byOwner(owner)).filter((r) => !(r.state === 'stored' && this.fileExpired(r, now)));
      const retryAt = quotaRetry(live, now, size, dailyQuota);
      if (retryAt !== undefined) {
        return fail('wait', 'resource-constraint', `Quota reached: at most ${dailyQuota} bytes in 24 hours`, { retryAt });
      }
    }
    const record: UploadRecord = {
      id: this.newId(),
      owner,
      filename: sanitiseFilename(req.filename),
      size,
      contentType,
      typeDeclared: req.contentType !== undefined,
      createdAt: now,
      putExpiresAt: now + this.policy.slotTtlMs,
      state: 'pending',
    };
    await this.store.put(record);
    return { ok: true, record };
  }

  /**
   * Before a PUT body is read: refuses (with the HTTP status) unknown slots or names, used and
   * expired slots, a missing or different Content-Length, a Content-Type other than the one
   * requested; otherwise claims the slot (state 'uploading'), so a replay or a concurrent PUT
   * is refused. The caller writes exactly record.size bytes, then calls finishPut().
   */
  async beginPut(id: string, name: string, headers: { contentLength: string | undefined; contentType: string | undefined }): Promise<{ ok: true; record: UploadRecord } | { ok: false; status: number; text: string }> {
    const record = await this.store.get(id);
    if (!record || record.filename !== name) return { ok: false, status: 404, text: 'No such upload slot' };
    if (record.state !== 'pending') return { ok: false, status: 409, text: 'This upload slot has been used' };
    if (this.now() > record.putExpiresAt) return { ok: false, status: 410, text: 'This upload slot has expired' };
    if (headers.contentLength === undefined) return { ok: false, status: 411, text: 'Content-Length is required' };
    if (!/^\d+$/.test(headers.contentLength) || Number(headers.contentLength) !== record.size) {
      const larger = Number(headers.contentLength) > record.size;
      return { ok: false, status: larger ? 413 : 400, text: `The slot is for exactly ${record.size} bytes` };
    }
    const putType = mediaType(headers.contentType);
    if (headers.contentType !== undefined && !putType) return { ok: false, status: 400, text: 'Malformed Content-Type' };
    let contentType = record.contentType;
    if (record.typeDeclared) {
      if (putType !== undefined && putType !== record.contentType) return { ok: false, status: 415, text: `The slot is for ${record.contentType}` };
    } else if (putType) {
      if (!typeAllowed(this.policy.allowedTypes, putType)) return { ok: false, status: 415, text: `Files of type ${putType} are not accepted here` };
      contentType = putType;
    }
    if (!(await this.store.transition(id, 'pending', 'uploading', { contentType }))) {
      return { ok: false, status: 409, text: 'This upload slot has been used' };
    }
    return { ok: true, record: { ...record, contentType, state: 'uploading' } };
  }

  /** After the PUT: stored (serve it, answer 201) or failed (the slot stays used; the client asks for a new one). */
  async finishPut(id: string, stored: boolean): Promise<void> {
    await this.store.transition(id, 'uploading', stored ? 'stored' : 'failed', stored ? { storedAt: this.now() } : {});
  }

  /** The record of a stored, unexpired file for a GET of /<id>/<name>, else undefined (404). */
  async getFile(id: string, name: string): Promise<UploadRecord | undefined> {
    const r = await this.store.get(id);
    if (!r || r.state !== 'stored' || r.filename !== name) return undefined;
    if (this.fileExpired(r, this.now())) return undefined;
    return r;
  }

  private fileExpired(r: UploadRecord, now: number): boolean {
    return this.policy.fileTtlMs > 0 && (r.storedAt ?? r.createdAt) + this.policy.fileTtlMs <= now;
  }

  /**
   * Records to drop now: unused slots past their PUT expiry, failed uploads, files past their
   * time; removed from the store and returned, so the caller deletes their files. An upload
   * still running is left alone unless it is a day old (a crashed writer).
   */
  async cleanup(): Promise<UploadRecord[]> {
    const now = this.now();
    const gone: UploadRecord[] = [];
    for (const r of await this.store.all()) {
      const drop =
        (r.state === 'pending' && now > r.putExpiresAt) ||
        r.state === 'failed' ||
        (r.state === 'uploading' && now - r.createdAt > DAY_MS) ||
        (r.state === 'stored' && this.fileExpired(r, now));
      if (drop) {
        await this.store.delete(r.id);
        gone.push(r);
      }
    }
    return gone;
  }

  /** Every record of a deleted account, removed from the store and returned (delete their files). */
  async removeOwner(owner: string): Promise<UploadRecord[]> {
    const records = await this.store.byOwner(owner);
    for (const r of records) await this.store.delete(r.id);
    return records;
  }
}

/**
 * The daily quota: bytes of the owner's slots in the last 24 hours (stored files, running
 * uploads and unexpired unused slots) plus `size`. Undefined when it fits, else the time at
 * which enough of them will have left the window (for <retry stamp=''/>).
 */
export function quotaRetry(records: readonly UploadRecord[], now: number, size: number, quota: number): number | undefined {
  const counted = records
    .filter((r) => r.createdAt > now - DAY_MS && (r.state === 'stored' || r.state === 'uploading' || (r.state === 'pending' && r.putExpiresAt >= now)))
    .sort((a, b) => a.createdAt - b.createdAt);
  let used = counted.reduce((n, r) => n + r.size, 0);
  if (used + size <= quota) return undefined;
  for (const r of counted) {
    used -= r.size;
    if (used + size <= quota) return r.createdAt + DAY_MS;
  }
  return now + DAY_MS;
}

// ---- XMPP elements ----

/** `<slot/>` with the PUT and GET URLs (XEP-0363 §4). */
export function slotElement(putUrl: string, getUrl: string, headers: Record<string, string> = {}): Element {
  const slot = new Element('slot', { xmlns: NS_UPLOAD });
  const put = slot.c('put', { url: putUrl });
  // §4: only these headers may be given; newlines never (§11).
  for (const [name, value] of Object.entries(headers)) {
    if (!['authorization', 'cookie', 'expires'].includes(name.toLowerCase())) continue;
    put.c('header', { name }).t(value.replace(/[\r\n]/g, ''));
  }
  slot.c('get', { url: getUrl });
  return slot;
}

/** The path of a slot under the service's base path: /<id>/<percent-encoded name>. */
export function slotPath(record: UploadRecord): string {
  return `/${record.id}/${encodeURIComponent(record.filename)}`;
}

/** The iq error reply for a refused slot, with <file-too-large/> or <retry/> (XEP-0363 §4.1). */
export function slotErrorReply(iq: Element, error: SlotError): Element {
  const reply = errorReply(iq, error.type, error.condition, error.text);
  const err = reply.getChild('error')!;
  if (error.maxFileSize !== undefined) {
    err.c('file-too-large', { xmlns: NS_UPLOAD }).c('max-file-size').t(String(error.maxFileSize));
  }
  if (error.retryAt !== undefined) {
    err.c('retry', { xmlns: NS_UPLOAD, stamp: new Date(error.retryAt).toISOString().replace(/\.\d{3}Z$/, 'Z') });
  }
  return reply;
}

/** The disco#info extension form announcing max-file-size (XEP-0363 §3). */
export function discoForm(maxFileSize: number): Element {
  return resultForm({ formType: NS_UPLOAD, fields: [{ var: 'max-file-size', values: [String(maxFileSize)] }] });
}

// ---- serving ----

/** Types a browser may show inline; everything else is offered as a download. */
const INLINE = /^(image\/(png|jpeg|gif|webp|avif|bmp)|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+|text\/plain|application\/pdf)$/;

/** RFC 8187 attr-char: what stays unencoded in filename*. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+.^_`|~-]/;

/** Content-Disposition with an ASCII fallback and the exact name as filename* (RFC 6266 §4.3). */
export function contentDisposition(filename: string, inline: boolean): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  let encoded = '';
  for (const byte of Buffer.from(filename, 'utf8')) {
    const ch = String.fromCharCode(byte);
    encoded += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `${inline ? 'inline' : 'attachment'}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/**
 * Headers for serving a stored file: its type (script-capable types are served as a download
 * and sandboxed anyway), length, Content-Disposition, a Content-Security-Policy that allows
 * nothing to run or load, nosniff, no referrer, and embeddable by web clients of other origins.
 */
export function downloadHeaders(r: UploadRecord) {
  const inline = INLINE.test(r.contentType);
  return {
    'Content-Type': r.contentType,
    'Content-Length': String(r.size),
    'Content-Disposition': contentDisposition(r.filename, inline),
    'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Resource-Policy': 'cross-origin',
    'Cache-Control': 'private, max-age=86400, immutable',
    ETag: `"${r.id}"`,
  } satisfies Record<string, string>;
}
