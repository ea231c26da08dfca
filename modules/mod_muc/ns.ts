// Namespaces, features and status codes the MUC engine speaks (XEP-0045 §16, XEP-0359, XEP-0410,
// XEP-0421, XEP-0425, XEP-0249, XEP-0203, XEP-0033).

export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
export const NS_MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const NS_MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
export const FORM_ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';
export const FORM_ROOMINFO = 'http://jabber.org/protocol/muc#roominfo';
export const FORM_REGISTER = 'http://jabber.org/protocol/muc#register';
export const FORM_REQUEST = 'http://jabber.org/protocol/muc#request';
export const FEATURE_STABLE_ID = 'http://jabber.org/protocol/muc#stable_id';
export const FEATURE_SELF_PING = 'http://jabber.org/protocol/muc#self-ping-optimization';
export const NODE_ROOMUSER = 'x-roomuser-item';
export const NODE_TRAFFIC = 'http://jabber.org/protocol/muc#traffic';

export const NS_REGISTER = 'jabber:iq:register';
export const NS_CONFERENCE = 'jabber:x:conference';
export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
export const NS_PING = 'urn:xmpp:ping';
export const NS_VCARD = 'vcard-temp';
export const NS_DELAY = 'urn:xmpp:delay';
export const NS_ADDRESS = 'http://jabber.org/protocol/address';
export const NS_DATA = 'jabber:x:data';
export const NS_SID = 'urn:xmpp:sid:0';
export const NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0';
export const NS_MODERATE = 'urn:xmpp:message-moderate:1';
export const NS_RETRACT = 'urn:xmpp:message-retract:1';
/** XEP-0424 §"Tombstones": the archive replaces retracted messages with tombstones. */
export const FEATURE_RETRACT_TOMBSTONE = `${NS_RETRACT}#tombstone`;
// XEP-0425 before 0.3 (through XEP-0422 Message Fastening), still sent by deployed clients.
export const NS_MODERATE_0 = 'urn:xmpp:message-moderate:0';
export const NS_RETRACT_0 = 'urn:xmpp:message-retract:0';
export const NS_FASTEN = 'urn:xmpp:fasten:0';

/** Status codes (XEP-0045 §16.6.2). */
export const Status = {
  /** Any occupant may see the user's full JID (non-anonymous room). */
  NonAnonymous: 100,
  /** A non-privacy configuration change. */
  ConfigChanged: 104,
  /** This presence refers to the recipient itself. */
  Self: 110,
  /** Room logging is (now) enabled. */
  LoggingEnabled: 170,
  LoggingDisabled: 171,
  /** The room is now non-anonymous / semi-anonymous. */
  NowNonAnonymous: 172,
  NowSemiAnonymous: 173,
  /** A new room has been created. */
  Created: 201,
  /** The service assigned or modified the roomnick. */
  NickModified: 210,
  Banned: 301,
  NickChanged: 303,
  Kicked: 307,
  /** Removed because of an affiliation change (members-only room). */
  AffiliationRemoved: 321,
  /** Removed because the room became members-only. */
  MembersOnlyRemoved: 322,
  ServiceShutdown: 332,
  /** Removed because of an error reply (technical reasons). */
  ErrorRemoved: 333,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];
