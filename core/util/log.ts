// Logging: every component gets a `debug` namespace (cadence:core:router, cadence:mod:roster, …).
// Warnings and errors are always printed (an operator sees them without setting DEBUG).
//
// Output: stderr by default — when systemd's journal reads it (JOURNAL_STREAM is set), without our
// timestamp and with the sd-daemon priority prefix (`<3>` error … `<7>` debug) so journald stores
// levels — or a file (config `log.file`), appended to and reopened by reopenLogFile() (SIGHUP,
// after logrotate moved it).
import { closeSync, openSync, writeSync } from 'node:fs';
import { format as utilFormat } from 'node:util';
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

/** DEBUG as the environment set it, before `log: { level: 'debug' }` added to it. */
const debugFromEnv = process.env.DEBUG ?? '';
/** The journal reads stderr (systemd sets JOURNAL_STREAM for a service's stderr). */
const toJournal = process.env.JOURNAL_STREAM !== undefined;
const PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };
let logFile: { path: string; fd: number } | undefined;

/**
 * The config's `log` option: `level` — 'debug' also turns on every cadence:* debug namespace (as
 * DEBUG=cadence:* would), the others set the threshold of the always-on lines —, and `file`.
 */
export function configureLogging(opts: { level?: LogLevel; file?: string } | undefined): void {
  setLogLevel(opts?.level ?? 'info');
  createDebug.enable(opts?.level === 'debug' ? [debugFromEnv, 'cadence:*'].filter(Boolean).join(',') : debugFromEnv);
  if (opts?.file !== logFile?.path) {
    if (logFile) closeSync(logFile.fd);
    logFile = opts?.file ? { path: opts.file, fd: openSync(opts.file, 'a', 0o640) } : undefined;
  }
  // Debug lines go where the others go.
  createDebug.log = (...args: unknown[]) => write('debug', `${utilFormat(...args)}\n`);
}

/** Close and reopen the log file (logrotate moved it away): SIGHUP does this. */
export function reopenLogFile(): void {
  if (!logFile) return;
  const fd = openSync(logFile.path, 'a', 0o640);
  closeSync(logFile.fd);
  logFile = { path: logFile.path, fd };
}

function write(level: LogLevel, text: string): void {
  if (logFile) {
    try {
      writeSync(logFile.fd, text);
      return;
    } catch {
      // The file went away (disk full, removed): stderr rather than nothing.
    }
  }
  process.stderr.write(toJournal ? `<${PRIORITY[level]}>${text}` : text);
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
  // The journal stamps lines itself.
  const stamp = toJournal && !logFile ? '' : `${new Date().toISOString()} `;
  write(level, `${stamp}${level.padEnd(5)} ${namespace}: ${line}\n`);
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
