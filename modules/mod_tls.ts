//% requires_core_features: sessions-v1, module-capabilities
// STARTTLS (RFC 6120 §5). Required by default (c2sRequireEncryption): until the stream is
// encrypted, mod_saslauth offers no mechanism, so a client cannot log in in the clear.
import { Element } from '@xmpp/xml';
import { defineModule, NS } from '../core/api.ts';

export default defineModule({
  description: 'STARTTLS for client streams',
  capabilities: ['tls'],
  load(module) {
    const required = () => module.config('c2sRequireEncryption');

    module.hook('stream-features', ({ origin, features }) => {
      if (!origin.conn?.starttls || origin.conn.secure || origin.type !== 'c2s_unauthed') return;
      if (!module.privileged.tls.context(module.host)) return;
      const starttls = new Element('starttls', { xmlns: NS.tls });
      if (required()) starttls.c('required');
      features.cnode(starttls);
    }, 100);

    module.hook(`stream-element/${NS.tls}:starttls`, ({ origin }) => {
      const conn = origin.conn;
      const ctx = module.privileged.tls.context(module.host);
      if (!conn?.starttls || conn.secure || !ctx || origin.type !== 'c2s_unauthed') {
        origin.send(new Element('failure', { xmlns: NS.tls }));
        origin.close();
        return true;
      }
      origin.send(new Element('proceed', { xmlns: NS.tls }));
      // The client starts the handshake right after <proceed/> (RFC 6120 §5.4.3.3). Whatever it
      // sent after <starttls/> is dropped unparsed (the restart cuts off the rest of this read),
      // and from here on the socket's bytes go to TLS: nothing sent in plaintext after
      // <starttls/> is ever processed inside the encrypted stream (CVE-2011-0411 class).
      origin.resetStream();
      conn.starttls(ctx, (name) => module.privileged.tls.context(name)).then(
        () => module.log('%s: TLS established (%s)', origin.id, conn.tlsInfo?.protocol),
        (err: unknown) => {
          module.log.warn('TLS handshake with %s failed: %s', conn.ip, (err as Error).message);
          conn.destroy();
        },
      );
      return true;
    });
  },
});
