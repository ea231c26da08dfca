// XEP-0227 files on disk (core/cli/xep0227-file.ts): the XInclude layout of §5.1, includes kept
// inside the export's directory, and exports only their owner can read (§6).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readXep0227File, writeXep0227File } from '../../core/cli/xep0227-file.ts';
import { emptyUser } from '../../core/util/portable-data.ts';
import { Xep0227Error } from '../../core/util/xep0227.ts';

const XI = "xmlns:xi='http://www.w3.org/2001/XInclude'";

describe('XEP-0227 files', () => {
  let dir: string;
  const write = (rel: string, text: string) => {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, text);
    return p;
  };
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-pie-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the §5.1 layout: main file, host files, user files in host directories', async () => {
    const main = write('export/main.xml', `<server-data xmlns='urn:xmpp:pie:0' ${XI}><xi:include href='capulet.com.xml'/></server-data>`);
    write('export/capulet.com.xml', `<host xmlns='urn:xmpp:pie:0' ${XI} jid='capulet.com'><xi:include href='capulet.com/juliet.xml'/><xi:include href='capulet.com/j%C3%BCrgen.xml'/></host>`);
    write('export/capulet.com/juliet.xml', `<user xmlns='urn:xmpp:pie:0' name='juliet'><vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard></user>`);
    write('export/capulet.com/jürgen.xml', `<user xmlns='urn:xmpp:pie:0' name='jürgen'/>`);
    const r = await readXep0227File(main);
    assert.deepEqual(r.notes.list, []);
    assert.deepEqual(r.data.hosts[0]!.users.map((u) => u.username), ['juliet', 'jürgen']);
    assert.equal(r.data.hosts[0]!.users[0]!.vcard!.getChildText('FN'), 'Juliet');
  });

  it('never reads outside the main file\'s directory: no absolute paths, schemes, .. or links out', async () => {
    write('secret.xml', `<host xmlns='urn:xmpp:pie:0' jid='stolen.example'><user name='x'/></host>`);
    symlinkSync(path.join(dir, 'secret.xml'), path.join(dir, 'export-link.xml'));
    mkdirSync(path.join(dir, 'export'));
    symlinkSync(path.join(dir, 'secret.xml'), path.join(dir, 'export', 'link.xml'));
    const hrefs = ['../secret.xml', path.join(dir, 'secret.xml'), `file://${path.join(dir, 'secret.xml')}`, 'http://127.0.0.1:9/x.xml', 'link.xml', 'a/../../secret.xml', '%2e%2e/secret.xml', 'bad%zz.xml'];
    const main = write('export/main.xml', `<server-data xmlns='urn:xmpp:pie:0' ${XI}>${hrefs.map((h) => `<xi:include href='${h}'/>`).join('')}</server-data>`);
    const r = await readXep0227File(main);
    assert.deepEqual(r.data.hosts, []);
    assert.equal(r.notes.list.length, hrefs.length);
    for (const n of r.notes.list) assert.match(n.message, /could not be read \((only relative file references are followed|outside .*|malformed %-escape)\); skipped/);
  });

  it('refuses files larger than the limit and documents that are not XEP-0227', async () => {
    const big = write('big.xml', `<server-data xmlns='urn:xmpp:pie:0'>${' '.repeat(2000)}</server-data>`);
    await assert.rejects(readXep0227File(big, { maxFileBytes: 1000 }), /larger than 1000 bytes/);
    await assert.rejects(readXep0227File(write('other.xml', '<html/>')), (e: unknown) => e instanceof Xep0227Error);
  });

  it('writes an export only its owner can read, and reads it back', async () => {
    const u = emptyUser('juliet');
    u.scram['SHA-1'] = { iterations: 4096, salt: 'c2FsdA==', storedKey: 'Q6qT/SbybblGCZz8e8eSfCJOQic=', serverKey: '0pXWGK0GZJ6TR73AIUN3ITYtA1g=' };
    const file = path.join(dir, 'out.xml');
    writeFileSync(file, 'old');
    await writeXep0227File(file, { hosts: [{ host: 'capulet.com', users: [u] }] });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const r = await readXep0227File(file);
    assert.deepEqual(r.data.hosts[0]!.users[0]!.scram, u.scram);
  });
});
