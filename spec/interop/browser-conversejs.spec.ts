// The web client in the box, in a real browser (issue 11, doc/web.md): headless Chromium
// (Debian's `chromium`) driven by playwright-core loads the Converse.js page mod_conversejs serves
// over HTTPS. Alice logs in over WebSocket, Bob over BOSH (?transport=bosh), they chat both
// ways through Converse's own UI, and Alice shares a file through the XEP-0363 component.
// Converse runs with the settings the module generates; the browser trusts the server's test
// certificate by its public key (Chromium's --ignore-certificate-errors-spki-list, the test-run
// equivalent of trusting the test CA).
// The roster subscription between them is made beforehand over TCP (spec/helpers/client.ts):
// the point here is the web client's login and messaging over both HTTP transports.
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DEFAULTS } from '../../core/config.ts';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';

const HOST = 'localhost';
/** The XEP-0363 component; Chromium resolves every *.localhost name to the loopback address. */
const UPLOAD = 'upload.localhost';
const USERS = { alice: 'alice-web-pass', bob: 'bob-web-pass' } as const;
const CHROMIUM = '/usr/bin/chromium';
/** Bounded waits for the UI (Converse's first load parses a few MB of JavaScript on a busy machine). */
const UI_TIMEOUT = 45_000;

/** base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's SPKI list wants it. */
function spkiHash(pemFile: string): string {
  const spki = new X509Certificate(readFileSync(pemFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** Both accounts subscribed to each other (RFC 6121 §3), as if they had added each other. */
async function befriend(a: TestClient, b: TestClient): Promise<void> {
  const presence = (from: string, type: string) => (el: { name: string; attrs: Record<string, unknown> }) =>
    el.name === 'presence' && el.attrs.type === type && String(el.attrs.from).split('/')[0] === from;
  const bSubscribed = b.expect(presence(a.bare, 'subscribe'));
  await a.send(xml('presence', { to: b.bare, type: 'subscribe' }));
  await bSubscribed;
  const aAsked = a.expect(presence(b.bare, 'subscribe'));
  await b.send(xml('presence', { to: a.bare, type: 'subscribed' }));
  await b.send(xml('presence', { to: a.bare, type: 'subscribe' }));
  await aAsked;
  // b's subscription to a is complete when a's presence reaches it (its roster item is 'both').
  const aPresence = b.expect((el) => el.name === 'presence' && el.attrs.type === undefined && String(el.attrs.from).split('/')[0] === a.bare);
  await a.send(xml('presence', { to: b.bare, type: 'subscribed' }));
  await aPresence;
}

describe('interop: Converse.js served by mod_conversejs, in headless Chromium', function () {
  this.timeout(240_000);
  let server: TestServer;
  let browser: Browser;
  let dir: string;
  const contexts: BrowserContext[] = [];
  const pages: { name: string; page: Page; errors: string[] }[] = [];
  /** What each page connected to: WebSocket URLs opened and BOSH requests made. */
  let failed = false;
  const traffic = new Map<Page, { websockets: string[]; bosh: number }>();

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-browser-'));
    // The upload host's own certificate (the test CA's names only localhost); trusted by its key too.
    const uploadKey = path.join(dir, 'upload.key');
    const uploadCert = path.join(dir, 'upload.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${UPLOAD}`,
      '-addext', `subjectAltName=DNS:${UPLOAD}`, '-keyout', uploadKey, '-out', uploadCert], { stdio: 'ignore' });
    server = await startServer({
      users: USERS,
      config: {
        tls: testCa().serverTls,
        modulesEnabled: [...DEFAULTS.modulesEnabled, 'conversejs'],
        components: { [UPLOAD]: { module: 'http_file_share', tls: { certificate: uploadCert, key: uploadKey } } },
      },
    });
    const alice = await login(server, 'alice', USERS.alice, { resource: 'setup', presence: true });
    const bob = await login(server, 'bob', USERS.bob, { resource: 'setup', presence: true });
    try {
      await befriend(alice, bob);
    } finally {
      await alice.stop();
      await bob.stop();
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [`--ignore-certificate-errors-spki-list=${spkiHash(testCa().certFile)},${spkiHash(uploadCert)}`],
    });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      failed = true;
      for (const { name, page, errors } of pages) {
        if (errors.length) console.log(`${name}'s page reported:\n  ${errors.join('\n  ')}`);
        const file = path.join(dir, `${name}-failure.png`);
        await page.screenshot({ path: file, fullPage: true }).then(
          () => console.log(`screenshot of ${name}'s page: ${file}`),
          (err: unknown) => console.log(`no screenshot of ${name}'s page: ${String(err)}`),
        );
      }
    }
  });

  after(async function () {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await server?.destroy();
    // Keep the screenshots of a failed run; remove the directory otherwise.
    if (dir && !failed) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh browser profile on the served page, logged in as `user`. */
  async function open(name: string, query: string, jid: string, password: string, contact: string): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    page.on('requestfailed', (req) => errors.push(`request failed: ${req.method()} ${req.url()} ${req.failure()?.errorText ?? ''}`));
    page.on('response', (res) => {
      if (res.status() >= 400) errors.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`);
    });
    pages.push({ name, page, errors });
    const seen = { websockets: [] as string[], bosh: 0 };
    traffic.set(page, seen);
    page.on('websocket', (ws) => seen.websockets.push(ws.url()));
    page.on('request', (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/http-bind') seen.bosh++;
    });
    const response = await page.goto(`https://${HOST}:${server.httpsPort}/conversejs${query}`);
    assert.equal(response?.status(), 200);
    await page.locator('#converse-login-jid').fill(jid);
    await page.locator('#converse-login-password').fill(password);
    await page.locator('converse-login-form button[type=submit]').click();
    // Logged in: the roster shows the contact made beforehand.
    await page.locator(`converse-roster a.open-chat[data-jid="${contact}"]`).first().waitFor({ state: 'visible' });
    return page;
  }

  async function openChat(page: Page, contact: string): Promise<void> {
    await page.locator(`converse-roster a.open-chat[data-jid="${contact}"]`).first().click();
    await page.locator(`converse-chat[jid="${contact}"] textarea.chat-textarea`).waitFor({ state: 'visible' });
  }

  async function sendTo(page: Page, contact: string, text: string): Promise<void> {
    await openChat(page, contact);
    const box = page.locator(`converse-chat[jid="${contact}"] textarea.chat-textarea`);
    await box.fill(text);
    await box.press('Enter');
  }

  async function shows(page: Page, contact: string, text: string): Promise<void> {
    await page.locator(`converse-chat[jid="${contact}"] .chat-msg__text`, { hasText: text }).first().waitFor({ state: 'visible' });
  }

  it('Alice over WebSocket and Bob over BOSH exchange messages both ways; Alice shares a file, Bob fetches it', async function () {
    const aliceJid = `alice@${HOST}`;
    const bobJid = `bob@${HOST}`;
    const alicePage = await open('alice', '', aliceJid, USERS.alice, bobJid);
    const bobPage = await open('bob', '?transport=bosh', bobJid, USERS.bob, aliceJid);

    await sendTo(alicePage, bobJid, 'Hello Bob, this is Alice in Converse over WebSocket');
    await shows(alicePage, bobJid, 'Hello Bob, this is Alice');
    // Bob's roster marks Alice's unread message; he opens the chat and reads it.
    await bobPage.locator(`converse-roster a.open-chat.unread-msgs[data-jid="${aliceJid}"]`).first().waitFor({ state: 'visible' });
    await openChat(bobPage, aliceJid);
    await shows(bobPage, aliceJid, 'Hello Bob, this is Alice in Converse over WebSocket');

    await sendTo(bobPage, aliceJid, 'Hi Alice, Bob here over BOSH');
    await shows(alicePage, bobJid, 'Hi Alice, Bob here over BOSH');

    // Alice shares a file (XEP-0363): Converse asks the upload component for a slot, PUTs the
    // file and sends its URL; Bob's page shows the link and his browser fetches the file.
    const file = path.join(dir, 'notes.txt');
    const content = `shared from Converse over WebSocket ${Date.now()}\n`;
    writeFileSync(file, content);
    await alicePage.locator(`converse-chat[jid="${bobJid}"] input.fileupload`).setInputFiles(file);
    const link = bobPage.locator(`converse-chat[jid="${aliceJid}"] a[href^="https://${UPLOAD}:${server.httpsPort}/file_share/"][href$="/notes.txt"]`).first();
    await link.waitFor({ state: 'visible' });
    const href = await link.getAttribute('href');
    assert.ok(href);
    const download = await bobPage.context().newPage();
    const got = await download.goto(href);
    assert.equal(got?.status(), 200);
    assert.equal(await got?.text(), content);
    await download.close();

    for (const { name, errors } of pages) {
      assert.deepEqual(errors.filter((e) => /Content.Security.Policy|Refused to/i.test(e)), [], `CSP violations on ${name}'s page`);
    }
    // Each page used the transport it was given.
    assert.deepEqual(traffic.get(alicePage), { websockets: [`wss://${HOST}:${server.httpsPort}/xmpp-websocket`], bosh: 0 });
    assert.deepEqual(traffic.get(bobPage)?.websockets, []);
    assert.ok((traffic.get(bobPage)?.bosh ?? 0) > 1, 'Bob\'s page made BOSH requests');
  });
});
