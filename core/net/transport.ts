// What a client or component stream runs on, as sessions and modules see it (`session.conn`):
// a TCP connection (core/net/connection.ts), a WebSocket (mod_websocket) or a BOSH session
// (mod_bosh). The facts modules read — address, encryption, channel binding — and the flow
// control SASL2 uses. STARTTLS exists only where the transport can upgrade in place (TCP).
import type tls from 'node:tls';

export interface StreamTransport {
  readonly id: string;
  /** The client's address (after trusted proxies for HTTP transports). */
  readonly ip: string;
  readonly port: number;
  /** Encrypted as the client sees it (TLS, or HTTPS/WSS at us or at a trusted proxy). */
  readonly secure: boolean;
  /** The listener or endpoint it came through ('c2s', 'c2s_direct_tls', 'websocket', 'bosh'). */
  readonly service: string;
  readonly created: number;
  readonly lastActivity: number;
  readonly tlsInfo: { protocol: string | null; cipher: string } | undefined;
  /** Channel-binding data (RFC 5929, RFC 9266), undefined when this transport cannot give it. */
  channelBinding(type: string): Buffer | undefined;
  /** Channel-binding types available, best first ([] when none: no -PLUS mechanisms are offered). */
  channelBindingTypes(): string[];
  /** Stop and restart reading from the client (ordering during asynchronous authentication). */
  pause(): void;
  resume(): void;
  /**
   * While paused: drop what the client sent that has been received but not yet read — it was
   * pipelined behind a state change the server is making now (SASL2 success) and must never run
   * in the new state. Returns how much was dropped (bytes or frames, for the log line).
   */
  discardReceived?(): number;
  /** Upgrade to TLS in place (RFC 6120 §5): only TCP connections have it. */
  starttls?(context: tls.SecureContext, sniContext?: (servername: string) => tls.SecureContext | undefined): Promise<void>;
  /** Inbound rate shaping (core/limits.ts), where the transport reads a byte stream itself (TCP). */
  readonly readRate?: number;
  readonly shaped?: boolean;
  readonly throttled?: number;
  /** Drop at once, without a stream close. */
  destroy(): void;
}
