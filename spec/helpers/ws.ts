// A raw XMPP-over-WebSocket client (RFC 7395) for tests: frames in and out as text, each incoming
// frame parsed into an element, and PLAIN login helpers. Trusts the run's test CA for wss:.
import { readFileSync } from 'node:fs';
import { TLSSocket } from 'node:tls';
import { parse, type Element } from 'ltx';
import WebSocket from 'ws';
import { testCa } from './testca.ts';

export const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

export class WsClient {
  readonly frames: Element[] = [];
  private waiters: { pred: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];
  /** Resolves with the WebSocket close code. */
  readonly closed: Promise<number>;
  /** The TLS connection under a wss: WebSocket (channel binding). */
  tlsSocket: TLSSocket | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      const el = parse(data.toString('utf8'));
      const i = this.waiters.findIndex((w) => w.pred(el));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(el);
      else this.frames.push(el);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
    ws.once('upgrade', (res) => {
      if (res.socket instanceof TLSSocket) this.tlsSocket = res.socket;
    });
  }

  /** Connect to `url` offering `protocols` (default ['xmpp']). */
  static connect(url: string, opts: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, opts.protocols ?? ['xmpp'], { ca: readFileSync(testCa().caFile), headers: opts.headers });
      const c = new WsClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(frame: string | Buffer, binary = false): void {
    this.ws.send(frame, { binary });
  }

  /** The next frame matching `pred` (already received ones first). */
  next(pred: (el: Element) => boolean = () => true, timeoutMs = 5000): Promise<Element> {
    const i = this.frames.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (el: Element) => { clearTimeout(t); resolve(el); } };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no matching frame within ${timeoutMs} ms; got ${this.frames.map(String).join(' ')}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  private streamOpen = false;

  open(to = 'localhost'): Promise<Element> {
    this.streamOpen = true;
    this.send(`<open xmlns='${FRAMING}' to='${to}' version='1.0'/>`);
    return this.next((el) => el.name === 'open');
  }

  /** Open, PLAIN, reopen: authenticated, not bound; resolves with the stream features after authentication. */
  async authenticate(username: string, password: string): Promise<Element> {
    if (!this.streamOpen) await this.open();
    await this.next((el) => el.name === 'stream:features');
    const token = Buffer.from(`\0${username}\0${password}`).toString('base64');
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`);
    const outcome = await this.next((el) => el.name === 'success' || el.name === 'failure');
    if (outcome.name !== 'success') throw new Error(`SASL failed: ${outcome.toString()}`);
    await this.open();
    return this.next((el) => el.name === 'stream:features');
  }

  /** Open, PLAIN, reopen, bind `resource`; resolves with the bound full JID. */
  async login(username: string, password: string, resource = 'ws'): Promise<string> {
    await this.authenticate(username, password);
    this.send(`<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const r = await this.next((el) => el.name === 'iq' && el.attrs.id === 'bind1');
    const jid = r.getChild('bind')?.getChildText('jid');
    if (r.attrs.type !== 'result' || !jid) throw new Error(`bind failed: ${r.toString()}`);
    return jid;
  }

  close(): void {
    this.ws.close();
  }
}
