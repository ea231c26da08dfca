// A TLS client for certificate tests: connects to 127.0.0.1, optionally with SNI and ALPN, and
// reports what the server presented. Verification stays on when a CA is given (with the SNI name
// as the identity to check); without one the test looks at the certificate itself.
import net from 'node:net';
import tls from 'node:tls';

export interface TlsProbe {
  socket: tls.TLSSocket;
  /** SHA-256 fingerprint of the leaf the server presented. */
  fingerprint256: string;
  /** The whole presented leaf. */
  peer: tls.DetailedPeerCertificate;
  alpnProtocol: string | false | null;
}

export interface TlsProbeOptions {
  port: number;
  servername?: string;
  alpn?: string[];
  /** Trust this CA and verify the certificate for `servername`; otherwise no verification. */
  ca?: string | string[];
  /** An already connected plain socket to start TLS on (STARTTLS). */
  socket?: net.Socket;
}

export function tlsProbe(o: TlsProbeOptions): Promise<TlsProbe> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      ...(o.socket ? { socket: o.socket } : { host: '127.0.0.1', port: o.port }),
      servername: o.servername,
      ALPNProtocols: o.alpn,
      ca: o.ca,
      rejectUnauthorized: o.ca !== undefined,
    });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate(true);
      resolve({ socket, fingerprint256: peer.fingerprint256, peer, alpnProtocol: socket.alpnProtocol });
    });
    socket.once('error', reject);
  });
}

/** Sends `text` and resolves with the first data that comes back (the test servers echo). */
export function roundTrip(socket: tls.TLSSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (d: Buffer) => resolve(d.toString()));
    socket.once('error', reject);
    socket.write(text);
  });
}
