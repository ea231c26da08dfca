// The ClientHello reader (core/util/tls-client-hello.ts): SNI (RFC 6066 §3) and ALPN (RFC 7301
// §3.1) from real ClientHellos of Node and OpenSSL, split over TCP reads and over TLS records
// (RFC 8446 §5.1), and refusals of what is not a well-formed ClientHello.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from '../../core/util/tls-client-hello.ts';

/** The ClientHello a client sends to a server that never answers; `connect` starts the client and returns how to stop it. */
async function captureHello(connect: (port: number) => () => void): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (s: net.Socket) => {
      let data = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        data = Buffer.concat([data, d]);
        if (parseClientHello(data).status !== 'incomplete') {
          s.destroy();
          resolve(data);
        }
      });
    });
  });
  const stop = connect((server.address() as net.AddressInfo).port);
  try {
    return await got;
  } finally {
    stop();
    server.close();
  }
}

function nodeHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  return captureHello((port) => {
    const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    client.on('error', () => undefined);
    return () => client.destroy();
  });
}

/** Splits the handshake of a single-record ClientHello into records of `size` bytes. */
function refragment(hello: Buffer, size: number): Buffer {
  const len = hello.readUInt16BE(3);
  const body = hello.subarray(5, 5 + len);
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

/** A hand-made ClientHello with the given extensions (type, data). */
function syntheticHello(extensions: [number, Buffer][]): Buffer {
  const exts = Buffer.concat(extensions.map(([t, d]) => {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(t, 0);
    h.writeUInt16BE(d.length, 2);
    return Buffer.concat([h, d]);
  }));
  const extLen = Buffer.alloc(2);
  extLen.writeUInt16BE(exts.length);
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), Buffer.from([0, 2, 0x13, 0x01]), Buffer.from([1, 0]), extLen, exts]);
  const hs = Buffer.concat([Buffer.from([1, 0, 0, 0]), body]);
  hs.writeUIntBE(body.length, 1, 3);
  const rec = Buffer.from([22, 3, 1, 0, 0]);
  rec.writeUInt16BE(hs.length, 3);
  return Buffer.concat([rec, hs]);
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const sniExt = (...names: string[]): [number, Buffer] => {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0]), u16(n.length), Buffer.from(n)])));
  return [0, Buffer.concat([u16(list.length), list])];
};
const alpnExt = (...protos: string[]): [number, Buffer] => {
  const list = Buffer.concat(protos.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])));
  return [16, Buffer.concat([u16(list.length), list])];
};

describe('TLS ClientHello reader (SNI, ALPN)', () => {
  it("reads a Node client's server name and protocols", async () => {
    const hello = await nodeHello({ servername: 'Chat.Example.ORG', ALPNProtocols: ['xmpp-client', 'acme-tls/1'] });
    assert.deepEqual(parseClientHello(hello), { status: 'ok', hello: { serverName: 'chat.example.org', alpn: ['xmpp-client', 'acme-tls/1'] } });
  });

  it('reports no server name and no protocols when the client sends neither', async () => {
    const hello = await nodeHello({});
    assert.deepEqual(parseClientHello(hello), { status: 'ok', hello: { serverName: undefined, alpn: [] } });
  });

  it("reads OpenSSL's ClientHello (another TLS stack)", async () => {
    const hello = await captureHello((port) => {
      const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'xmpp.example.net', '-alpn', 'acme-tls/1'], { stdio: ['pipe', 'ignore', 'ignore'] });
      return () => p.kill();
    });
    assert.deepEqual(parseClientHello(hello), { status: 'ok', hello: { serverName: 'xmpp.example.net', alpn: ['acme-tls/1'] } });
  });

  it('asks for more on every prefix, and reads it split over TLS records', async () => {
    const hello = await nodeHello({ servername: 'a.example', ALPNProtocols: ['acme-tls/1'] });
    for (let i = 0; i < hello.length; i++) assert.deepEqual(parseClientHello(hello.subarray(0, i)), { status: 'incomplete' }, `prefix of ${i} bytes`);
    for (const size of [1, 3, 100]) {
      const split = refragment(hello, size);
      assert.deepEqual(parseClientHello(split), { status: 'ok', hello: { serverName: 'a.example', alpn: ['acme-tls/1'] } }, `records of ${size} bytes`);
      assert.deepEqual(parseClientHello(split.subarray(0, split.length - 1)), { status: 'incomplete' });
    }
  });

  it('reads a hand-made ClientHello and takes a trailing dot off the name', () => {
    assert.deepEqual(parseClientHello(syntheticHello([sniExt('x.test.'), alpnExt('acme-tls/1')])), { status: 'ok', hello: { serverName: 'x.test', alpn: ['acme-tls/1'] } });
  });

  const refused: [string, Buffer][] = [
    ['plain text', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['an XMPP stream header', Buffer.from("<?xml version='1.0'?><stream:stream to='x'>")],
    ['an application-data record', Buffer.from([23, 3, 3, 0, 5, 1, 2, 3, 4, 5])],
    ['a record of length 0', Buffer.from([22, 3, 1, 0, 0, 22, 3, 1, 0, 1, 1])],
    ['a ServerHello', Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0])],
    ['a duplicated extension (RFC 8446 §4.2)', syntheticHello([alpnExt('h2'), alpnExt('acme-tls/1')])],
    ['two host names (RFC 6066 §3)', syntheticHello([sniExt('a.test', 'b.test')])],
    ['an empty ALPN list', syntheticHello([[16, u16(0)]])],
    ['an empty protocol name (RFC 7301 §3.1)', syntheticHello([alpnExt('')])],
    ['a name with a space', syntheticHello([sniExt('a test')])],
  ];
  for (const [name, bytes] of refused) {
    it(`refuses ${name}`, () => {
      assert.equal(parseClientHello(bytes).status, 'invalid');
    });
  }

  it('does not wait for a ClientHello longer than its limit', () => {
    const head = Buffer.from([22, 3, 1, 0, 4, 1, 0x02, 0x00, 0x00]); // a handshake header announcing 128 KiB
    assert.deepEqual(parseClientHello(head), { status: 'invalid', reason: 'ClientHello too long' });
    assert.ok(MAX_CLIENT_HELLO_BYTES < 128 * 1024);
  });
});
