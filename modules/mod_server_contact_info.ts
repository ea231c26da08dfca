//% requires_core_features: module-options-typed
// Contact Addresses for XMPP Services (XEP-0157): the host's disco#info carries a XEP-0128
// data form (FORM_TYPE http://jabber.org/network/serverinfo) listing the addresses (URIs) to
// contact for each role.
//
// Option `contacts`: { abuse, admin, feedback, sales, security, status, support } → a URI or a
// list of URIs (mailto:, xmpp:, https:, …), e.g.
//   server_contact_info: { contacts: { abuse: ['mailto:abuse@example.org'], admin: ['xmpp:ops@example.org'] } }
// When `admin` is not given, the server's `admins` (config) are listed as xmpp: URIs. With no
// address at all, no form is added.
import type { Element } from '@xmpp/xml';
import { defineModule, xml } from '../core/api.ts';

export const NS_SERVERINFO = 'http://jabber.org/network/serverinfo';
const NS_DATA = 'jabber:x:data';

/** The roles registered for the serverinfo FORM_TYPE (XEP-0157 §7, v1.1.0 added 'status'). */
export const CONTACT_ROLES = ['abuse', 'admin', 'feedback', 'sales', 'security', 'status', 'support'] as const;
export type ContactRole = (typeof CONTACT_ROLES)[number];

/** Validate the `contacts` option; returns role → URIs or throws naming the problem. */
export function parseContacts(value: Record<string, unknown>): Map<ContactRole, string[]> {
  const out = new Map<ContactRole, string[]>();
  for (const [role, uris] of Object.entries(value)) {
    if (!(CONTACT_ROLES as readonly string[]).includes(role)) {
      throw new Error(`server_contact_info.contacts.${role}: unknown role (expected one of ${CONTACT_ROLES.join(', ')})`);
    }
    const list = typeof uris === 'string' ? [uris] : uris;
    if (!Array.isArray(list) || !list.every((u) => typeof u === 'string' && /^[a-z][a-z0-9+.-]*:\S+$/i.test(u))) {
      throw new Error(`server_contact_info.contacts.${role}: must be a URI or a list of URIs (e.g. 'mailto:abuse@example.org')`);
    }
    if (list.length) out.set(role as ContactRole, [...new Set(list as string[])]);
  }
  return out;
}

/** The XEP-0128 form for the given addresses. */
export function contactForm(contacts: Map<ContactRole, string[]>): Element {
  const form = xml('x', { xmlns: NS_DATA, type: 'result' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_SERVERINFO)));
  for (const role of CONTACT_ROLES) {
    const uris = contacts.get(role);
    if (!uris?.length) continue;
    form.cnode(xml('field', { var: `${role}-addresses`, type: 'list-multi' }, ...uris.map((u) => xml('value', {}, u))));
  }
  return form;
}

export default defineModule({
  description: 'Contact Addresses for XMPP Services (XEP-0157)',
  options: {
    contacts: {
      type: 'object',
      description: 'Contact URIs by role: { abuse, admin, feedback, sales, security, status, support }',
      default: {},
    },
  },
  load(module) {
    const contacts = parseContacts(module.option('contacts'));
    if (!contacts.has('admin')) {
      const admins = (module.config('admins') ?? []).filter((a) => typeof a === 'string' && a !== '');
      if (admins.length) contacts.set('admin', admins.map((a) => `xmpp:${a}`));
    }
    if (contacts.size === 0) {
      module.log('no contact addresses configured');
      return;
    }
    module.addItem('extension', contactForm(contacts));
  },
});
