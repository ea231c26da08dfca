// Message Archive Management engine (XEP-0313 with XEP-0059, XEP-0359, XEP-0441), shared by the
// user archive (mod_mam) and the room archive (MUC). One import for all of it; the parts live in
// core/util/mam/. How a module wires it: doc/mam.md.
export {
  type MamFilter, type MamOptions, type MamPage, type MamQuery, type ResultAddressing,
  NS_DELAY, NS_FORWARD, NS_MAM, NS_MAM_EXTENDED, NS_MAM_GROUPCHAT_FIELD,
  finElement, mamFeatures, mamFormSpec, metadataElement, parseQuery, queryFormElement, resultMessage, runQuery, storedMessage,
} from './mam/query.ts';
export type { ArchiveItem, ArchiveQuery, MamArchive } from './mam/archive.ts';
export { type MamIqContext, answerMamIq } from './mam/iq.ts';
export {
  type ArchiveDefault, type ArchivePrefs,
  archivePolicy, defaultPrefs, isArchiveDefault, parsePrefs, prefsElement, shouldArchive, storedPrefs,
} from './mam/prefs.ts';
export { NS_SID, addStanzaId, originIdOf, stanzaIdOf, stripStanzaIds } from './mam/stanza-id.ts';
export {
  type ArchiveDecision,
  archiveTargets, archivedPayload, expireArchive, parseExpiry, roomArchiveDecision, userArchiveDecision,
} from './mam/archiving.ts';
