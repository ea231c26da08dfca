// Logging: every component gets a `debug` namespace (cadence:core:router, cadence:mod:roster, …).
// Warnings and errors are always printed (an operator sees them without setting DEBUG).
import createDebug from 'debug';

export interface Logger {
  (fmt: string, ...args: unknown[]): void; // debug level, shown with DEBUG=cadence:*
  info(fmt: string, ...args: unknown[]): void;
  warn(fmt: string, ...args: unknown[]): void;
  error(fmt: string, ...args: unknown[]): void;
  readonly namespace: string;
  child(suffix: string): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
let threshold: LogLevel = 'info';
type Sink = (level: LogLevel, namespace: string, line: string) => void;
const sinks = new Set<Sink>();

/** Minimum level for the always-on output (config `log.level`). Debug output is governed by DEBUG. */
export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

/** Extra destinations for info/warn/error lines (tests use it to assert on warnings). */
export function addLogSink(sink: Sink): () => void {
  sinks.add(sink);
  return () => sinks.delete(sink);
}

function format(fmt: string, args: unknown[]): string {
  let i = 0;
  const out = fmt.replace(/%[sdjoO%]/g, (m) => {
    if (m === '%%') return '%';
    const a = args[i++];
    if (m === '%d') return String(Number(a));
    if (m === '%s') return a instanceof Error ? a.message : String(a);
    try {
      return typeof a === 'string' ? a : JSON.stringify(a);
    } catch {
      return String(a);
    }
  });
  const rest = args.slice(i).map((a) => (a instanceof Error ? a.stack ?? a.message : String(a)));
  return rest.length ? `${out} ${rest.join(' ')}` : out;
}

function emit(level: LogLevel, namespace: string, fmt: string, args: unknown[]): void {
  const line = format(fmt, args);
  for (const sink of sinks) sink(level, namespace, line);
  if (order[level] < order[threshold]) return;
  const stamp = new Date().toISOString();
  process.stderr.write(`${stamp} ${level.padEnd(5)} ${namespace}: ${line}\n`);
}

export function getLogger(namespace: string): Logger {
  const ns = namespace.startsWith('cadence') ? namespace : `cadence:${namespace}`;
  const d = createDebug(ns);
  const logger = ((fmt: string, ...args: unknown[]) => {
    if (d.enabled) d(format(fmt, args));
    if (sinks.size) for (const sink of sinks) sink('debug', ns, format(fmt, args));
  }) as Logger;
  logger.info = (fmt, ...args) => emit('info', ns, fmt, args);
  logger.warn = (fmt, ...args) => emit('warn', ns, fmt, args);
  logger.error = (fmt, ...args) => emit('error', ns, fmt, args);
  Object.defineProperty(logger, 'namespace', { value: ns });
  logger.child = (suffix: string) => getLogger(`${ns}:${suffix}`);
  return logger;
}
