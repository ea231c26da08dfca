// Module metadata: `//% key: value` lines at the top of a module file, read from the source text
// before the module is imported (so a refused module never runs any code).
import { coreFeatures } from './features.ts';

export type ModuleHeader = Record<string, string>;

const HEADER_LINE = /^\/\/%\s*([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$/;

/**
 * Parse the leading header block. Header lines may be preceded by a shebang, blank lines or
 * other comments; the first line of code ends the header.
 */
export function parseModuleHeader(source: string): ModuleHeader {
  const header: ModuleHeader = {};
  for (const raw of source.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#!')) continue;
    const m = HEADER_LINE.exec(line);
    if (m) {
      header[detached(m[1]!)] = detached(m[2]!.trim());
      continue;
    }
    if (line.startsWith('//') || line.startsWith('/*') || line.startsWith('*')) continue;
    break;
  }
  return header;
}

/**
 * A copy of `text` that shares no memory with the string it was cut from: V8 makes a substring a
 * view into its parent, so a header value kept for the module's lifetime would keep the whole
 * source text of the module alive beside the copy V8 itself holds (~0.5 MiB of an idle server).
 */
function detached(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

export function headerList(header: ModuleHeader, key: string): string[] {
  const v = header[key];
  if (!v) return [];
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export type FeatureCheck =
  | { ok: true }
  | { ok: false; missing: string[]; conflicting: string[] };

/** Check `requires_core_features` / `conflicts_core_features` against the registry. */
export function checkCoreFeatures(
  header: ModuleHeader,
  features: ReadonlyMap<string, string> = coreFeatures,
): FeatureCheck {
  const missing = headerList(header, 'requires_core_features').filter((f) => !features.has(f));
  const conflicting = headerList(header, 'conflicts_core_features').filter((f) => features.has(f));
  if (missing.length === 0 && conflicting.length === 0) return { ok: true };
  return { ok: false, missing, conflicting };
}

export function describeFeatureCheck(check: FeatureCheck): string {
  if (check.ok) return 'ok';
  const parts: string[] = [];
  if (check.missing.length) parts.push(`requires missing core feature(s): ${check.missing.join(', ')}`);
  if (check.conflicting.length) parts.push(`conflicts with core feature(s): ${check.conflicting.join(', ')}`);
  return parts.join('; ');
}
