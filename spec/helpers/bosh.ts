// A raw BOSH client (XEP-0124, XEP-0206) for tests over HTTPS with the run's test CA: session
// creation, requests with increasing rids, and a PLAIN login (SASL, restart, bind).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { parse, type Element } from 'ltx';
import { testCa } from './testca.ts';

export const HTTPBIND = 'http://jabber.org/protocol/httpbind';

/** A child by its qualified name (stream:features). */
export const child = (el: Element | undefined, name: string): Element | undefined => el?.children.find((c): c is Element => typeof c !== 'string' && c.name === name);

let sharedAgent: https.Agent | undefined;
/** Keep-alive agent trusting the test CA (destroy it with closeBoshAgent()). */
function agent(): https.Agent {
  return (sharedAgent ??= new https.Agent({ keepAlive: true, ca: readFileSync(testCa().caFile) }));
}

export function closeBoshAgent(): void {
  sharedAgent?.destroy();
  sharedAgent = undefined;
}

/** POST one body to /http-bind; resolves with the parsed response body. */
export function boshPost(port: number, body: string): Promise<Element> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, servername: 'localhost', method: 'POST', path: '/http-bind', agent: agent(), headers: { Host: 'localhost', 'Content-Type': 'text/xml; charset=utf-8' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        // Every BOSH answer is HTTP 200 with an XML body (XEP-0124 §17: errors are in the body).
        if (res.statusCode !== 200 || !/^text\/xml/.test(String(res.headers['content-type']))) {
          reject(new Error(`HTTP ${res.statusCode} ${String(res.headers['content-type'])}: ${text}`));
          return;
        }
        try {
          resolve(parse(text) as Element);
        } catch (err) {
          reject(new Error(`HTTP ${res.statusCode}: ${text} (${String(err)})`));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export class BoshClient {
  rid = 1000 + Math.floor(Math.random() * 1e6);
  sid = '';

  constructor(readonly port: number) {}

  create(attrs = "wait='2' hold='1'"): Promise<Element> {
    return boshPost(this.port, `<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' rid='${this.rid}' to='localhost' xml:lang='en' ver='1.11' xmpp:version='1.0' ${attrs}/>`).then((r) => {
      this.sid = String(r.attrs.sid ?? '');
      return r;
    });
  }

  /** The next request (rid + 1) with these payloads. */
  send(payload = '', attrs = ''): Promise<Element> {
    return boshPost(this.port, this.raw(++this.rid, payload, attrs));
  }

  /** A request body of this session with any rid (for retransmissions and out-of-window tests). */
  raw(rid: number, payload = '', attrs = ''): string {
    return `<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' sid='${this.sid}' rid='${rid}' ${attrs}>${payload}</body>`;
  }

  /** Create, PLAIN, restart, bind `resource`: the bound full JID. */
  async login(user: string, password: string, resource = 'bosh'): Promise<string> {
    const created = await this.create();
    assert.ok(child(created, 'stream:features'), `no features in ${created.toString()}`);
    const token = Buffer.from(`\0${user}\0${password}`).toString('base64');
    const ok = await this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`);
    assert.ok(ok.getChild('success'), ok.toString());
    const restarted = await this.send('', "xmpp:restart='true' to='localhost' xml:lang='en'");
    assert.ok(child(restarted, 'stream:features')?.getChild('bind'), restarted.toString());
    const bound = await this.send(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const jid = bound.getChild('iq')?.getChild('bind')?.getChildText('jid');
    assert.ok(jid, bound.toString());
    return jid;
  }

  /** Poll (empty requests) until a payload matching `pred` arrives; the payloads seen on the way are returned too. */
  async until(pred: (el: Element) => boolean, tries = 10): Promise<{ found: Element; seen: Element[] }> {
    const seen: Element[] = [];
    for (let i = 0; i < tries; i++) {
      const r = await this.send();
      for (const c of r.children) {
        if (typeof c === 'string') continue;
        if (pred(c)) return { found: c, seen };
        seen.push(c);
      }
      if (r.attrs.type === 'terminate') throw new Error(`session terminated: ${r.toString()}`);
    }
    throw new Error(`no matching payload after ${tries} polls; saw ${seen.map(String).join(' ')}`);
  }
}
