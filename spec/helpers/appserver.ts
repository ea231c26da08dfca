// A push app server for tests (XEP-0357 §4): an external component (XEP-0114) on a raw socket
// that receives the user's server's PubSub publishes and answers each with a result or an error.
import { createHash } from 'node:crypto';
import { RawClient, type Element } from './client.ts';

export class AppServer {
  private constructor(readonly raw: RawClient, readonly domain: string) {}

  /** Connect to the server's component port as `domain` and complete the handshake. */
  static async connect(port: number, domain: string, secret: string): Promise<AppServer> {
    const raw = await RawClient.connect(port);
    raw.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`);
    const deadline = Date.now() + 10_000;
    while (!raw.streamAttrs) {
      if (Date.now() > deadline) throw new Error(`no stream header from the server: ${raw.received}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    raw.write(`<handshake>${createHash('sha1').update(raw.streamAttrs.id + secret).digest('hex')}</handshake>`);
    await raw.expect((el) => el.name === 'handshake', 10_000);
    return new AppServer(raw, domain);
  }

  /** The next publish iq for `node`. */
  publish(node: string, timeoutMs = 10_000): Promise<Element> {
    return this.raw.expect((el) => el.name === 'iq' && el.attrs.type === 'set'
      && el.getChild('pubsub', 'http://jabber.org/protocol/pubsub')?.getChild('publish')?.attrs.node === node, timeoutMs);
  }

  expectNothing(node: string, ms = 500): Promise<void> {
    return this.raw.inbox.expectNothing((el) => el.name === 'iq' && el.getChild('pubsub', 'http://jabber.org/protocol/pubsub')?.getChild('publish')?.attrs.node === node, ms, 'appserver');
  }

  answer(iq: Element, error?: string): void {
    const { id, from, to } = iq.attrs as Record<string, string>;
    this.raw.write(error
      ? `<iq type='error' id='${id}' from='${to}' to='${from}'><error type='cancel'><${error} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
      : `<iq type='result' id='${id}' from='${to}' to='${from}'/>`);
  }

  close(): void {
    this.raw.write('</stream:stream>');
    this.raw.socket.end();
  }
}

/** The fields of the summary form in a publish (XEP-0357 §6). */
export function summary(iq: Element): Record<string, string> {
  const x = iq.getChild('pubsub', 'http://jabber.org/protocol/pubsub')!.getChild('publish')!.getChild('item')!
    .getChild('notification', 'urn:xmpp:push:0')!.getChild('x', 'jabber:x:data')!;
  return Object.fromEntries(x.getChildren('field').map((f) => [String(f.attrs.var), f.getChildText('value') ?? '']));
}
