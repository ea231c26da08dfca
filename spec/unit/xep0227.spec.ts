// XEP-0227 (Portable Import/Export Format, v1.1) ↔ the neutral model (core/util/xep0227.ts), with
// the XEP's own examples, XInclude, hostile documents, and the PEP conversions (core/util/pep-legacy.ts).
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import { bookmarks2ToStorage, vcard4ToVcardTemp } from '../../core/util/pep-legacy.ts';
import { addOffline, emptyUser, formatReport, ImportNotes, type PortableData, type PortableUser } from '../../core/util/portable-data.ts';
import { exportXep0227, importXep0227, parseXmlDocument, Xep0227Error, type IncludeResolver, type Xep0227Import } from '../../core/util/xep0227.ts';

const el = (xml: string) => parse(xml) as unknown as Element;

function only(r: Xep0227Import, host = 'capulet.com', name = 'juliet'): PortableUser {
  const u = r.data.hosts.find((h) => h.host === host)?.users.find((x) => x.username === name);
  assert.ok(u, `${name}@${host} was read`);
  return u;
}

const notes = (r: Xep0227Import) => r.notes.list.map((n) => `${n.level}: ${n.message}`);

/** One user element's content inside the XEP's frame. */
const doc = (userContent: string, host = 'capulet.com', name = 'juliet') =>
  `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'><host jid='${host}'><user name='${name}'>${userContent}</user></host></server-data>`;

async function rejects(text: string, pattern: RegExp, opts = {}): Promise<void> {
  await assert.rejects(importXep0227(text, opts), (err: unknown) => err instanceof Xep0227Error && pattern.test(err.message));
}

