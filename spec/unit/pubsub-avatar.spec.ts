// Avatars (XEP-0084 ⇄ XEP-0153 through XEP-0398), vCard4 ⇄ vcard-temp (XEP-0292 §8), and the
// nickname node (XEP-0172) on the engine.
import assert from 'node:assert/strict';
import type { Element } from '@xmpp/xml';
import {
  avatarFromPep, avatarFromVcard, decodeBase64, NS_AVATAR_DATA, NS_AVATAR_METADATA, NS_VCARD_UPDATE, sha1Hex, sniffImageType, stampPresencePhoto,
  vcardPhotoHash, withVcardPhoto,
} from '../../core/util/pubsub/avatar.ts';
import { NS_VCARD4, vcard4FromVcardTemp, vcardTempFromVcard4 } from '../../core/util/pubsub/vcard4.ts';
import { harness, NS, ok, xml } from '../helpers/pubsub.ts';

// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const PNG_B64 = PNG.toString('base64');
const PNG_SHA1 = sha1Hex(PNG);

describe('avatars: XEP-0084 ⇄ XEP-0153 (XEP-0398)', () => {
  it('decodes base64 with line breaks and refuses what is not base64', () => {
    const wrapped = PNG_B64.replace(/(.{20})/g, '$1\n');
    assert.deepEqual(decodeBase64(wrapped), PNG);
    assert.equal(decodeBase64('not base64!'), undefined);
    assert.equal(sniffImageType(PNG), 'image/png');
    assert.equal(sniffImageType(Buffer.from('GIF89a......')), 'image/gif');
    assert.equal(sniffImageType(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), 'image/jpeg');
  });

  it('turns a vCard photo into the data and metadata items to publish (vCard → PEP)', () => {
    const vcard = xml(`<vCard xmlns='vcard-temp'><FN>Juliet</FN><PHOTO><TYPE>image/jpeg</TYPE><BINVAL>${PNG_B64}</BINVAL></PHOTO></vCard>`);
    const a = avatarFromVcard(vcard)!;
    assert.equal(a.image.id, PNG_SHA1);
    assert.equal(a.image.type, 'image/png', 'the data wins over a wrong TYPE (XEP-0153 §6)');
    assert.equal(a.data.attrs.xmlns, NS_AVATAR_DATA);
    assert.deepEqual(decodeBase64(a.data.text()), PNG);
    const info = a.metadata.getChild('info')!;
    assert.equal(a.metadata.attrs.xmlns, NS_AVATAR_METADATA);
    assert.deepEqual({ ...info.attrs }, { bytes: String(PNG.length), id: PNG_SHA1, type: 'image/png', width: '1', height: '1' });
    assert.equal(avatarFromVcard(xml(`<vCard xmlns='vcard-temp'><FN>No photo</FN></vCard>`)), undefined);
  });

  it('finds the image a metadata item announces, checks its hash, and writes it into the vCard (PEP → vCard)', async () => {
    const metadata = xml(`<metadata xmlns='${NS_AVATAR_METADATA}'>
      <info bytes='23456' height='64' id='357a8123a30844a3aa99861b6349264ba67a5694' type='image/gif' url='http://avatars.example.org/happy.gif' width='64'/>
      <info bytes='${PNG.length}' id='${PNG_SHA1}' type='image/png' height='1' width='1'/>
    </metadata>`);
    const data = async (id: string): Promise<Element | undefined> => (id === PNG_SHA1 ? xml(`<data xmlns='${NS_AVATAR_DATA}'>${PNG_B64}</data>`) : undefined);
    const image = await avatarFromPep(metadata, data);
    assert.equal(image?.id, PNG_SHA1);
    const before = xml(`<vCard xmlns='vcard-temp'><FN>Juliet</FN><PHOTO><TYPE>image/gif</TYPE><BINVAL>R0lGODlh</BINVAL></PHOTO><NICKNAME>J</NICKNAME></vCard>`);
    const after = withVcardPhoto(before, image!);
    assert.deepEqual(after.getChildElements().map((c) => c.name), ['FN', 'NICKNAME', 'PHOTO']);
    assert.equal(after.getChild('PHOTO')!.getChildText('TYPE'), 'image/png');
    assert.equal(vcardPhotoHash(after), PNG_SHA1);
    assert.equal(await avatarFromPep(xml(`<metadata xmlns='${NS_AVATAR_METADATA}'/>`), data), null, 'an empty metadata disables the avatar');
    assert.equal(withVcardPhoto(after, null).getChild('PHOTO'), undefined);
    const lying = async (): Promise<Element> => xml(`<data xmlns='${NS_AVATAR_DATA}'>${Buffer.from('other').toString('base64')}</data>`);
    assert.equal(await avatarFromPep(metadata, lying), undefined, 'a hash mismatch is not converted');
    assert.equal(await avatarFromPep(xml(`<metadata xmlns='${NS_AVATAR_METADATA}'><info bytes='1' id='abc' type='image/gif' url='http://x/y.gif'/></metadata>`), data), undefined);
  });

  it('stamps the photo hash into available presence (XEP-0398 §4)', () => {
    const stamp = (p: string, hash: string | undefined) => stampPresencePhoto(xml(p), hash);
    const photo = (p: Element) => p.getChild('x', NS_VCARD_UPDATE)?.getChild('photo')?.text();
    assert.equal(photo(stamp('<presence/>', PNG_SHA1)), PNG_SHA1);
    assert.equal(photo(stamp(`<presence><x xmlns='${NS_VCARD_UPDATE}'/></presence>`, PNG_SHA1)), PNG_SHA1, 'an empty x is overwritten');
    assert.equal(photo(stamp(`<presence><x xmlns='${NS_VCARD_UPDATE}'><photo/></x></presence>`, PNG_SHA1)), '', 'an empty photo is left alone');
    assert.equal(photo(stamp(`<presence><x xmlns='${NS_VCARD_UPDATE}'><photo>0000</photo></x></presence>`, PNG_SHA1)), PNG_SHA1);
    assert.equal(photo(stamp('<presence/>', '')), '', 'no avatar: an empty photo');
    assert.equal(stamp(`<presence type='unavailable'/>`, PNG_SHA1).getChild('x'), undefined);
    assert.equal(stamp('<presence/>', undefined).getChild('x'), undefined);
    const original = xml('<presence><show>away</show></presence>');
    const stamped = stampPresencePhoto(original, PNG_SHA1);
    assert.equal(original.getChild('x'), undefined, 'the input is not changed');
    assert.equal(stamped.getChildText('show'), 'away');
  });
});

