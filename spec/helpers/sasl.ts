// Client sides of the SASL mechanisms the tests speak on raw sockets, written from the RFCs and
// drafts (not from the server's code): SCRAM (RFC 5802, RFC 7677, SHA-512; with channel binding)
// and the Hashed Token mechanisms (draft-schmaus-kitten-sasl-ht, as clients send them today).
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export type Hash = 'SHA-1' | 'SHA-256' | 'SHA-512';
const ALG: Record<Hash, { name: string; length: number }> = {
  'SHA-1': { name: 'sha1', length: 20 },
  'SHA-256': { name: 'sha256', length: 32 },
  'SHA-512': { name: 'sha512', length: 64 },
};

/** The hash of a SCRAM mechanism name (SCRAM-SHA-256-PLUS → SHA-256), or undefined. */
export function scramHash(mechanism: string): Hash | undefined {
  return /^SCRAM-(SHA-1|SHA-256|SHA-512)(?:-PLUS)?$/.exec(mechanism)?.[1] as Hash | undefined;
}

export function saltedPassword(hash: Hash, password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, ALG[hash].length, ALG[hash].name);
}

/**
 * A SCRAM client: first(), then final(server-first), then verify(server-final). `gs2` is the
 * channel-binding flag ('n', 'y', 'p=<type>'); `cbData` is the binding data sent with 'p='.
 */
export class ScramClient {
  private readonly nonce = randomBytes(18).toString('base64');
  private readonly gs2Header: string;
  private readonly bare: string;
  private authMessage = '';
  private salted: Buffer | undefined;

  constructor(
    readonly hash: Hash,
    user: string,
    private readonly password: string,
    gs2 = 'n',
    private readonly cbData: Buffer = Buffer.alloc(0),
  ) {
    this.gs2Header = `${gs2},,`;
    this.bare = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${this.nonce}`;
  }

  first(): Buffer {
    return Buffer.from(this.gs2Header + this.bare);
  }

  final(serverFirst: Buffer | string): Buffer {
    const sf = serverFirst.toString();
    const attrs = new Map(sf.split(',').map((a) => [a[0]!, a.slice(2)] as const));
    if (!attrs.get('r')?.startsWith(this.nonce)) throw new Error(`bad server nonce in ${sf}`);
    const alg = ALG[this.hash].name;
    this.salted = saltedPassword(this.hash, this.password, Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')));
    const withoutProof = `c=${Buffer.concat([Buffer.from(this.gs2Header), this.cbData]).toString('base64')},r=${attrs.get('r')}`;
    this.authMessage = `${this.bare},${sf},${withoutProof}`;
    const clientKey = createHmac(alg, this.salted).update('Client Key').digest();
    const signature = createHmac(alg, createHash(alg).update(clientKey).digest()).update(this.authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** Whether the server-final message proves the server knows the credentials. */
  verify(serverFinal: Buffer): boolean {
    const alg = ALG[this.hash].name;
    const serverKey = createHmac(alg, this.salted!).update('Server Key').digest();
    return serverFinal.toString() === `v=${createHmac(alg, serverKey).update(this.authMessage).digest('base64')}`;
  }
}

/** HT-SHA-256-*: the initiator message `authcid NUL HMAC(token, "Initiator" || cb-data)`. */
export function htInitiator(user: string, token: string, cbData: Buffer = Buffer.alloc(0)): Buffer {
  const hmac = createHmac('sha256', token).update(Buffer.concat([Buffer.from('Initiator'), cbData])).digest();
  return Buffer.concat([Buffer.from(user), Buffer.from([0]), hmac]);
}

/** Whether the success data is HMAC(token, "Responder" || cb-data) (mutual authentication). */
export function htVerify(token: string, data: Buffer, cbData: Buffer = Buffer.alloc(0)): boolean {
  const expected = createHmac('sha256', token).update(Buffer.concat([Buffer.from('Responder'), cbData])).digest();
  return data.length === expected.length && timingSafeEqual(data, expected);
}
