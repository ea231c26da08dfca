// Error replies (RFC 6120 §8.3.2): the defined condition, its character data (gone, redirect),
// the text, then an application-specific condition; a thrown StanzaError carries the same.
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import { StanzaError } from '../../core/util/errors.ts';
import { errorReply } from '../../core/util/stanza.ts';
import { PubSubError } from '../../core/util/pubsub/errors.ts';

describe('stanza error replies', () => {
  const iq = new Element('iq', { type: 'set', id: 'p1', from: 'a@example.org/r', to: 'pubsub.example.org' });
  iq.c('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }).c('publish', { node: 'n' });

  it('puts the application condition after the defined condition and the text', () => {
    const app = new Element('precondition-not-met', { xmlns: 'http://jabber.org/protocol/pubsub#errors' });
    const r = errorReply(iq, 'cancel', 'conflict', 'Preconditions not met', undefined, { application: app });
    const err = r.getChild('error')!;
    assert.equal(r.attrs.type, 'error');
    assert.equal(r.attrs.to, 'a@example.org/r');
    assert.deepEqual(err.children.map((c) => (c as Element).name), ['conflict', 'text', 'precondition-not-met']);
    assert.equal((err.children[2] as Element).attrs.xmlns, 'http://jabber.org/protocol/pubsub#errors');
  });

  it('gives gone its new address as character data', () => {
    const r = errorReply(iq, 'cancel', 'gone', undefined, undefined, { conditionText: 'xmpp:pubsub.example.org?;node=new' });
    assert.equal(r.getChild('error')!.getChildText('gone', 'urn:ietf:params:xml:ns:xmpp-stanzas'), 'xmpp:pubsub.example.org?;node=new');
  });

  it('lets a thrown PubSubError carry its pubsub#errors condition as a StanzaError', () => {
    const e: StanzaError = new PubSubError('cancel', 'feature-not-implemented', 'unsupported', undefined, { feature: 'purge-nodes' });
    const r = errorReply(iq, e.type, e.condition, e.text, undefined, e.extra);
    const unsupported = r.getChild('error')!.getChild('unsupported', 'http://jabber.org/protocol/pubsub#errors');
    assert.equal(unsupported?.attrs.feature, 'purge-nodes');
  });
});
