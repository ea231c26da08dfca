// Reading a Prosody data directory (core/cli/import-prosody.ts): one made by a real Prosody 0.12
// driven by clients (committed), and ones made here with Debian's prosodyctl and Prosody's own
// libraries, covering the variants (hashes, plaintext passwords, old formats) and broken files.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Element } from '@xmpp/xml';
import { decodeName, elementFromLua, readProsodyDataDir, type ProsodyRead } from '../../core/cli/import-prosody.ts';
import { parseLuaValue } from '../../core/util/lua-data.ts';
import type { PortableUser } from '../../core/util/portable-data.ts';
import { verifyPassword, type ScramHash } from '../../core/util/scram.ts';
import { makeProsodyDataDir, PROSODY_FIXTURE, type ProsodyDir } from '../helpers/prosody.ts';

function user(r: ProsodyRead, host: string, username: string): PortableUser {
  const u = r.data.hosts.find((h) => h.host === host)?.users.find((x) => x.username === username);
  assert.ok(u, `${username}@${host} was read`);
  return u;
}

/** XML with attributes in name order (Lua writes tables, attributes included, in hash order). */
function canon(el: Element): string {
  const attrs = Object.keys(el.attrs).sort().map((k) => ` ${k}="${String(el.attrs[k])}"`).join('');
  const inner = el.children.map((c) => (typeof c === 'string' ? c : canon(c as Element))).join('');
  return inner ? `<${el.name}${attrs}>${inner}</${el.name}>` : `<${el.name}${attrs}/>`;
}

const messages = (r: ProsodyRead) => r.notes.list.map((n) => `${n.level} ${n.user ?? ''}@${n.host ?? ''}: ${n.message}`);

async function canLogIn(u: PortableUser, hash: ScramHash, password: string): Promise<boolean> {
  return verifyPassword(hash, u.scram[hash]!, password);
}

