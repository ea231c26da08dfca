// Test harness for the pubsub engine (core/util/pubsub): a service over real storage (the memory
// driver, or any StorageManager), the stanzas it sends collected in order, a roster and an
// interest table the tests fill in, and `request`, which sends an iq through the XML layer the
// glue modules use and returns the result payload or the error element.
import assert from 'node:assert/strict';
import type { Element } from '@xmpp/xml';
import { parse } from 'ltx';
import { MemoryDriver } from '../../core/storage/drivers/memory.ts';
import type { StorageDriver } from '../../core/storage/contracts.ts';
import { StanzaError } from '../../core/util/errors.ts';
import { errorReplyFor } from '../../core/util/pubsub/errors.ts';
import { handlePubSubIq } from '../../core/util/pubsub/protocol.ts';
import { PubSubService, type ServiceOptions } from '../../core/util/pubsub/service.ts';
import { storagePubSubStore } from '../../core/util/pubsub/store.ts';
import { NS_PUBSUB_ERRORS } from '../../core/util/pubsub/ns.ts';
import type { Relationship, RosterSubscription } from '../../core/util/pubsub/access.ts';

export const xml = (s: string): Element => parse(s) as unknown as Element;

export interface Harness {
  service: PubSubService;
  /** Everything the service sent, in order. */
  sent: Element[];
  /** roster.set(`${owner} ${contact}`, …): the owner's roster entry for the contact. */
  roster: Map<string, Relationship>;
  /** interest.set(node, [full JIDs]): resources advertising node+notify. */
  interest: Map<string, string[]>;
  /** blocked.add(`${owner} ${contact}`) */
  blocked: Set<string>;
  driver: StorageDriver;
  /** A new service over the same storage (a restart). */
  restart(): PubSubService;
  /** Take (and forget) what was sent since the last call. */
  take(): Element[];
  request(from: string, type: 'get' | 'set', payload: string): Promise<Reply>;
}

export type Reply = { ok: true; payload: Element | undefined } | { ok: false; error: Element; stanza: Element };

export function harness(opts: Partial<ServiceOptions> & Pick<ServiceOptions, 'jid' | 'kind'>, driver: StorageDriver = new MemoryDriver()): Harness {
  const sent: Element[] = [];
  const roster = new Map<string, Relationship>();
  const interest = new Map<string, string[]>();
  const blocked = new Set<string>();
  const host = opts.jid.includes('@') ? opts.jid.slice(opts.jid.indexOf('@') + 1) : opts.jid;
  const user = opts.kind === 'pep' ? opts.jid.slice(0, opts.jid.indexOf('@')) : null;
  let clock = Date.UTC(2024, 0, 1);
  const make = (): PubSubService =>
    new PubSubService({
      store: storagePubSubStore({ nodes: driver.map(host, 'pubsub_nodes'), items: driver.archive(host, 'pubsub_items') }, user),
      send: (s) => sent.push(s),
      relationships: {
        relationship: async (owner, contact) => roster.get(`${owner} ${contact}`) ?? { subscription: 'none', groups: [] },
        rosterGroups: async (owner) => [...new Set([...roster].filter(([k]) => k.startsWith(`${owner} `)).flatMap(([, r]) => r.groups))],
        blocked: async (owner, contact) => blocked.has(`${owner} ${contact}`),
      },
      interest: { interestedResources: async (_owner, node) => interest.get(node) ?? [] },
      now: () => (clock += 1000),
      ...opts,
    });
  const h: Harness = {
    service: make(),
    sent,
    roster,
    interest,
    blocked,
    driver,
    restart() {
      h.service = make();
      return h.service;
    },
    take() {
      return sent.splice(0, sent.length);
    },
    async request(from, type, payload) {
      const iq = xml(`<iq type='${type}' from='${from}' to='${h.service.jid}' id='q1'>${payload}</iq>`);
      try {
        return { ok: true, payload: await handlePubSubIq(h.service, iq, from) };
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        const stanza = errorReplyFor(iq, err);
        return { ok: false, error: stanza.getChild('error')!, stanza };
      }
    },
  };
  return h;
}

export function contact(subscription: RosterSubscription, ...groups: string[]): Relationship {
  return { subscription, groups };
}

/** Assert a successful reply and return its payload. */
export function ok(r: Reply, why?: string): Element | undefined {
  if (!r.ok) assert.fail(`expected a result${why ? ` (${why})` : ''}, got ${r.stanza.toString()}`);
  return r.payload;
}

/** Assert an error reply with this type, defined condition and (optionally) pubsub#errors condition. */
export function fails(r: Reply, type: string, condition: string, app?: string, feature?: string): Element {
  if (r.ok) assert.fail(`expected ${condition}, got a result ${r.payload?.toString() ?? '(empty)'}`);
  const e = r.error;
  assert.equal(e.attrs.type, type, `error type in ${e.toString()}`);
  assert.ok(e.getChild(condition, 'urn:ietf:params:xml:ns:xmpp-stanzas'), `expected <${condition}/> in ${e.toString()}`);
  const appEl = e.getChildElements().find((c) => c.attrs.xmlns === NS_PUBSUB_ERRORS);
  if (app === undefined) assert.equal(appEl, undefined, `unexpected application condition in ${e.toString()}`);
  else {
    assert.equal(appEl?.name, app, `expected <${app}/> in ${e.toString()}`);
    if (feature !== undefined) assert.equal(appEl?.attrs.feature, feature);
  }
  return e;
}

/** The notifications among `stanzas` addressed to `to`. */
export function to(stanzas: readonly Element[], jid: string): Element[] {
  return stanzas.filter((s) => s.attrs.to === jid);
}

export const NS = {
  pubsub: 'http://jabber.org/protocol/pubsub',
  owner: 'http://jabber.org/protocol/pubsub#owner',
  event: 'http://jabber.org/protocol/pubsub#event',
} as const;

/** The first value of a data form field. */
export function fieldValue(form: Element, v: string): string | undefined {
  return form.getChildren('field').find((f) => f.attrs.var === v)?.getChildText('value') ?? undefined;
}

export function submitForm(formType: string, fields: Record<string, string | string[]>): string {
  let s = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${formType}</value></field>`;
  for (const [k, v] of Object.entries(fields)) s += `<field var='${k}'>${[v].flat().map((x) => `<value>${x}</value>`).join('')}</field>`;
  return `${s}</x>`;
}

export function publishOptions(fields: Record<string, string | string[]>): string {
  return `<publish-options>${submitForm('http://jabber.org/protocol/pubsub#publish-options', fields)}</publish-options>`;
}
