// XEP-0227 files on disk: reading one with its XInclude parts (§5), confined to the directory of
// the main file, and writing one that only its owner can read (§6: exported files hold
// credentials). The format itself is core/util/xep0227.ts.
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { PortableData } from '../util/portable-data.ts';
import { exportXep0227, importXep0227, type IncludeResolver, type Xep0227ExportOptions, type Xep0227Import, type Xep0227ImportOptions } from '../util/xep0227.ts';

export interface Xep0227FileOptions {
  /** Largest file read, main or included, in bytes (default 1 GiB). */
  maxFileBytes?: number;
  limits?: Xep0227ImportOptions['limits'];
}

/**
 * Reads a XEP-0227 file. Includes must be relative references ('href' without a scheme or a
 * leading '/', %-escapes decoded) to files inside the main file's directory tree — after
 * following symbolic links; anything else is refused, so a file cannot make the import read
 * elsewhere on the machine.
 */
export async function readXep0227File(file: string, opts: Xep0227FileOptions = {}): Promise<Xep0227Import> {
  const maxBytes = opts.maxFileBytes ?? 1 << 30;
  const main = await realpath(file);
  const root = path.dirname(main);
  const load = async (p: string): Promise<string> => {
    const size = (await stat(p)).size;
    if (size > maxBytes) throw new Error(`${p} is larger than ${maxBytes} bytes`);
    return readFile(p, 'utf8');
  };
  const resolveInclude: IncludeResolver = async (href, base) => {
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(href) || href.startsWith('/') || href.startsWith('\\') || href.includes('?') || href.includes('#')) {
      throw new Error('only relative file references are followed');
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(href);
    } catch {
      throw new Error('malformed %-escape');
    }
    if (decoded.includes('\0')) throw new Error('malformed reference');
    const target = await realpath(path.resolve(path.dirname(base ?? main), decoded));
    if (target !== root && !target.startsWith(root + path.sep)) throw new Error(`outside ${root}`);
    return { text: await load(target), base: target };
  };
  return importXep0227(await load(main), { resolveInclude, base: main, ...(opts.limits ? { limits: opts.limits } : {}) });
}

/** Writes the data as one XEP-0227 file, mode 0600, replacing `file` only once complete. */
export async function writeXep0227File(file: string, data: PortableData, opts: Xep0227ExportOptions = {}): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(exportXep0227(data, opts), 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  await rename(tmp, file);
}
