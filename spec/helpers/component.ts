// An external component (XEP-0114) over a raw socket, for the privileged-entity and delegation
// specs: opens the jabber:component:accept stream and completes the handshake.
import { createHash } from 'node:crypto';
import { RawClient } from './client.ts';

export const NS_COMPONENT = 'jabber:component:accept';
export const NS_PRIVILEGE = 'urn:xmpp:privilege:2';
export const NS_DELEGATION = 'urn:xmpp:delegation:2';
export const NS_FORWARD = 'urn:xmpp:forward:0';

/**
 * Connect as `domain` with `secret` to a component port. Stanzas the server sends right after the
 * handshake (the privilege advertisement) stay in the returned client's queue for `expect`.
 */
export async function connectComponent(port: number, domain: string, secret: string): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.write(`<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`);
  const attrs = await c.expectHeader();
  c.write(`<handshake>${createHash('sha1').update(attrs.id + secret).digest('hex')}</handshake>`);
  await c.expect((el) => el.name === 'handshake');
  return c;
}