describe('import from Prosody: reading the data directory', () => {
  describe('a directory written by a real Prosody 0.12.3 (spec/fixtures/prosody)', () => {
    let r: ProsodyRead;
    before(async () => {
      r = await readProsodyDataDir(PROSODY_FIXTURE);
    });

    it('finds both hosts and every account, with SCRAM-SHA-1 keys that match the passwords', async () => {
      assert.deepEqual(r.data.hosts.map((h) => [h.host, h.users.map((u) => u.username)]), [
        ['localhost', ['alice', 'bob']],
        ['old-host.example', ['carol.d']],
      ]);
      const alice = user(r, 'localhost', 'alice');
      assert.deepEqual(Object.keys(alice.scram), ['SHA-1']);
      assert.equal(alice.scram['SHA-1']!.iterations, 10000);
      assert.ok(await canLogIn(alice, 'SHA-1', 'pässword 1'));
      assert.ok(!(await canLogIn(alice, 'SHA-1', 'password 1')));
      assert.ok(await canLogIn(user(r, 'localhost', 'bob'), 'SHA-1', 'bob-secret'));
      assert.ok(await canLogIn(user(r, 'old-host.example', 'carol.d'), 'SHA-1', 'c4rol!'));
    });

    it('reads rosters with subscription states, pending requests both ways, names and groups', () => {
      const alice = user(r, 'localhost', 'alice');
      assert.deepEqual(alice.roster, [
        { jid: 'carol.d@old-host.example', subscription: 'none', ask: 'subscribe', groups: [] },
        { jid: 'bob@localhost', subscription: 'to', name: 'Bob', groups: ['Friends', 'Work'] },
        { jid: 'dave@remote.example', subscription: 'none', name: 'Dave ☃', groups: [] },
      ]);
      assert.equal(alice.rosterVersion, 6);
      assert.deepEqual(alice.pendingIn.map((p) => [p.jid, p.stanza.toString()]), [
        ['bob@localhost', '<presence xml:lang="en" from="bob@localhost" to="alice@localhost" type="subscribe"/>'],
      ]);
      const bob = user(r, 'localhost', 'bob');
      assert.deepEqual(bob.roster, [{ jid: 'alice@localhost', subscription: 'from', ask: 'subscribe', groups: [] }]);
      const carol = user(r, 'old-host.example', 'carol.d');
      assert.deepEqual(carol.pendingIn.map((p) => p.stanza.attrs.from), ['alice@localhost']);
    });

    it('converts the PEP vCard4 and avatar (mod_vcard_legacy) to vcard-temp, and reads mod_vcard\'s vCard as it is', () => {
      const alice = user(r, 'localhost', 'alice');
      assert.equal(
        alice.vcard!.toString(),
        '<vCard xmlns="vcard-temp"><FN>Alice Äpfel</FN><N><FAMILY>Äpfel</FAMILY><GIVEN>Alice</GIVEN></N><NICKNAME>ali</NICKNAME>'
          + '<EMAIL><HOME/><INTERNET/><USERID>alice@example.org</USERID></EMAIL><TEL><WORK/><NUMBER>+1 555 0100</NUMBER></TEL>'
          + '<PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==</BINVAL></PHOTO></vCard>',
      );
      assert.equal(user(r, 'old-host.example', 'carol.d').vcard!.toString(), '<vCard xmlns="vcard-temp"><FN>Carol D.</FN><URL>https://carol.example/</URL></vCard>');
      assert.equal(user(r, 'localhost', 'bob').vcard, undefined);
    });

    it('reads offline messages with the time Prosody stored them, stamped as mod_offline does', () => {
      const [m, ...rest] = user(r, 'localhost', 'alice').offline;
      assert.equal(rest.length, 0);
      assert.equal(m!.when, 1796337458000);
      assert.equal(
        m!.stanza.toString(),
        '<message xml:lang="de" to="alice@localhost" id="m1" from="bob@localhost/phone" type="chat"><body>Grüße 👋 &lt;&amp;&gt; "quoted"\nsecond line</body>'
          + '<delay xmlns="urn:xmpp:delay" from="localhost" stamp="2026-12-03T22:37:38.000Z"/></message>',
      );
      assert.equal(user(r, 'old-host.example', 'carol.d').offline[0]!.stanza.getChildText('subject'), 'Hi');
    });

    it('reads private XML, and the PEP bookmarks (mod_bookmarks) as the private storage:bookmarks', () => {
      assert.deepEqual(user(r, 'localhost', 'alice').privateXml.map(String), [
        '<exodus xmlns="exodus:prefs"><defaultnick>Alice</defaultnick></exodus>',
        '<storage xmlns="storage:bookmarks"><conference jid="room@conference.localhost" autojoin="true" name="The Room"><nick>ali</nick></conference></storage>',
      ]);
      assert.deepEqual(user(r, 'old-host.example', 'carol.d').privateXml.map(String), [
        '<storage xmlns="storage:bookmarks"><conference jid="club@muc.old-host.example" autojoin="false"/></storage>',
      ]);
    });

    it('reads blocklists (0.12.3 stores times as the values)', () => {
      assert.deepEqual(user(r, 'localhost', 'alice').blocked, ['evil2.example', 'spammer@evil.example']);
      assert.deepEqual(user(r, 'old-host.example', 'carol.d').blocked, ['troll@old-host.example/res']);
    });

    it('says what it converted, and warns of nothing', () => {
      assert.deepEqual(r.notes.warnings, []);
      assert.deepEqual(messages(r), [
        'info alice@localhost: vCard converted from PEP (vCard4 and avatar)',
        'info alice@localhost: bookmarks converted from PEP (XEP-0402) to private XML storage',
      ]);
    });
  });

  describe('directories made with prosodyctl and Prosody\'s libraries', () => {
    let dir: ProsodyDir;
    let r: ProsodyRead;
    const marker = path.join('/tmp', `cadence-lua-executed-${process.pid}`);

    before(async function () {
      this.timeout(30_000);
      dir = await makeProsodyDataDir(
        [{ host: 'h-st.example' }, { host: 'sha256.example', passwordHash: 'SHA-256' }, { host: 'plain.example', plain: true }],
        [
          { user: 'jürgen.x', host: 'h-st.example', password: 'pw 1' },
          { user: 'olga', host: 'h-st.example', password: 'olga pw' },
          { user: 'off', host: 'h-st.example', password: 'off pw' },
          { user: 'jürgen.x', host: 'sha256.example', password: 'pw 256' },
          { user: 'pat', host: 'plain.example', password: 'plain secret' },
        ],
        [
          {
            op: 'roster', host: 'h-st.example', user: 'jürgen.x', version: 41,
            items: [
              { jid: 'olga@h-st.example', subscription: 'both', name: 'Olga', groups: ['Family', 'Friends'] },
              { jid: 'remote@far.example', subscription: 'from', ask: 'subscribe' },
              { jid: 'not a jid@@', subscription: 'both' },
              { jid: 'weird@far.example', subscription: 'sometimes' },
            ],
            // Older Prosody stored `true` for a pending request; 0.12 the presence itself.
            pending: [{ jid: 'old@far.example' }, { jid: 'new@far.example', stanza: "<presence from='new@far.example/x' type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>New</nick></presence>" }],
          },
          { op: 'vcard', host: 'h-st.example', user: 'jürgen.x', xml: "<vCard xmlns='vcard-temp'><FN>Jürgen X.</FN><EMAIL><INTERNET/><USERID>j@x.example</USERID></EMAIL></vCard>" },
          {
            op: 'offline', host: 'h-st.example', user: 'jürgen.x',
            messages: [
              { xml: "<message xmlns='jabber:client' from='olga@h-st.example/phone' to='jürgen.x@h-st.example' type='chat' id='o1'><body>first</body></message>", when: 1700000000.25, with: 'olga@h-st.example', key: 'k1' },
              { xml: "<message xmlns='jabber:client' xmlns:e='urn:example:ext' e:flag='yes' from='olga@h-st.example/phone' type='normal' id='o2'><body>second\ttab</body><x xmlns='jabber:x:oob'><url>https://x.example/f</url></x></message>", when: 1700000100, key: 'k2' },
            ],
          },
          { op: 'private', host: 'h-st.example', user: 'jürgen.x', fragments: ["<prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs>", "<storage xmlns='storage:bookmarks'><conference jid='r@muc.example' autojoin='true'/></storage>"] },
          { op: 'blocklist', host: 'h-st.example', user: 'jürgen.x', jids: ['spam@far.example', 'jürgen.x@h-st.example', 'evil.example'] },
          // No blocklist yet: the default privacy list of mod_privacy is what mod_blocklist would use.
          {
            op: 'privacy', host: 'h-st.example', user: 'olga', default: 'mine',
            lists: [
              { name: 'mine', items: [{ type: 'jid', value: 'ex@far.example', action: 'deny', order: 1 }, { type: 'group', value: 'Work', action: 'deny', order: 2 }, { action: 'allow', order: 3 }] },
              { name: 'other', items: [{ type: 'jid', value: 'never@far.example', action: 'deny', order: 1 }] },
            ],
          },
          // Data of stores Cadence has no counterpart for, of an account that no longer exists,
          // of a disabled account (Prosody 13), and of an unusable name.
          { op: 'store', host: 'h-st.example', user: 'jürgen.x', store: 'archive2', data: { any: 'thing' } },
          { op: 'roster', host: 'h-st.example', user: 'gone', items: [{ jid: 'x@far.example', subscription: 'both' }] },
          { op: 'store', host: 'h-st.example', user: 'bad user', store: 'accounts', data: { password: 'x' } },
          { op: 'store', host: 'muc.h-st.example', user: 'room', store: 'config', data: { name: 'Room' } },
          { op: 'store', host: 'h-st.example', user: 'disabled', store: 'accounts', data: { password: 'still here', enabled: false } },
        ],
      );
      // A broken file and a hostile one: read as data, reported, never run.
      mkdirSync(path.join(dir.data, 'h%2dst%2eexample', 'vcard'), { recursive: true });
      writeFileSync(path.join(dir.data, 'h%2dst%2eexample', 'vcard', 'olga.dat'), 'return { name = "vCard", attr = { xmlns = "vcard-temp" }; { name = "FN"; "unterminated }');
      writeFileSync(path.join(dir.data, 'h%2dst%2eexample', 'vcard', 'off.dat'), `return os.execute("touch ${marker}")`);
      symlinkSync('/etc', path.join(dir.data, 'h%2dst%2eexample', 'etc'));
      r = await readProsodyDataDir(dir.data);
    });
    after(() => dir?.cleanup());

    it('decodes escaped host and user names', () => {
      assert.deepEqual(r.data.hosts.map((h) => h.host), ['h-st.example', 'plain.example', 'sha256.example']);
      assert.deepEqual(user(r, 'h-st.example', 'jürgen.x').username, 'jürgen.x');
      assert.equal(decodeName('j%c3%bcrgen%2ex'), 'jürgen.x');
      assert.equal(decodeName('%ff'), undefined);
      assert.equal(decodeName('bad%2'), undefined);
    });

    it('keeps SCRAM-SHA-1 and SCRAM-SHA-256 keys by their length, and plaintext passwords as such', async () => {
      const sha1 = user(r, 'h-st.example', 'jürgen.x');
      assert.deepEqual(Object.keys(sha1.scram), ['SHA-1']);
      assert.ok(await canLogIn(sha1, 'SHA-1', 'pw 1'));
      const sha256 = user(r, 'sha256.example', 'jürgen.x');
      assert.deepEqual(Object.keys(sha256.scram), ['SHA-256']);
      assert.ok(await canLogIn(sha256, 'SHA-256', 'pw 256'));
      const plain = user(r, 'plain.example', 'pat');
      assert.deepEqual(plain.scram, {});
      assert.equal(plain.password, 'plain secret');
    });

    it('reads the roster, noting the entries a roster cannot hold', () => {
      const u = user(r, 'h-st.example', 'jürgen.x');
      // Lua tables have no order: Prosody writes them in hash order.
      const roster = u.roster.map((i) => ({ ...i, groups: [...i.groups].sort() })).sort((a, b) => (a.jid < b.jid ? -1 : 1));
      assert.deepEqual(roster, [
        { jid: 'olga@h-st.example', subscription: 'both', name: 'Olga', groups: ['Family', 'Friends'] },
        { jid: 'remote@far.example', subscription: 'from', ask: 'subscribe', groups: [] },
      ]);
      assert.equal(u.rosterVersion, 41);
      assert.deepEqual(u.pendingIn.map((p) => canon(p.stanza)).sort(), [
        '<presence from="new@far.example" to="jürgen.x@h-st.example" type="subscribe"><nick xmlns="http://jabber.org/protocol/nick">New</nick></presence>',
        '<presence from="old@far.example" to="jürgen.x@h-st.example" type="subscribe"/>',
      ]);
      const m = messages(r);
      assert.ok(m.includes("warning jürgen.x@h-st.example: roster item 'not a jid@@' skipped: not a valid JID"), m.join('\n'));
      assert.ok(m.includes("warning jürgen.x@h-st.example: roster item weird@far.example skipped: unknown subscription state 'sometimes'"), m.join('\n'));
    });

    it('reads vCards, offline messages (namespaced attributes kept), private XML', () => {
      const u = user(r, 'h-st.example', 'jürgen.x');
      assert.equal(canon(u.vcard!), '<vCard xmlns="vcard-temp"><FN>Jürgen X.</FN><EMAIL><INTERNET/><USERID>j@x.example</USERID></EMAIL></vCard>');
      assert.deepEqual(u.offline.map((o) => o.when), [1700000000250, 1700000100000]);
      assert.equal(
        canon(u.offline[0]!.stanza),
        '<message from="olga@h-st.example/phone" id="o1" to="jürgen.x@h-st.example" type="chat"><body>first</body><delay from="h-st.example" stamp="2023-11-14T22:13:20.250Z" xmlns="urn:xmpp:delay"/></message>',
      );
      const second = u.offline[1]!.stanza;
      assert.equal(second.attrs.to, 'jürgen.x@h-st.example');
      assert.equal(second.attrs['xmlns:ns1'], 'urn:example:ext');
      assert.equal(second.attrs['ns1:flag'], 'yes');
      assert.equal(second.getChild('x', 'jabber:x:oob')?.getChildText('url'), 'https://x.example/f');
      assert.equal(second.getChildText('body'), 'second\ttab');
      assert.deepEqual(u.privateXml.map(canon).sort(), [
        '<prefs xmlns="urn:example:prefs"><theme>dark</theme></prefs>',
        '<storage xmlns="storage:bookmarks"><conference autojoin="true" jid="r@muc.example"/></storage>',
      ]);
    });

    it('reads blocklists, or the default privacy list when there is none', () => {
      assert.deepEqual([...user(r, 'h-st.example', 'jürgen.x').blocked].sort(), ['evil.example', 'spam@far.example']);
      assert.deepEqual(user(r, 'h-st.example', 'olga').blocked, ['ex@far.example']);
      const m = messages(r);
      assert.ok(m.includes('warning jürgen.x@h-st.example: blocked JID jürgen.x@h-st.example skipped: a user cannot block their own account'), m.join('\n'));
      assert.ok(m.includes("info olga@h-st.example: blocklist taken from the default privacy list 'mine' (1 JIDs), as Prosody's mod_blocklist migrates it"), m.join('\n'));
      assert.ok(m.includes("warning olga@h-st.example: 2 other rules of the privacy list 'mine' not imported: Cadence has the blocklist (XEP-0191) only"), m.join('\n'));
    });

    it('reports broken and hostile files without running them, and goes on with the rest', () => {
      assert.ok(!existsSync(marker), 'nothing was executed');
      const m = messages(r);
      assert.ok(m.some((x) => /^warning olga@h-st\.example: vcard\/olga\.dat is unreadable \(unfinished string/.test(x)), m.join('\n'));
      assert.ok(m.some((x) => /^warning off@h-st\.example: vcard\/off\.dat is unreadable \('os' is not a value/.test(x)), m.join('\n'));
      assert.deepEqual(user(r, 'h-st.example', 'olga').blocked, ['ex@far.example']);
      assert.ok(user(r, 'h-st.example', 'off').scram['SHA-1']);
    });

    it('names what it leaves behind: other stores, orphaned files, components, unusable or disabled accounts, links', () => {
      const m = messages(r);
      const expect = [
        "warning bad user@h-st.example: 'bad user' is not a valid username (RFC 7622 localpart): account skipped",
        'warning disabled@h-st.example: the account is disabled in Prosody: imported without credentials, so it cannot log in until its password is set',
        'warning @h-st.example: etc: a symbolic link; not followed',
        "info @h-st.example: store 'archive2' (1 files) not imported: the message archive (XEP-0313): Cadence has no message archive yet",
        "warning @h-st.example: store 'roster': 1 files belong to no imported account; skipped",
        'info @muc.h-st.example: no accounts (a component such as MUC?); stores not imported: config',
      ];
      for (const e of expect) assert.ok(m.includes(e), `${e}\nin:\n${m.join('\n')}`);
      const disabled = user(r, 'h-st.example', 'disabled');
      assert.equal(disabled.password, undefined);
      assert.deepEqual(disabled.scram, {});
    });
  });

  it('bounds the size of each file it reads', async () => {
    const r = await readProsodyDataDir(PROSODY_FIXTURE, { limits: { maxBytes: 150 } });
    assert.deepEqual(r.data.hosts, []);
    const perAccount = r.notes.warnings.filter((n) => n.user !== undefined);
    assert.equal(perAccount.length, 3);
    for (const n of perAccount) assert.match(n.message, /^accounts\/.*\.dat is unreadable \(larger than 150 bytes\); skipped$/);
  });

  describe('serialized stanzas', () => {
    it('refuses names and text that would not be XML', () => {
      const el = (lua: string) => elementFromLua(parseLuaValue(lua));
      assert.throws(() => el('{ name = "a b" }'), /invalid element name/);
      assert.throws(() => el('{ name = "x", attr = { ["a=\\"1\\" b"] = "2" } }'), /invalid attribute name/);
      assert.throws(() => el('{ name = "x", "nul\\0" }'), /characters XML does not allow/);
      assert.throws(() => el('{ name = "x", attr = { a = "\\1" } }'), /invalid value of attribute/);
      assert.throws(() => el('{ name = "x", { name = "<y>" } }'), /invalid element name/);
      assert.throws(() => el('{ name = "x", true }'), /neither an element nor text/);
      assert.equal(el('{ name = "x", attr = { ["http://www.w3.org/XML/1998/namespace\\1lang"] = "en", ["urn:a|b"] = "c" }, "t<&>" }').toString(), '<x xml:lang="en" xmlns:ns1="urn:a" ns1:b="c">t&lt;&amp;&gt;</x>');
    });
  });
});
