// External Service Discovery (XEP-0215) for STUN/TURN: the services list a client asks for before
// an audio/video call, and time-limited TURN credentials computed from a secret shared with the
// TURN server (the TURN REST API scheme coturn implements with `use-auth-secret`): the username is
// `<expiry>:<user>` (expiry in Unix seconds), the password base64(HMAC-SHA1(secret, username)), so
// the TURN server checks a credential without asking us. Pure; the glue (mod_external_services,
// doc/web.md) answers the iqs.
import { createHmac } from 'node:crypto';
import { Element } from '@xmpp/xml';

export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

export interface ExternalService {
  /** 'stun', 'turn', 'turns', 'stuns' (or another registered type). */
  type: string;
  host: string;
  port?: number;
  transport?: 'udp' | 'tcp';
  /** A friendly name. */
  name?: string;
  /** Fixed credentials (rarely wanted: every client gets the same ones). */
  username?: string;
  password?: string;
  /** Secret shared with the TURN server: time-limited credentials per user (TURN REST API). */
  secret?: string;
  /** Lifetime of computed credentials, in seconds (default 86400). */
  ttl?: number;
  /** What goes after `<expiry>:` in the username (default: the requester's bare JID). */
  user?: string;
}

export interface Credentials {
  username: string;
  password: string;
  /** Unix time (ms) after which the TURN server refuses them. */
  expires: number;
}

/** TURN REST API credentials: `<expiry>:<user>` and base64(HMAC-SHA1(secret, username)). */
export function turnCredentials(secret: string, user: string, now: number, ttlSeconds = 86_400): Credentials {
  const expirySeconds = Math.floor(now / 1000) + ttlSeconds;
  const username = `${expirySeconds}:${user}`;
  const password = createHmac('sha1', secret).update(username).digest('base64');
  return { username, password, expires: expirySeconds * 1000 };
}

/** XEP-0082 DateTime without fractions. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Problems in a configured list (one line each); empty when it is fine. */
export function checkServices(services: readonly ExternalService[]): string[] {
  const problems: string[] = [];
  services.forEach((s, i) => {
    const at = `externalServices[${i}]`;
    if (!s.type || !/^[a-z][a-z0-9+.-]*$/.test(s.type)) problems.push(`${at}.type must be a service type such as 'stun' or 'turn'`);
    if (!s.host) problems.push(`${at}.host is required`);
    if (s.port !== undefined && !(Number.isInteger(s.port) && s.port > 0 && s.port < 65536)) problems.push(`${at}.port must be a port number`);
    if (s.transport !== undefined && s.transport !== 'udp' && s.transport !== 'tcp') problems.push(`${at}.transport must be 'udp' or 'tcp'`);
    if (s.secret !== undefined && (s.username !== undefined || s.password !== undefined)) problems.push(`${at}: give either secret or username/password`);
    if (s.ttl !== undefined && !(Number.isInteger(s.ttl) && s.ttl > 0)) problems.push(`${at}.ttl must be a positive number of seconds`);
  });
  return problems;
}

function serviceElement(s: ExternalService, requester: string, now: number, withCredentials: boolean): Element {
  const attrs: Record<string, string> = { host: s.host, type: s.type };
  if (s.port !== undefined) attrs.port = String(s.port);
  if (s.transport) attrs.transport = s.transport;
  if (s.name) attrs.name = s.name;
  const needsCredentials = s.secret !== undefined || s.username !== undefined;
  if (needsCredentials) attrs.restricted = '1';
  if (withCredentials) {
    if (s.secret !== undefined) {
      const c = turnCredentials(s.secret, s.user ?? requester, now, s.ttl);
      attrs.username = c.username;
      attrs.password = c.password;
      attrs.expires = stamp(c.expires);
    } else if (s.username !== undefined) {
      attrs.username = s.username;
      if (s.password !== undefined) attrs.password = s.password;
    }
  }
  return new Element('service', attrs);
}

/**
 * The answer to `<services xmlns='urn:xmpp:extdisco:2' type?/>` (XEP-0215 §3.1, §3.2): the
 * services (of that type, when one is asked for), with credentials for `requester` included, so
 * a client needs no second round trip; `restricted='1'` marks those that need credentials.
 */
export function servicesElement(services: readonly ExternalService[], requester: string, now: number, type?: string): Element {
  const el = new Element('services', type ? { xmlns: NS_EXTDISCO, type } : { xmlns: NS_EXTDISCO });
  for (const s of services) if (!type || s.type === type) el.cnode(serviceElement(s, requester, now, true));
  return el;
}

/**
 * The answer to `<credentials><service host type port?/></credentials>` (XEP-0215 §3.3), or
 * undefined when no restricted service matches (reply item-not-found).
 */
export function credentialsElement(services: readonly ExternalService[], query: Element, requester: string, now: number): Element | undefined {
  const want = query.getChild('service');
  if (!want) return undefined;
  const { host, type, port } = want.attrs as Record<string, string | undefined>;
  const s = services.find((x) => x.host === host && (type === undefined || x.type === type) && (port === undefined || String(x.port) === port) && (x.secret !== undefined || x.username !== undefined));
  if (!s) return undefined;
  const el = new Element('credentials', { xmlns: NS_EXTDISCO });
  el.cnode(serviceElement(s, requester, now, true));
  return el;
}
