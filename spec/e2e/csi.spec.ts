// Client State Indication (XEP-0352) end to end: while a client is inactive, presence updates and
// chat states wait (the latest per sender only) and go out, in order, before a message with a body
// or an iq, or when the client becomes active; the admin shell's session list shows the counts.
import assert from 'node:assert/strict';
import { RawClient, xml, type Element } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'csi-pass';
const NS_CSI = 'urn:xmpp:csi:0';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const MODULES = ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'csi', 'admin_shell'];

describe('e2e: client state indication (XEP-0352)', function () {
  let server: TestServer;
  const clients: RawClient[] = [];

  const connect = async (user: string, resource: string): Promise<{ c: RawClient; jid: string }> => {
    const c = await RawClient.connect(server.c2sPort);
    clients.push(c);
    c.openStream();
    await c.starttls();
    const jid = await c.authenticate(user, PASS, resource);
    c.write(xml('presence').toString());
    return { c, jid };
  };

  const presence = (to: string, show: string) => xml('presence', { to }, xml('show', {}, show));
  const chatState = (to: string, state: string) => xml('message', { to, type: 'chat' }, xml(state, { xmlns: NS_CHATSTATES }));
  const fromRomeo = (el: Element) => String(el.attrs.from ?? '').startsWith('romeo@');
  const shell = async (...words: string[]) => {
    const r = await server.cli(['shell', ...words]);
    assert.equal(r.code, 0, `shell ${words.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** The next `n` stanzas from romeo, in order. */
  const next = async (c: RawClient, n: number) => {
    const got: Element[] = [];
    for (let i = 0; i < n; i++) got.push(await c.expect(fromRomeo));
    return got;
  };
  /** Romeo's stanzas have all been routed: his ping came back. */
  const sync = async (c: RawClient, id: string) => {
    c.write(xml('iq', { type: 'get', id, to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })).toString());
    await c.expect((el) => el.name === 'iq' && el.attrs.id === id);
  };

  before(async function () {
    server = await startServer({ users: { romeo: PASS, juliet: PASS }, config: { modulesEnabled: MODULES } });
  });
  afterEach(function () {
    for (const c of clients.splice(0)) c.socket.destroy();
  });
  after(async function () {
    await server?.destroy();
  });

  it('holds presence updates and chat states (the latest per sender) until a message with a body, and sends them first', async function () {
    const { c: juliet, jid } = await connect('juliet', 'phone');
    const { c: romeo } = await connect('romeo', 'desk');
    juliet.write(xml('inactive', { xmlns: NS_CSI }).toString());
    await sync(juliet, 'j1'); // the <inactive/> has been handled before romeo's stanzas come

    for (const show of ['away', 'xa', 'dnd']) romeo.write(presence(jid, show).toString());
    romeo.write(chatState(jid, 'composing').toString());
    romeo.write(chatState(jid, 'paused').toString());
    await sync(romeo, 'r1');
    await juliet.expectNothing(fromRomeo, 300);

    const list = await shell('session', 'list');
    assert.match(list, new RegExp(`juliet@localhost/phone .*inactive held 2 \\(5 in all\\) flushed 0`), list);

    romeo.write(xml('message', { to: jid, type: 'chat', id: 'body1' }, xml('body', {}, 'hello')).toString());
    const [p, cs, m] = await next(juliet, 3);
    assert.equal(p!.name, 'presence');
    assert.equal(p!.getChildText('show'), 'dnd', 'only the latest presence');
    assert.ok(cs!.getChild('paused', NS_CHATSTATES), `the latest chat state: ${cs!.toString()}`);
    assert.equal(m!.attrs.id, 'body1');
    await juliet.expectNothing(fromRomeo, 300);
    assert.match(await shell('session', 'list'), /juliet@localhost\/phone .*inactive held 0 \(5 in all\) flushed 2/);
  });

  it('flushes on <active/> and before an iq, and passes everything while active', async function () {
    const { c: juliet, jid } = await connect('juliet', 'tablet');
    const { c: romeo } = await connect('romeo', 'desk2');
    assert.ok(juliet.received.includes(NS_CSI), '<csi/> is offered once authenticated');
    juliet.write(xml('inactive', { xmlns: NS_CSI }).toString());
    await sync(juliet, 'j2');
    romeo.write(presence(jid, 'away').toString());
    await sync(romeo, 'r2');
    await juliet.expectNothing(fromRomeo, 300);
    juliet.write(xml('active', { xmlns: NS_CSI }).toString());
    assert.equal((await juliet.expect(fromRomeo)).getChildText('show'), 'away');

    // Active: nothing waits.
    romeo.write(presence(jid, 'chat').toString());
    assert.equal((await juliet.expect(fromRomeo)).getChildText('show'), 'chat');

    juliet.write(xml('inactive', { xmlns: NS_CSI }).toString());
    await sync(juliet, 'j3');
    romeo.write(presence(jid, 'xa').toString());
    romeo.write(xml('iq', { type: 'get', id: 'v1', to: jid }, xml('query', { xmlns: 'jabber:iq:version' })).toString());
    const [p, iq] = await next(juliet, 2);
    assert.equal(p!.getChildText('show'), 'xa');
    assert.equal(iq!.attrs.id, 'v1');
  });
});
