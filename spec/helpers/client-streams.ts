// Real ClientStreams (core/net/c2s.ts), Session and SessionFilters over a minimal module object
// and stand-in transports: for unit tests of what a client stream hands its transport.
import type { ClientStreamIo, ClientStreamModule } from '../../core/net/c2s.ts';
import { ClientStreams } from '../../core/net/c2s.ts';
import type { StreamTransport } from '../../core/net/transport.ts';
import { Session, SessionFilters, type SessionType, type StreamOps } from '../../core/session.ts';
import { serialiseOutgoing } from '../../core/util/stanza.ts';

export function clientStreamsHarness() {
  const filters = new SessionFilters();
  const sessions: Session[] = [];
  const noop = () => undefined;
  const log = Object.assign(noop, { info: noop, warn: noop, error: noop });
  const module = {
    hosts: { kind: () => 'virtualhost' },
    hookGlobal: noop,
    limits: () => ({ rate: 0, burst: 0, unauthenticatedRate: 0, unauthenticatedBurst: 0, connectionsPerAddress: 0, sendQueue: 0 }),
    log,
    sendFrom: noop,
    fireOnHost: noop,
    emitOnHost: noop,
    privileged: {
      routing: {},
      sessions: {
        create: (type: SessionType, conn: StreamTransport, ops: StreamOps) => {
          const s = new Session(type, conn, ops, filters);
          sessions.push(s);
          return s;
        },
        destroy: noop,
      },
    },
  } as unknown as ClientStreamModule;
  const streams = new ClientStreams(module, { unauthenticatedTimeout: 60 });
  let connections = 0;

  /** A client connection on `port` whose transport writes with `send`; its session is on `host`. */
  const connect = (host: string, send: ClientStreamIo['send'], port = 5222) => {
    const io: ClientStreamIo = { sendHeader: () => 'stream-id', send, close: noop, abandon: noop };
    const conn = { id: `c${++connections}`, ip: '127.0.0.1', port, secure: false, service: 'c2s' } as unknown as StreamTransport;
    const stream = streams.accept(conn, io);
    const session = sessions.at(-1)!;
    session.host = host;
    return { stream, session };
  };

  /**
   * As mod_smacks: the last `stanzas/out` filter on `host` serialises each stanza for its journal
   * (serialiseOutgoing). Returns the strings it made, in order.
   */
  const serialiseForJournal = (host: string): string[] => {
    const kept: string[] = [];
    filters.add('stanzas/out', host, (stanza) => {
      kept.push(serialiseOutgoing(stanza));
      return stanza;
    }, -1_000_000);
    return kept;
  };

  return { connect, serialiseForJournal };
}
