// Logging as an operator configures it: `log: { level: 'debug' }` shows the debug lines without
// DEBUG=…, `log: { file }` writes there and reopens the file on SIGHUP (logrotate), and under
// systemd (JOURNAL_STREAM set) stderr lines carry the journal's priority prefix, not a timestamp.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { startServer, type TestServer } from '../helpers/server.ts';

/** Wait until `file` exists and matches `re` (the server writes it asynchronously to us). */
async function waitForFile(file: string, re: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (re.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`${file} did not match ${re}:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('e2e: logging', function () {
  let server: TestServer | undefined;
  afterEach(async function () {
    await server?.destroy();
    server = undefined;
  });

  it("log: { level: 'debug', file } writes debug lines to the file and reopens it on SIGHUP", async function () {
    this.timeout(60_000); // two waits of up to 20 s each, then the server's output is shown
    const saved = process.env.DEBUG;
    delete process.env.DEBUG;
    try {
      server = await startServer({ config: { log: { level: 'debug', file: 'cadence.log' } } });
    } finally {
      if (saved !== undefined) process.env.DEBUG = saved;
    }
    const file = path.join(server.dir, 'cadence.log');
    const withOutput = (e: Error) => {
      throw new Error(`${e.message}\n--- server output:\n${server?.output.slice(-3000) ?? ''}`);
    };
    const first = await waitForFile(file, /cadence:core:modulemanager loaded c2s/, 20_000).catch(withOutput);
    assert.match(first, /info {2}cadence:/);
    assert.doesNotMatch(server.output, /cadence:core:modulemanager loaded/, 'debug lines go to the file, not stderr');

    // logrotate: move the file away, then SIGHUP.
    renameSync(file, `${file}.1`);
    server.proc!.kill('SIGHUP');
    const fresh = await waitForFile(file, /configuration reloaded/, 20_000).catch(withOutput);
    assert.doesNotMatch(fresh, /loaded c2s/, 'the new file starts after the rotation');
    assert.doesNotMatch(readFileSync(`${file}.1`, 'utf8'), /configuration reloaded/);
  });

  it('under systemd (JOURNAL_STREAM) prefixes stderr lines with their priority and leaves the time to the journal', async function () {
    process.env.JOURNAL_STREAM = '8:12345';
    try {
      server = await startServer({ config: { log: { level: 'info' } } });
    } finally {
      delete process.env.JOURNAL_STREAM;
    }
    const line = await server.waitForOutput(/^<6>info {2}cadence:core:certmanager: generating a self-signed certificate.*$/m);
    assert.doesNotMatch(line, /\d{4}-\d{2}-\d{2}T/);
  });
});
