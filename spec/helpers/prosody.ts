// Makes a Prosody 0.12 data directory with Debian's real `prosodyctl` and Prosody's own Lua
// libraries, never starting a Prosody: accounts through `prosodyctl register` (Prosody derives and
// stores the SCRAM credentials), everything else through spec/fixtures/prosody/write-data.lua,
// which stores it as Prosody's modules do (util.datamanager, util.stanza).
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './server.ts';

const run = promisify(execFile);

export const WRITE_DATA_LUA = path.join(ROOT, 'spec', 'fixtures', 'prosody', 'write-data.lua');
/** A data directory made by a real Prosody 0.12.3 driven by clients (see make-fixture.ts there). */
export const PROSODY_FIXTURE = path.join(ROOT, 'spec', 'fixtures', 'prosody', 'data-0.12');

export interface ProsodyHost {
  host: string;
  /** Prosody's `password_hash` (default SHA-1). */
  passwordHash?: 'SHA-1' | 'SHA-256';
  /** `authentication = "internal_plain"`: plaintext passwords. */
  plain?: boolean;
}

export interface ProsodyAccount {
  user: string;
  host: string;
  password: string;
}

/** Operations of write-data.lua. */
export type ProsodyOp =
  | { op: 'roster'; host: string; user: string; version?: number; items: { jid: string; subscription: string; ask?: string; name?: string; groups?: string[] }[]; pending?: { jid: string; stanza?: string }[] }
  | { op: 'vcard'; host: string; user: string; xml: string }
  | { op: 'offline'; host: string; user: string; messages: { xml: string; when: number; with?: string; key: string }[] }
  | { op: 'private'; host: string; user: string; fragments: string[] }
  | { op: 'blocklist'; host: string; user: string; jids: string[]; stamped?: boolean }
  | { op: 'privacy'; host: string; user: string; default: string; lists: { name: string; items: Record<string, string | number | boolean>[] }[] }
  | { op: 'store'; host: string; user: string; store: string; data: unknown };

export interface ProsodyDir {
  /** The temporary directory (config, data, ops). */
  root: string;
  /** Prosody's data_path. */
  data: string;
  cleanup(): void;
}

function luaString(s: string): string {
  return JSON.stringify(s);
}

/** Prosody refuses to run as root; as root, prosodyctl switches to the prosody user, who must own the directory. */
async function prosodyOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number((await run('id', ['-u', 'prosody'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'prosody'])).stdout.trim());
  return { uid, gid };
}

function chownTree(p: string, owner: { uid: number; gid: number }): void {
  chownSync(p, owner.uid, owner.gid);
  if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(path.join(p, e), owner);
}

export async function makeProsodyDataDir(hosts: ProsodyHost[], accounts: ProsodyAccount[], ops: ProsodyOp[]): Promise<ProsodyDir> {
  const root = mkdtempSync(path.join(tmpdir(), 'cadence-prosody-'));
  const data = path.join(root, 'data');
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  try {
    const lines = [
      `data_path = ${luaString(data)}`,
      `pidfile = ${luaString(path.join(root, 'prosody.pid'))}`,
      `certificates = ${luaString(root)}`,
      'log = { { levels = { min = "error" }, to = "console" } }',
      'storage = "internal"',
      'authentication = "internal_hashed"',
    ];
    for (const h of hosts) {
      lines.push(`VirtualHost ${luaString(h.host)}`);
      if (h.passwordHash) lines.push(`  password_hash = ${luaString(h.passwordHash)}`);
      if (h.plain) lines.push('  authentication = "internal_plain"');
    }
    const cfg = path.join(root, 'prosody.cfg.lua');
    writeFileSync(cfg, `${lines.join('\n')}\n`);
    const owner = await prosodyOwner();
    if (owner) chownTree(root, owner);
    for (const a of accounts) {
      await run('prosodyctl', ['--config', cfg, 'register', a.user, a.host, a.password]);
    }
    if (ops.length) {
      const opsFile = path.join(root, 'ops.json');
      writeFileSync(opsFile, JSON.stringify(ops));
      await run('lua5.4', [WRITE_DATA_LUA, data, opsFile]);
    }
    return { root, data, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}