describe('vCard4 ⇄ vcard-temp (XEP-0292 §8)', () => {
  const TEMP = xml(`<vCard xmlns='vcard-temp'>
    <FN>Peter Saint-Andre</FN>
    <N><FAMILY>Saint-Andre</FAMILY><GIVEN>Peter</GIVEN><MIDDLE/></N>
    <NICKNAME>stpeter</NICKNAME>
    <PHOTO><TYPE>image/png</TYPE><BINVAL>${PNG_B64}</BINVAL></PHOTO>
    <BDAY>1966-08-06</BDAY>
    <ADR><WORK/><PREF/><EXTADD>Suite 600</EXTADD><STREET>1899 Wynkoop Street</STREET><LOCALITY>Denver</LOCALITY><REGION>CO</REGION><PCODE>80202</PCODE><CTRY>USA</CTRY></ADR>
    <TEL><WORK/><VOICE/><NUMBER>+1-303-308-3282</NUMBER></TEL>
    <EMAIL><HOME/><INTERNET/><USERID>stpeter@jabber.org</USERID></EMAIL>
    <JABBERID>stpeter@jabber.org</JABBERID>
    <TZ>America/Denver</TZ>
    <GEO><LAT>39.59</LAT><LON>-105.01</LON></GEO>
    <TITLE>Executive Director</TITLE>
    <ROLE>Patron Saint</ROLE>
    <ORG><ORGNAME>XMPP Standards Foundation</ORGNAME><ORGUNIT>Council</ORGUNIT></ORG>
    <URL>https://stpeter.im/</URL>
    <DESC>More information about me is located on my personal website.</DESC>
    <MAILER>Thunderbird</MAILER>
  </vCard>`);

  it('maps vcard-temp fields to vCard4 properties', () => {
    const v4 = vcard4FromVcardTemp(TEMP);
    assert.equal(v4.attrs.xmlns, NS_VCARD4);
    const prop = (n: string) => v4.getChild(n)!;
    assert.equal(prop('fn').getChildText('text'), 'Peter Saint-Andre');
    assert.equal(prop('n').getChildText('surname'), 'Saint-Andre');
    assert.equal(prop('n').getChildText('given'), 'Peter');
    assert.equal(prop('nickname').getChildText('text'), 'stpeter');
    assert.equal(prop('photo').getChildText('uri'), `data:image/png;base64,${PNG_B64}`);
    assert.equal(prop('bday').getChildText('date'), '1966-08-06');
    assert.equal(prop('adr').getChildText('street'), '1899 Wynkoop Street');
    assert.equal(prop('adr').getChildText('code'), '80202');
    assert.deepEqual(prop('adr').getChild('parameters')!.getChild('type')!.getChildren('text').map((t) => t.text()), ['work']);
    assert.ok(prop('adr').getChild('parameters')!.getChild('pref'));
    assert.equal(prop('tel').getChildText('uri'), 'tel:+1-303-308-3282');
    assert.deepEqual(prop('tel').getChild('parameters')!.getChild('type')!.getChildren('text').map((t) => t.text()), ['work', 'voice']);
    assert.equal(prop('email').getChildText('text'), 'stpeter@jabber.org');
    assert.equal(prop('impp').getChildText('uri'), 'xmpp:stpeter@jabber.org');
    assert.equal(prop('geo').getChildText('uri'), 'geo:39.59,-105.01');
    assert.deepEqual(prop('org').getChildren('text').map((t) => t.text()), ['XMPP Standards Foundation', 'Council']);
    assert.equal(prop('url').getChildText('uri'), 'https://stpeter.im/');
    assert.equal(prop('note').getChildText('text'), 'More information about me is located on my personal website.');
    assert.equal(v4.getChild('mailer'), undefined, 'MAILER does not exist in vCard4');
  });

  it('maps back to vcard-temp, keeping what only the previous vcard-temp had', () => {
    const back = vcardTempFromVcard4(vcard4FromVcardTemp(TEMP), TEMP);
    const text = (path: string[]) => path.reduce<Element | undefined>((el, n) => el?.getChild(n), back)?.text();
    assert.equal(text(['FN']), 'Peter Saint-Andre');
    assert.equal(text(['N', 'FAMILY']), 'Saint-Andre');
    assert.equal(text(['PHOTO', 'TYPE']), 'image/png');
    assert.equal(text(['PHOTO', 'BINVAL']), PNG_B64);
    assert.equal(text(['TEL', 'NUMBER']), '+1-303-308-3282');
    assert.ok(back.getChild('TEL')!.getChild('WORK'));
    assert.equal(text(['EMAIL', 'USERID']), 'stpeter@jabber.org');
    assert.equal(text(['JABBERID']), 'stpeter@jabber.org');
    assert.equal(text(['GEO', 'LAT']), '39.59');
    assert.equal(text(['ADR', 'PCODE']), '80202');
    assert.equal(text(['ORG', 'ORGUNIT']), 'Council');
    assert.equal(text(['DESC']), 'More information about me is located on my personal website.');
    assert.equal(text(['MAILER']), 'Thunderbird', 'unmapped vcard-temp fields survive');
  });

  it('keeps the vcard-temp PHOTO when the vCard4 has none, and vCard4-only properties across a vcard-temp update', () => {
    const v4 = xml(`<vcard xmlns='${NS_VCARD4}'><fn><text>Juliet</text></fn><gender><sex><text>F</text></sex></gender><kind><text>individual</text></kind></vcard>`);
    const temp = vcardTempFromVcard4(v4, TEMP);
    assert.equal(temp.getChild('FN')!.text(), 'Juliet');
    assert.equal(temp.getChild('PHOTO')!.getChildText('BINVAL'), PNG_B64, 'the avatar stays');
    assert.equal(temp.getChild('TITLE'), undefined, 'mapped fields follow the vCard4');
    const v4again = vcard4FromVcardTemp(xml(`<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard>`), v4);
    assert.equal(v4again.getChild('fn')!.getChildText('text'), 'Juliet Capulet');
    assert.ok(v4again.getChild('gender'));
    assert.ok(v4again.getChild('kind'));
  });

  it('publishes vCard4 and the nickname (XEP-0172) as ordinary PEP nodes', async () => {
    const h = harness({ jid: 'juliet@capulet.lit', kind: 'pep' });
    h.roster.set('juliet@capulet.lit romeo@montague.lit', { subscription: 'both', groups: [] });
    h.interest.set('http://jabber.org/protocol/nick', ['romeo@montague.lit/orchard']);
    ok(await h.request('juliet@capulet.lit/balcony', 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='http://jabber.org/protocol/nick'><item><nick xmlns='http://jabber.org/protocol/nick'>Jules</nick></item></publish></pubsub>`));
    const [m] = h.take();
    assert.equal(m!.getChild('event', NS.event)!.getChild('items')!.getChild('item')!.getChildText('nick'), 'Jules');
    const v4 = vcard4FromVcardTemp(TEMP);
    const item = xml(`<item/>`);
    item.cnode(v4);
    const res = await h.service.publish('juliet@capulet.lit/balcony', 'urn:xmpp:vcard4', item);
    const got = await h.service.items('romeo@montague.lit/orchard', 'urn:xmpp:vcard4', { ids: [res.itemId!] });
    assert.equal(got.items[0]!.payload!.getChild('fn')!.getChildText('text'), 'Peter Saint-Andre');
  });
});
