// Module resolution hooks (node:module register), registered by core/loader.ts with tsx when an
// operator's .ts file is first imported by the compiled server: an import that resolves to one
// of Cadence's own sources (<package>/core/…/x.ts, <package>/modules/…) is served from the build
// (<package>/dist/core/…/x.js), so there is one copy of each core class in the process.

export interface RedirectData {
  /** file: URL of the package directory, ending in '/'. */
  sources: string;
  /** file: URL of its build (dist/), ending in '/'. */
  compiled: string;
}

interface ResolveResult {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context: unknown) => Promise<ResolveResult>;

let data: RedirectData | undefined;

export function initialize(d: RedirectData): void {
  data = d;
}

export async function resolve(specifier: string, context: unknown, nextResolve: NextResolve): Promise<ResolveResult> {
  const result = await nextResolve(specifier, context);
  if (!data || !result.url.startsWith(data.sources)) return result;
  const m = /^((?:core|modules)\/[^?#]*)\.ts([?#].*)?$/.exec(result.url.slice(data.sources.length));
  if (!m) return result;
  return { url: `${data.compiled}${m[1]}.js${m[2] ?? ''}`, format: 'module', shortCircuit: true };
}
