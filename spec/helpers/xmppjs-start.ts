// Starting an xmpp.js client the way its README does: by its 'online' event.
//
// xmpp.js 0.14 (and its main branch, 2026-04) attaches Connection.open()'s 'open' listener only
// after the stream header's write callback, so when the server's header arrives first (client and
// server on one host, a loaded CPU) the promise start() awaits rejects with a TimeoutError 2 s
// later, while the session goes online and works. It happens against Cadence before the
// module-API rework and against any quick responder; no server can prevent it short of answering
// slowly on purpose. So: proceed on 'online'; that TimeoutError is reported, not fatal; any other
// start() failure rejects; a connection that never gets online is left to the caller's timeout.
import type { Client } from '@xmpp/client';

export type XmppJsAddress = Awaited<ReturnType<Client['start']>>;

export function startXmppJs(xmpp: Client, onStartTimeout: (err: Error) => void = () => undefined): Promise<XmppJsAddress> {
  const online = new Promise<XmppJsAddress>((resolve) => xmpp.once('online', resolve));
  const started = xmpp.start().then(
    () => new Promise<never>(() => undefined),
    (err: unknown) => {
      if (!(err instanceof Error && err.name === 'TimeoutError')) throw err;
      onStartTimeout(err);
      return new Promise<never>(() => undefined);
    },
  );
  return Promise.race([online, started]);
}
