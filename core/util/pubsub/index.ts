// The pubsub engine's public surface (XEP-0060, XEP-0163 and the specifications on top of them);
// doc/pubsub.md says how mod_pep and mod_pubsub use it.
export * from './ns.ts';
export * from './errors.ts';
export * from './config.ts';
export * from './access.ts';
export * from './store.ts';
export * from './notify.ts';
export * from './service.ts';
export * from './protocol.ts';
export * from './bookmarks.ts';
export * from './avatar.ts';
export * from './vcard4.ts';
