// What the account archive keeps (XEP-0313 §5.1, XEP-0359): incoming and outgoing one-to-one
// messages, each once; the delivered message carries <stanza-id by=bare/> with the archive id,
// the sender's copy does not leak to the recipient, a forged stanza-id claiming the recipient is
// removed, sent carbons carry the sender's id, a message to oneself is archived once; disco
// features on the account; another account's archive is forbidden.
import assert from 'node:assert/strict';
import { login, stanzaErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { NS_MAM, NS_SID, mamForm, mamQuery, stanzaId } from '../helpers/mam.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'mam-pass';
const NS_CARBONS = 'urn:xmpp:carbons:2';

describe('e2e: message archive, archiving and stanza ids (XEP-0313, XEP-0359)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  let seq = 0;
  const nextId = () => `mam-${++seq}`;

  const connect = async (user: string, resource: string, priority = 0): Promise<TestClient> => {
    const c = await login(server, user, PASS, { resource });
    clients.push(c);
    await c.send(xml('presence', {}, xml('priority', {}, String(priority))));
    await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    return c;
  };
  const chat = (to: string, id: string, body: string, ...extra: Element[]) => xml('message', { to, type: 'chat', id }, xml('body', {}, body), ...extra);
  const byId = (id: string) => (s: Element) => s.name === 'message' && s.attrs.id === id;

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS, mercutio: PASS, benvolio: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'offline', 'carbons', 'mam'] },
    });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('advertises MAM and stanza ids on the account', async function () {
    const c = await connect('romeo', 'disco');
    const info = await c.iq(xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var as string);
    for (const f of [NS_MAM, 'urn:xmpp:mam:2#extended', NS_SID]) assert.ok(features.includes(f), f);
  });

  it('archives a message in both archives and delivers it with the recipient\'s stanza id', async function () {
    const romeo = await connect('romeo', 'a');
    const juliet = await connect('juliet', 'a');
    const id = nextId();
    await romeo.send(chat('juliet@localhost', id, 'archived twice', xml('stanza-id', { xmlns: NS_SID, by: 'juliet@localhost', id: 'forged' })));
    const got = await juliet.expect(byId(id));
    const sids = got.getChildren('stanza-id', NS_SID);
    assert.equal(sids.length, 1, 'the forged one is gone');
    const sid = stanzaId(got, 'juliet@localhost');
    assert.ok(sid && sid !== 'forged');
    assert.equal(stanzaId(got, 'romeo@localhost'), undefined, 'the sender\'s id is not the recipient\'s business');

    const mine = await mamQuery(juliet, [mamForm({ with: 'romeo@localhost' })]);
    assert.equal(mine.reply.attrs.type, 'result');
    const k = mine.messages.findIndex((m) => m.attrs.id === id);
    assert.ok(k >= 0);
    assert.equal(mine.ids[k], sid, 'the archive id is the stanza id');
    assert.equal(mine.messages[k]!.getChildText('body'), 'archived twice');
    assert.equal(mine.messages[k]!.getChildren('stanza-id', NS_SID).length, 0, 'stored without forged ids');

    const theirs = await mamQuery(romeo, [mamForm({ with: 'juliet@localhost' })]);
    assert.equal(theirs.messages.filter((m) => m.attrs.id === id).length, 1);
  });

  it('gives sent carbons the sender\'s stanza id (XEP-0313 §3.5)', async function () {
    const a = await connect('mercutio', 'a', 5);
    const b = await connect('mercutio', 'b', 1);
    await b.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS_CARBONS })));
    const romeo = await connect('romeo', 'b');
    const id = nextId();
    await a.send(chat(romeo.jid, id, 'with carbon'));
    const got = await romeo.expect(byId(id));
    assert.equal(stanzaId(got, 'mercutio@localhost'), undefined);
    const copy = await b.expect((s) => s.getChild('sent', NS_CARBONS) !== undefined);
    const inner = copy.getChild('sent', NS_CARBONS)!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!;
    const sid = stanzaId(inner, 'mercutio@localhost');
    assert.ok(sid);
    const archived = await mamQuery(a, [mamForm({ ids: [sid] })]);
    assert.equal(archived.messages[0]!.attrs.id, id);
  });

  it('archives a message to oneself once, and delivers it with that id', async function () {
    const a = await connect('benvolio', 'a', 1);
    const b = await connect('benvolio', 'b', 1);
    const id = nextId();
    await a.send(chat(b.jid, id, 'note to self'));
    const got = await b.expect(byId(id));
    const sid = stanzaId(got, 'benvolio@localhost');
    assert.ok(sid);
    const all = await mamQuery(a);
    assert.deepEqual(all.ids.filter((x, i) => all.messages[i]!.attrs.id === id), [sid]);
  });

  it('answers a query for another account\'s archive with forbidden (§8.1)', async function () {
    const romeo = await connect('romeo', 'spy');
    const r = await mamQuery(romeo, [], 'juliet@localhost');
    assert.equal(r.reply.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(r.reply), 'forbidden');
  });

  it('does not archive what is hinted <no-store/> or <no-permanent-store/>, nor headlines; does archive <store/> (XEP-0334)', async function () {
    const romeo = await connect('romeo', 'hints');
    const juliet = await connect('juliet', 'hints');
    const ids = [nextId(), nextId(), nextId(), nextId()];
    await romeo.send(chat('juliet@localhost', ids[0]!, 'no-store', xml('no-store', { xmlns: 'urn:xmpp:hints' })));
    await romeo.send(chat('juliet@localhost', ids[1]!, 'no-perm', xml('no-permanent-store', { xmlns: 'urn:xmpp:hints' })));
    await romeo.send(xml('message', { to: 'juliet@localhost', type: 'headline', id: ids[2]! }, xml('body', {}, 'news')));
    await romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: ids[3]! }, xml('store', { xmlns: 'urn:xmpp:hints' })));
    for (const id of ids) await juliet.expect(byId(id));
    const r = await mamQuery(juliet, [mamForm({ with: 'romeo@localhost' })]);
    const archived = r.messages.map((m) => String(m.attrs.id));
    assert.ok(!archived.includes(ids[0]!) && !archived.includes(ids[1]!) && !archived.includes(ids[2]!));
    assert.ok(archived.includes(ids[3]!));
  });
});
