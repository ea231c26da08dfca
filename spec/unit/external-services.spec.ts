// External Service Discovery (XEP-0215) and TURN REST API credentials,
// modules/mod_external_services/services.ts.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import { NS_EXTDISCO, checkServices, credentialsElement, servicesElement, turnCredentials, type ExternalService } from '../../modules/mod_external_services/services.ts';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const SERVICES: ExternalService[] = [
  { type: 'stun', host: 'turn.example.org', port: 3478, transport: 'udp' },
  { type: 'turn', host: 'turn.example.org', port: 3478, transport: 'udp', secret: 's3cret', ttl: 3600 },
  { type: 'turns', host: 'turn.example.org', port: 5349, transport: 'tcp', secret: 's3cret' },
  { type: 'turn', host: 'legacy.example.org', port: 3478, username: 'fixed', password: 'pw', name: 'Old relay' },
];

describe('external services (XEP-0215) and TURN credentials', () => {
  it('computes coturn-compatible credentials: <expiry>:<user> and base64(HMAC-SHA1(secret, username))', () => {
    const c = turnCredentials('s3cret', 'romeo@example.org', NOW, 3600);
    const expiry = NOW / 1000 + 3600;
    assert.equal(c.username, `${expiry}:romeo@example.org`);
    assert.equal(c.password, createHmac('sha1', 's3cret').update(c.username).digest('base64'));
    assert.equal(c.expires, expiry * 1000);
    // A fixed vector, computed with `openssl dgst -sha1 -hmac north -binary | base64`.
    const fixed = turnCredentials('north', 'user', 1_000_000_000_000, 0);
    assert.deepEqual([fixed.username, fixed.password], ['1000000000:user', 'OZRSKXThma7TlhbIJFRY9DkrkRc=']);
    assert.notEqual(turnCredentials('other', 'romeo@example.org', NOW, 3600).password, c.password, 'depends on the secret');
  });

  it('lists every service, with per-user credentials and restricted on those that need them', () => {
    const el = servicesElement(SERVICES, 'romeo@example.org', NOW);
    assert.equal(el.attrs.xmlns, NS_EXTDISCO);
    const list = el.getChildren('service');
    assert.equal(list.length, 4);
    assert.deepEqual(list[0]!.attrs, { host: 'turn.example.org', type: 'stun', port: '3478', transport: 'udp' });
    const turn = list[1]!.attrs as Record<string, string>;
    assert.equal(turn.restricted, '1');
    assert.equal(turn.username, `${NOW / 1000 + 3600}:romeo@example.org`);
    assert.equal(turn.expires, '2026-01-01T13:00:00Z');
    assert.equal(turn.password, createHmac('sha1', 's3cret').update(turn.username!).digest('base64'));
    assert.equal((list[2]!.attrs as Record<string, string>).expires, '2026-01-02T12:00:00Z', 'a day by default');
    assert.deepEqual(list[3]!.attrs, { host: 'legacy.example.org', type: 'turn', port: '3478', name: 'Old relay', restricted: '1', username: 'fixed', password: 'pw' });
  });

  it('filters by the requested type', () => {
    const el = servicesElement(SERVICES, 'romeo@example.org', NOW, 'turn');
    assert.equal(el.attrs.type, 'turn');
    assert.deepEqual(el.getChildren('service').map((s) => s.attrs.host), ['turn.example.org', 'legacy.example.org']);
    assert.equal(servicesElement(SERVICES, 'r@e', NOW, 'nothing').getChildren('service').length, 0);
  });

  it('answers a credentials request for a restricted service, and nothing for others', () => {
    const q = (xml: string) => parse(xml) as unknown as Element;
    const c = credentialsElement(SERVICES, q(`<credentials xmlns='${NS_EXTDISCO}'><service host='turn.example.org' type='turns'/></credentials>`), 'juliet@example.org', NOW)!;
    assert.equal(c.name, 'credentials');
    const s = c.getChild('service')!.attrs as Record<string, string>;
    assert.equal(s.port, '5349');
    assert.match(s.username!, /:juliet@example\.org$/);
    assert.equal(credentialsElement(SERVICES, q(`<credentials xmlns='${NS_EXTDISCO}'><service host='turn.example.org' type='stun'/></credentials>`), 'j@e', NOW), undefined, 'STUN needs none');
    assert.equal(credentialsElement(SERVICES, q(`<credentials xmlns='${NS_EXTDISCO}'><service host='nowhere.example'/></credentials>`), 'j@e', NOW), undefined);
    assert.equal(credentialsElement(SERVICES, q(`<credentials xmlns='${NS_EXTDISCO}'/>`), 'j@e', NOW), undefined);
  });

  it('checks a configured list', () => {
    assert.deepEqual(checkServices(SERVICES), []);
    const problems = checkServices([
      { type: '', host: 'a' },
      { type: 'turn', host: '', port: 70000 },
      { type: 'turn', host: 'a', transport: 'sctp' as 'udp' },
      { type: 'turn', host: 'a', secret: 'x', username: 'y' },
      { type: 'turn', host: 'a', secret: 'x', ttl: -1 },
    ]);
    assert.equal(problems.length, 6, problems.join('\n'));
  });
});