describe('XEP-0227 import and export', () => {
  describe('import (the XEP\'s examples)', () => {
    it('§4.1–4.2: hosts and users, names prepared', async () => {
      const r = await importXep0227(`<server-data xmlns='urn:xmpp:pie:0'>
        <host jid='capulet.com'><user name='juliet'/></host>
        <host jid='Montague.NET'><user name='Romeo'/></host>
      </server-data>`);
      assert.deepEqual(r.data.hosts.map((h) => [h.host, h.users.map((u) => u.username)]), [['capulet.com', ['juliet']], ['montague.net', ['romeo']]]);
      assert.deepEqual(notes(r), ["info: username 'Romeo' is 'romeo' once prepared (RFC 7622)"]);
    });

    it('§4.3: SCRAM credentials per mechanism; unknown mechanisms and bad values are noted', async () => {
      const r = await importXep0227(doc(`
        <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>
          <iter-count>100000</iter-count>
          <salt>TmFDbE5hQ2xOYUNsTmFDbE5hQ2xOYUNsTmFDbE5hQ2xOYUNsTmFDbE5hQ2wK</salt>
          <server-key>0pXWGK0GZJ6TR73AIUN3ITYtA1g=</server-key>
          <stored-key>Q6qT/SbybblGCZz8e8eSfCJOQic=</stored-key>
        </scram-credentials>
        <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'><iter-count>0100</iter-count><salt>c2FsdA==</salt><server-key>AA==</server-key><stored-key>AA==</stored-key></scram-credentials>
        <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-512'><iter-count>4096</iter-count><salt>c2FsdA==</salt><server-key>AA==</server-key><stored-key>AA==</stored-key></scram-credentials>
        <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA3-512'><iter-count>4096</iter-count></scram-credentials>`));
      const u = only(r);
      assert.deepEqual(u.scram, {
        'SHA-1': { iterations: 100000, salt: 'TmFDbE5hQ2xOYUNsTmFDbE5hQ2xOYUNsTmFDbE5hQ2xOYUNsTmFDbE5hQ2wK', serverKey: '0pXWGK0GZJ6TR73AIUN3ITYtA1g=', storedKey: 'Q6qT/SbybblGCZz8e8eSfCJOQic=' },
      });
      assert.deepEqual(notes(r), [
        "warning: SCRAM-SHA-256 credentials skipped: <iter-count/> '0100' is not a positive integer without leading zeros",
        'warning: SCRAM-SHA-512 credentials not imported: keys must be 64 bytes of base64',
        "warning: SCRAM credentials for 'SCRAM-SHA3-512' skipped: Cadence implements SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512",
      ]);
    });

    it('§4.2: a plaintext password is kept to derive credentials from', async () => {
      assert.equal(only(await importXep0227(doc('', 'capulet.com', "juliet' password='s3crEt"))).password, 's3crEt');
    });

    it('§4.4 and §4.9: the roster with its version, pre-approval, and pending requests', async () => {
      const r = await importXep0227(doc(`
        <query xmlns='jabber:iq:roster' ver='17'>
          <item jid='romeo@montague.net' name='Romeo' subscription='both'><group>Friends</group><group>Friends</group></item>
          <item jid='nurse@capulet.com' subscription='none' ask='subscribe'/>
          <item jid='tybalt@capulet.com' approved='true'/>
          <item jid='Benvolio@Montague.net/ignored' subscription='to'/>
        </query>
        <presence xmlns='jabber:client' type='subscribe' id='xk3h1v69' from='romeo@montague.net'><nick xmlns="http://jabber.org/protocol/nick">Romeo</nick></presence>
        <presence xmlns='jabber:client' type='subscribe' from='mercutio@montague.net'/>`));
      const u = only(r);
      assert.equal(u.rosterVersion, 17);
      assert.deepEqual(u.roster, [
        { jid: 'romeo@montague.net', subscription: 'both', name: 'Romeo', groups: ['Friends'] },
        { jid: 'nurse@capulet.com', subscription: 'none', ask: 'subscribe', groups: [] },
        { jid: 'tybalt@capulet.com', subscription: 'none', approved: true, groups: [] },
      ]);
      assert.deepEqual(u.pendingIn.map((p) => p.stanza.toString()), [
        '<presence type="subscribe" id="xk3h1v69" from="romeo@montague.net" to="juliet@capulet.com"><nick xmlns="http://jabber.org/protocol/nick">Romeo</nick></presence>',
        '<presence type="subscribe" from="mercutio@montague.net" to="juliet@capulet.com"/>',
      ]);
      assert.deepEqual(notes(r), ["warning: roster item 'Benvolio@Montague.net/ignored' skipped: a roster holds bare JIDs only"]);
    });

    it('§4.5: offline messages oldest first, with the time from their delay stamp', async () => {
      const r = await importXep0227(doc(`
        <offline-messages>
          <message xmlns='jabber:client' from='romeo@montague.net/orchard' to='juliet@capulet.com/balcony' type='chat'>
            <body>Neither, fair saint, if either thee dislike.</body>
            <delay xmlns='urn:xmpp:delay' from='capulet.com' stamp='1469-07-21T00:32:29Z'>Offline Storage</delay>
          </message>
          <message xmlns='jabber:client' from='nurse@capulet.com' type='normal'><body>Madam!</body><x xmlns='jabber:x:delay' stamp='14690721T01:00:00'/></message>
          <message xmlns='jabber:client' from='friar@verona.lit'><body>Hm.</body><delay xmlns='urn:xmpp:delay' from='verona.lit' stamp='1469-07-21T02:00:00.5+02:00'/></message>
          <message xmlns='jabber:client' from='x@y'><body>no stamp</body></message>
          <message xmlns='urn:other'/>
        </offline-messages>`), { now: () => 42 });
      const u = only(r);
      assert.deepEqual(u.offline.map((m) => m.when), [Date.UTC(1469, 6, 21, 0, 32, 29), Date.UTC(1469, 6, 21, 1), Date.UTC(1469, 6, 21, 0, 0, 0, 500), 42]);
      const first = u.offline[0]!.stanza;
      assert.equal(first.attrs.xmlns, undefined);
      assert.equal(first.attrs.to, 'juliet@capulet.com/balcony');
      assert.equal(first.getChildren('delay', 'urn:xmpp:delay').length, 1, 'the host\'s own stamp is not added twice');
      const third = u.offline[2]!.stanza;
      assert.equal(third.attrs.to, 'juliet@capulet.com');
      assert.deepEqual(third.getChildren('delay', 'urn:xmpp:delay').map((d) => d.attrs.from), ['verona.lit', 'capulet.com']);
      assert.deepEqual(notes(r), ['info: an offline message has no delay stamp; stamped with the import time', 'warning: an offline message in the namespace urn:other skipped']);
    });

    it('§4.6–4.7: private XML fragments and the vCard, stored self-contained', async () => {
      const r = await importXep0227(doc(`
        <query xmlns="jabber:iq:private"><exodus xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></exodus><nons/><c xmlns='jabber:client'/></query>
        <vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard>`));
      const u = only(r);
      assert.deepEqual(u.privateXml.map(String), ['<exodus xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></exodus>']);
      assert.equal(u.vcard!.toString(), '<vCard xmlns="vcard-temp"><FN>Juliet Capulet</FN></vCard>');
      assert.deepEqual(notes(r), [
        'warning: private XML <nons/> skipped: the namespace jabber:iq:private cannot hold private data',
        'warning: private XML <c/> skipped: the namespace jabber:client cannot hold private data',
      ]);
    });

    it('§4.8: the JIDs the default privacy list denies become the blocklist; the rest is noted', async () => {
      const r = await importXep0227(doc(`
        <query xmlns='jabber:iq:privacy'>
          <default name='public'/>
          <list name='public'>
            <item type='jid' value='tybalt@example.com' action='deny' order='1'/>
            <item type='jid' value='paris@example.com' action='deny' order='2'><message/></item>
            <item action='allow' order='3'/>
          </list>
          <list name='private'>
            <item type='subscription' value='both' action='allow' order='10'/>
            <item action='deny' order='15'/>
          </list>
        </query>
        <blocklist xmlns='urn:xmpp:blocking'><item jid='rosaline@example.com'/><item jid='tybalt@example.com'/></blocklist>`));
      assert.deepEqual(only(r).blocked, ['tybalt@example.com', 'rosaline@example.com']);
      assert.deepEqual(notes(r), ['warning: 3 privacy list rules (XEP-0016) not imported: only the JIDs the default list denies are kept, as the blocklist (1)']);
    });

    it('§4.10: PEP vCard4 and avatar become the vCard, bookmarks the private storage; other nodes are noted', async () => {
      const r = await importXep0227(doc(`
        <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:xmpp:bookmarks:1'/></pubsub>
        <pubsub xmlns='http://jabber.org/protocol/pubsub'>
          <items node='urn:xmpp:bookmarks:1'>
            <item id='theplay@conference.shakespeare.lit'><conference xmlns='urn:xmpp:bookmarks:1' name='The Play&apos;s the Thing' autojoin='true'><nick>Romeo</nick></conference></item>
            <item id='orchard@conference.shakespeare.lit'><conference xmlns='urn:xmpp:bookmarks:1' name='The Orchard' autojoin='1'><nick>Romeo</nick></conference></item>
          </items>
          <items node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Romy</nick></item></items>
          <items node='urn:xmpp:vcard4'><item id='current'><vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Romeo Montague</text></fn><gender><sex><text>M</text></sex></gender></vcard></item></items>
          <items node='urn:xmpp:avatar:metadata'><item id='abc'><metadata xmlns='urn:xmpp:avatar:metadata'><info id='abc' type='image/png' bytes='3'/></metadata></item></items>
          <items node='urn:xmpp:avatar:data'><item id='abc'><data xmlns='urn:xmpp:avatar:data'>AAEC</data></item></items>
        </pubsub>`, 'capulet.com', 'romeo'));
      const u = only(r, 'capulet.com', 'romeo');
      assert.equal(u.vcard!.toString(), '<vCard xmlns="vcard-temp"><FN>Romeo Montague</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>AAEC</BINVAL></PHOTO></vCard>');
      assert.deepEqual(u.privateXml.map(String), [
        '<storage xmlns="storage:bookmarks"><conference jid="theplay@conference.shakespeare.lit" autojoin="true" name="The Play&apos;s the Thing"><nick>Romeo</nick></conference>'
          + '<conference jid="orchard@conference.shakespeare.lit" autojoin="true" name="The Orchard"><nick>Romeo</nick></conference></storage>',
      ]);
      assert.deepEqual(notes(r), [
        "info: PEP node 'http://jabber.org/protocol/nick' (1 items) not imported: Cadence has no PEP service yet",
        'info: vCard converted from PEP (vCard4 and avatar); without gender',
        'info: bookmarks converted from PEP (XEP-0402) to private XML storage',
      ]);
    });

    it('§4.10: the user\'s own vCard and bookmarks win over PEP', async () => {
      const r = await importXep0227(doc(`
        <vCard xmlns='vcard-temp'><FN>Legacy</FN></vCard>
        <query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='a@b'/></storage></query>
        <pubsub xmlns='http://jabber.org/protocol/pubsub'>
          <items node='urn:xmpp:vcard4'><item id='current'><vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>PEP</text></fn></vcard></item></items>
          <items node='urn:xmpp:bookmarks:1'><item id='c@d'><conference xmlns='urn:xmpp:bookmarks:1'/></item></items>
        </pubsub>`));
      const u = only(r);
      assert.equal(u.vcard!.getChildText('FN'), 'Legacy');
      assert.equal(u.privateXml.length, 1);
      assert.equal(u.privateXml[0]!.getChild('conference')!.attrs.jid, 'a@b');
    });

    it('§4.11: the message archive is counted and noted; unknown elements are noted and ignored', async () => {
      const r = await importXep0227(doc(`
        <archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='1'/><result xmlns='urn:xmpp:mam:2' id='2'/></archive>
        <custom xmlns='urn:example:ext'/>`));
      assert.deepEqual(notes(r), [
        'info: 2 archived messages (XEP-0313) not imported: Cadence has no message archive yet',
        "warning: <custom xmlns='urn:example:ext'> is not understood; ignored",
      ]);
    });

    it('reads prefixed elements and the pre-1.0 namespace', async () => {
      const r = await importXep0227(`<p:server-data xmlns:p='http://www.xmpp.org/extensions/xep-0227.html#ns' xmlns:v='vcard-temp'>
        <p:host jid='capulet.com'><p:user name='juliet'><v:vCard><v:FN>Juliet</v:FN><x:EXT xmlns:x='urn:x' v:attr='1'/></v:vCard></p:user></p:host>
      </p:server-data>`);
      const vcard = only(r).vcard!;
      assert.equal(vcard.toString(), '<vCard xmlns="vcard-temp" xmlns:v="vcard-temp"><FN>Juliet</FN><EXT xmlns="urn:x" xmlns:x="urn:x" v:attr="1"/></vCard>');
      assert.equal(vcard.getChild('EXT')!.getNS(), 'urn:x');
      assert.equal(el(vcard.toString()).getChild('FN')!.getNS(), 'vcard-temp');
      assert.deepEqual(notes(r), ["info: the file uses XEP-0227's pre-1.0 namespace http://www.xmpp.org/extensions/xep-0227.html#ns"]);
    });
  });

  describe('XInclude (§5)', () => {
    const files: Record<string, string> = {
      'main.xml': `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='capulet.com.xml'/></server-data>`,
      'capulet.com.xml': `<host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='capulet.com'><xi:include href='capulet.com/juliet.xml'/><xi:include href='capulet.com/missing.xml'><xi:fallback><user name='nobody'/></xi:fallback></xi:include></host>`,
      'capulet.com/juliet.xml': `<user xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' name='juliet'><xi:include href='roster.xml'/><xi:include href='v.txt' parse='text'/>`
        + `<query xmlns='jabber:iq:private'><notes xmlns='urn:example:notes'><xi:include href='/etc/passwd'/></notes></query></user>`,
      'capulet.com/roster.xml': `<query xmlns='jabber:iq:roster'><item jid='romeo@montague.net' subscription='both'/></query>`,
      'loop.xml': `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='loop-host.xml'/></server-data>`,
      'loop-host.xml': `<host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='a.example'><xi:include href='loop-host.xml'/></host>`,
    };
    const requested: string[] = [];
    const resolve: IncludeResolver = async (href, base) => {
      const dir = base?.includes('/') ? base.slice(0, base.lastIndexOf('/') + 1) : '';
      const name = dir + href;
      requested.push(name);
      if (!(name in files)) throw new Error('no such file');
      return { text: files[name]!, base: name };
    };

    it('replaces includes of server-data, host and user children, relative to the including file', async () => {
      requested.length = 0;
      const r = await importXep0227(files['main.xml']!, { resolveInclude: resolve, base: 'main.xml' });
      assert.deepEqual(requested, ['capulet.com.xml', 'capulet.com/juliet.xml', 'capulet.com/missing.xml', 'capulet.com/roster.xml']);
      assert.deepEqual(r.data.hosts[0]!.users.map((u) => u.username), ['juliet', 'nobody']);
      const u = only(r);
      assert.deepEqual(u.roster.map((i) => i.jid), ['romeo@montague.net']);
      // An include inside user data is data (§6): kept as it is, never fetched.
      assert.equal(u.privateXml[0]!.toString(), '<notes xmlns="urn:example:notes"><include xmlns="http://www.w3.org/2001/XInclude" href="/etc/passwd"/></notes>');
      assert.deepEqual(notes(r), [
        "warning: <include href='capulet.com/missing.xml'/> could not be read (no such file); its fallback used",
        "warning: an <include/> of 'v.txt' with 'parse' or 'xpointer' is not supported; skipped",
      ]);
    });

    it('refuses include cycles and chains deeper than the limit; without a resolver includes are noted', async () => {
      await rejects(files['loop.xml']!, /includes itself/, { resolveInclude: resolve, base: 'loop.xml' });
      await rejects(files['loop.xml']!, /nested deeper than 1/, { resolveInclude: resolve, limits: { maxIncludeDepth: 1 } });
      const r = await importXep0227(files['main.xml']!);
      assert.deepEqual(notes(r), ["warning: <include href='capulet.com.xml'/> skipped: includes are not read here"]);
    });
  });

  describe('hostile and broken documents', () => {
    it('refuses DOCTYPEs and entities, malformed XML, a wrong root, and limits', async () => {
      await rejects(`<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><server-data xmlns='urn:xmpp:pie:0'>&b;</server-data>`, /DOCTYPE/);
      await rejects(`<server-data xmlns='urn:xmpp:pie:0'>&ext;</server-data>`, /undefined entity|ext/);
      await rejects(`<server-data xmlns='urn:xmpp:pie:0'><host>`, /unclosed|end/i);
      await rejects(`<server-data xmlns='urn:xmpp:pie:0'><a:b/></server-data>`, /prefix|unbound/i);
      await rejects(`<host xmlns='urn:xmpp:pie:0' jid='x'/>`, /root element is <host xmlns='urn:xmpp:pie:0'>/);
      await rejects(`<server-data/>`, /root element is <server-data>/);
      await rejects(`${'<a>'.repeat(300)}`, /nested deeper than 256/);
      await rejects(`<server-data xmlns='urn:xmpp:pie:0'>${'<x/>'.repeat(50)}</server-data>`, /more than 10 elements/, { limits: { maxElements: 10 } });
      await rejects(`<server-data xmlns='urn:xmpp:pie:0'/>`, /larger than 10 characters/, { limits: { maxChars: 10 } });
      assert.throws(() => parseXmlDocument(''), Xep0227Error);
    });

    it('notes hosts and users it cannot take', async () => {
      const r = await importXep0227(`<server-data xmlns='urn:xmpp:pie:0'><host jid='a@b'/><host><user name='x'/></host><host jid='ok.example'><user/><user name='bad user'/><other/></host><stray/></server-data>`);
      assert.deepEqual(notes(r), [
        "warning: <host jid='a@b'/> is not a domain; its users skipped",
        "warning: <host jid=''/> is not a domain; its users skipped",
        "warning: a <user/> without 'name' skipped",
        "warning: 'bad user' is not a valid username (RFC 7622 localpart): account skipped",
        "warning: <other xmlns='urn:xmpp:pie:0'> in <host jid='ok.example'/> is not understood; ignored",
        "warning: <stray xmlns='urn:xmpp:pie:0'> in <server-data/> is not understood; ignored",
      ]);
    });
  });

  describe('export', () => {
    const data = (): PortableData => {
      const u = emptyUser('juliet');
      u.scram['SHA-1'] = { iterations: 4096, salt: 'c2FsdA==', storedKey: 'Q6qT/SbybblGCZz8e8eSfCJOQic=', serverKey: '0pXWGK0GZJ6TR73AIUN3ITYtA1g=' };
      u.password = "s3cr'<Et";
      u.roster.push({ jid: 'romeo@montague.net', subscription: 'both', name: 'Romeo & co', groups: ['Friends'] }, { jid: 'nurse@capulet.com', subscription: 'none', ask: 'subscribe', approved: true, groups: [] });
      u.rosterVersion = 3;
      u.pendingIn.push({ jid: 'paris@verona.lit', stanza: el("<presence type='subscribe' from='paris@verona.lit' to='juliet@capulet.com'/>") });
      u.vcard = el("<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>");
      addOffline(u, 'capulet.com', el("<message from='romeo@montague.net/orchard' type='chat'><body>Hi &lt;3</body></message>"), Date.UTC(2024, 0, 2, 3, 4, 5, 6), () => undefined);
      u.privateXml.push(el("<exodus xmlns='exodus:prefs'><defaultnick>J</defaultnick></exodus>"));
      u.blocked.push('tybalt@capulet.com', 'evil.example');
      return { hosts: [{ host: 'capulet.com', users: [u, emptyUser('nurse')] }] };
    };

    it('writes a well-formed document in urn:xmpp:pie:0 that imports back to the same data', async () => {
      const text = exportXep0227(data());
      assert.ok(text.startsWith("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>"));
      const root = parseXmlDocument(text);
      const user = root.getChild('host')!.getChild('user')!;
      assert.equal(user.attrs.password, undefined, 'no plaintext password unless asked for');
      assert.equal(user.getChild('scram-credentials', 'urn:xmpp:pie:0#scram')!.attrs.mechanism, 'SCRAM-SHA-1');
      assert.equal(user.getChild('offline-messages')!.getChild('message')!.getNS(), 'jabber:client');
      assert.equal(user.getChild('presence')!.getNS(), 'jabber:client');
      assert.equal(user.getChild('query', 'jabber:iq:privacy')!.getChild('default')!.attrs.name, 'blocklist');
      const back = await importXep0227(text);
      assert.deepEqual(back.notes.list, []);
      const expected = data();
      delete expected.hosts[0]!.users[0]!.password;
      assert.equal(exportXep0227(back.data), exportXep0227(expected));
      assert.deepEqual(back.data.hosts[0]!.users[0]!.blocked, ['tybalt@capulet.com', 'evil.example']);
    });

    it('writes plaintext passwords only when asked to', async () => {
      const text = exportXep0227(data(), { passwords: true });
      const back = await importXep0227(text);
      assert.equal(back.data.hosts[0]!.users[0]!.password, "s3cr'<Et");
    });

    it('formats a report of what a file holds', async () => {
      const back = await importXep0227(exportXep0227(data()));
      assert.equal(formatReport(back.data, new ImportNotes().list),
        'capulet.com: 2 accounts, 2 roster items, 1 pending subscription requests, 1 vCards, 1 offline messages, 1 private XML fragments, 2 blocked JIDs\n'
        + '  1 accounts have SCRAM-SHA-1 credentials only; they gain SCRAM-SHA-256 and -512 at their next PLAIN login or password change\n'
        + '  1 accounts have no credentials and cannot log in until their password is set');
    });
  });

  describe('PEP to legacy forms (core/util/pep-legacy.ts)', () => {
    it('maps every vCard4 property vcard-temp has a place for (XEP-0292 → XEP-0054)', () => {
      const v4 = el(`<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'>
        <fn><text>Peter Saint-Andre</text></fn>
        <n><surname>Saint-Andre</surname><given>Peter</given><additional/></n>
        <nickname><text>stpeter</text><text>psa</text></nickname>
        <bday><date>1966-08-06</date></bday>
        <adr><parameters><type><text>work</text></type><pref><integer>1</integer></pref></parameters><ext>Suite 600</ext><street>1899 Wynkoop Street</street><locality>Denver</locality><region>CO</region><code>80202</code><country>USA</country></adr>
        <tel><parameters><type><text>work</text><text>voice</text></type></parameters><uri>tel:+1-303-308-3282</uri></tel>
        <tel><parameters><type><text>cell</text></type></parameters><uri>tel:+1-720-256-6756</uri></tel>
        <email><parameters><type><text>work</text></type></parameters><text>psaintan@cisco.com</text></email>
        <impp><uri>xmpp:stpeter@jabber.org</uri></impp><impp><uri>sip:x@y</uri></impp>
        <geo><uri>geo:39.59,-105.01</uri></geo>
        <tz><text>America/Denver</text></tz>
        <title><text>Executive Director</text></title><role><text>Patron Saint</text></role>
        <org><text>XMPP Standards Foundation</text><text>Board</text></org>
        <categories><text>xmpp</text><text>standards</text></categories>
        <url><uri>https://stpeter.im/</uri></url>
        <note><text>More information about me is located on my personal website.</text></note>
        <photo><uri>https://stpeter.im/images/stpeter_oscon.jpg</uri></photo>
        <gender><sex><text>M</text></sex></gender><lang><language-tag>en</language-tag></lang>
      </vcard>`);
      const r = vcard4ToVcardTemp(v4)!;
      assert.equal(r.vcard.toString(), '<vCard xmlns="vcard-temp"><FN>Peter Saint-Andre</FN><N><FAMILY>Saint-Andre</FAMILY><GIVEN>Peter</GIVEN></N>'
        + '<NICKNAME>stpeter</NICKNAME><NICKNAME>psa</NICKNAME><BDAY>1966-08-06</BDAY>'
        + '<ADR><WORK/><PREF/><EXTADD>Suite 600</EXTADD><STREET>1899 Wynkoop Street</STREET><LOCALITY>Denver</LOCALITY><REGION>CO</REGION><PCODE>80202</PCODE><CTRY>USA</CTRY></ADR>'
        + '<TEL><WORK/><VOICE/><NUMBER>+1-303-308-3282</NUMBER></TEL><TEL><CELL/><NUMBER>+1-720-256-6756</NUMBER></TEL>'
        + '<EMAIL><WORK/><INTERNET/><USERID>psaintan@cisco.com</USERID></EMAIL><JABBERID>stpeter@jabber.org</JABBERID>'
        + '<GEO><LAT>39.59</LAT><LON>-105.01</LON></GEO><TZ>America/Denver</TZ><TITLE>Executive Director</TITLE><ROLE>Patron Saint</ROLE>'
        + '<ORG><ORGNAME>XMPP Standards Foundation</ORGNAME><ORGUNIT>Board</ORGUNIT></ORG><CATEGORIES><KEYWORD>xmpp</KEYWORD><KEYWORD>standards</KEYWORD></CATEGORIES>'
        + '<URL>https://stpeter.im/</URL><NOTE>More information about me is located on my personal website.</NOTE>'
        + '<PHOTO><EXTVAL>https://stpeter.im/images/stpeter_oscon.jpg</EXTVAL></PHOTO></vCard>');
      assert.deepEqual(r.dropped, ['impp', 'gender', 'lang']);
    });

    it('takes a data: photo as BINVAL, an avatar URL as EXTVAL, and gives nothing for nothing', () => {
      assert.equal(vcard4ToVcardTemp(el("<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><photo><uri>data:image/jpeg;base64,/9j/ AA==</uri></photo></vcard>"))!.vcard.toString(),
        '<vCard xmlns="vcard-temp"><PHOTO><TYPE>image/jpeg</TYPE><BINVAL>/9j/AA==</BINVAL></PHOTO></vCard>');
      const meta = el("<metadata xmlns='urn:xmpp:avatar:metadata'><info id='x' type='image/png' bytes='1' url='https://a.example/x.png'/></metadata>");
      assert.equal(vcard4ToVcardTemp(undefined, { metadata: meta, data: new Map() })!.vcard.toString(),
        '<vCard xmlns="vcard-temp"><PHOTO><TYPE>image/png</TYPE><EXTVAL>https://a.example/x.png</EXTVAL></PHOTO></vCard>');
      assert.equal(vcard4ToVcardTemp(el("<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><n/></vcard>")), undefined);
      assert.equal(bookmarks2ToStorage([]), undefined);
    });
  });

  it('exports a user without credentials as a bare <user/>', async () => {
    const text = exportXep0227({ hosts: [{ host: 'a.example', users: [emptyUser('nobody')] }] });
    assert.match(text, /<user name="nobody">\n {4}<\/user>/);
    assert.deepEqual(only(await importXep0227(text), 'a.example', 'nobody').scram, {});
  });
});
