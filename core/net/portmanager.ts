// Network listeners. Modules ask for a service on a set of ports (mod_c2s: 'c2s' on c2sPorts and
// 'c2s_direct_tls' on c2sDirectTlsPorts); the port manager binds them on the configured
// interfaces, terminates direct TLS (XEP-0368) with SNI — and answers ACME TLS-ALPN-01
// validations on those ports (RFC 8737) —, and hands each new socket over as a Connection.
import net from 'node:net';
import tls from 'node:tls';
import { acceptDirectTls } from './acme-tls-alpn.ts';
import type { CertManager } from './certmanager.ts';
import { Connection } from './connection.ts';
import { CoreError } from '../util/errors.ts';
import { getLogger } from '../util/log.ts';

const log = getLogger('core:portmanager');

export interface ListenerSpec {
  /** Service name, used in logs and the `ready` line (e.g. 'c2s'). */
  name: string;
  ports: number[];
  /** Addresses to bind (default: the config's interfaces, else all). */
  interfaces?: string[];
  /** Direct TLS (XEP-0368): the handshake happens before the XML stream. */
  directTls?: boolean;
  /** Direct TLS: the ALPN protocol (default 'xmpp-client'; s2s: 'xmpp-server'). */
  alpn?: string;
  /** Direct TLS: ask for the peer's certificate (judged by the module; never refused here). */
  requestCert?: boolean;
  onConnection(conn: Connection): void;
}

export interface Listener {
  readonly name: string;
  /** 'address:port' strings actually bound. */
  readonly addresses: string[];
  close(): Promise<void>;
}

export class PortManager {
  private readonly listeners = new Set<Listener>();

  constructor(private readonly certs: CertManager, private readonly defaultInterfaces: () => string[] | undefined) {}

  async listen(spec: ListenerSpec): Promise<Listener> {
    const servers: net.Server[] = [];
    const addresses: string[] = [];
    const cleanups: (() => void)[] = [];
    const ifaces = spec.interfaces ?? this.defaultInterfaces() ?? [undefined];
    try {
      for (const port of spec.ports) {
        for (const iface of ifaces) {
          const accept = (socket: net.Socket) => {
            const conn = new Connection(socket, spec.name, port);
            try {
              spec.onConnection(conn);
            } catch (err) {
              log.error('%s: connection handler failed: %s', spec.name, err);
              socket.destroy();
            }
          };
          const server = net.createServer();
          if (spec.directTls) {
            // The TLS server never listens: the plain listener hands it each socket (after a
            // look at the ClientHello while an ACME TLS-ALPN-01 validation is under way), and
            // the certificate is looked up per connection — SNI through the CertManager, the
            // no-SNI default replaced whenever the CertManager reloads.
            const tlsServer = tls.createServer({ ...this.tlsDefaults(), SNICallback: this.certs.sni, ALPNProtocols: [spec.alpn ?? 'xmpp-client'], requestCert: spec.requestCert ?? false, rejectUnauthorized: false });
            tlsServer.on('secureConnection', accept);
            tlsServer.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
              log('%s: TLS handshake failed from %s: %s', spec.name, socket.remoteAddress, err.message);
            });
            cleanups.push(this.certs.onChange(() => tlsServer.setSecureContext(this.tlsDefaults())));
            server.on('connection', (socket: net.Socket) => acceptDirectTls(socket, tlsServer, this.certs, log));
          } else {
            server.on('connection', accept);
          }
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen({ port, host: iface, exclusive: true }, () => {
              server.off('error', reject);
              resolve();
            });
          }).catch((err: NodeJS.ErrnoException) => {
            const where = `${iface ?? '*'}:${port}`;
            const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
            throw new CoreError('LISTEN_FAILED', `cannot listen for ${spec.name} on ${where}: ${why}`);
          });
          server.on('error', (err) => log.error('%s listener error: %s', spec.name, err));
          servers.push(server);
          const a = server.address();
          if (a && typeof a === 'object') addresses.push(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
        }
      }
    } catch (err) {
      for (const c of cleanups) c();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      throw err;
    }
    const listener: Listener = {
      name: spec.name,
      addresses,
      close: async () => {
        this.listeners.delete(listener);
        for (const c of cleanups) c();
        await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      },
    };
    this.listeners.add(listener);
    log('%s listening on %s', spec.name, addresses.join(', '));
    return listener;
  }

  /** The certificate for clients that send no SNI, as the CertManager has it now. */
  private tlsDefaults(): tls.TlsOptions {
    return { ...this.certs.fallback, minVersion: 'TLSv1.2' };
  }

  all(): Listener[] {
    return [...this.listeners];
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.listeners].map((l) => l.close()));
  }
}
