// XML-RPC over XMPP (XEP-0009): every type, methodCall and methodResponse both ways, faults,
// limits, malformed input, and the JavaScript mapping.
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import {
  DEFAULT_LIMITS, FAULT, NS_RPC, faultResponse, formatDateTime, formatDouble, fromJs, methodCall, methodResponse,
  parseDateTime, parseMethodCall, parseMethodResponse, parseRpcRequest, rpcQuery, toJs, type RpcValue,
} from '../../core/util/xmlrpc.ts';
import { at } from '../helpers/assert.ts';

const parseEl = (xml: string) => parse(xml) as unknown as Element;
const call = (body: string) => parseEl(`<query xmlns='${NS_RPC}'><methodCall><methodName>m</methodName><params>${body}</params></methodCall></query>`).getChild('methodCall')!;
const param = (value: string) => call(`<param><value>${value}</value></param>`);

function one(value: string): RpcValue {
  const r = parseMethodCall(param(value));
  if (!r.ok) assert.fail(`${value}: ${r.fault.string}`);
  return at(r.value.params, 0);
}

function fault(el: Element, limits = {}): number {
  const r = parseMethodCall(el, limits);
  if (r.ok) assert.fail(`expected a fault for ${el.toString()}`);
  return r.fault.code;
}

describe('XML-RPC (XEP-0009)', () => {
  it('reads the request of XEP-0009 §3 inside its jabber:iq:rpc query', () => {
    const q = parseEl(`<query xmlns='jabber:iq:rpc'>
      <methodCall>
        <methodName>examples.getStateName</methodName>
        <params>
          <param>
            <value><i4>6</i4></value>
          </param>
        </params>
      </methodCall>
    </query>`);
    const r = parseRpcRequest(q);
    assert.ok(r.ok);
    assert.equal(r.call.methodName, 'examples.getStateName');
    assert.deepEqual(r.call.params, [{ type: 'int', value: 6 }]);
  });

  it('reads every scalar type', () => {
    assert.deepEqual(one('<int>-12</int>'), { type: 'int', value: -12 });
    assert.deepEqual(one('<i4>2147483647</i4>'), { type: 'int', value: 2147483647 });
    assert.deepEqual(one('<boolean>1</boolean>'), { type: 'boolean', value: true });
    assert.deepEqual(one('<boolean>0</boolean>'), { type: 'boolean', value: false });
    assert.deepEqual(one('<string>hello world</string>'), { type: 'string', value: 'hello world' });
    assert.deepEqual(one(' untyped  text '), { type: 'string', value: ' untyped  text ' }, 'a value without a type is a string, whitespace kept');
    assert.deepEqual(one(''), { type: 'string', value: '' });
    assert.deepEqual(one('<string>Grüße &amp; &lt;tags&gt;</string>'), { type: 'string', value: 'Grüße & <tags>' });
    assert.deepEqual(one('<double>-12.214</double>'), { type: 'double', value: -12.214 });
    assert.deepEqual(one('<double>1e-3</double>'), { type: 'double', value: 0.001 }, 'exponents as Python sends them');
    const dt = one('<dateTime.iso8601>19980717T14:08:55</dateTime.iso8601>');
    assert.equal(dt.type, 'dateTime');
    assert.equal(dt.type === 'dateTime' && dt.value.toISOString(), '1998-07-17T14:08:55.000Z', 'no zone: read as UTC');
    const b = one('<base64>eW91IGNhbid0IHJlYWQg\n dGhpcyE=</base64>');
    assert.equal(b.type === 'base64' && Buffer.from(b.value).toString(), "you can't read this!", 'line breaks in base64 are allowed');
    assert.deepEqual(one('<Base64>AA==</Base64>'), { type: 'base64', value: new Uint8Array([0]) }, "XEP-0009's schema spells Base64");
    assert.deepEqual(one('<nil/>'), { type: 'nil' });
    assert.deepEqual(one("<ex:nil xmlns:ex='http://ws.apache.org/xmlrpc/namespaces/extensions'/>"), { type: 'nil' });
  });

  it('reads arrays and structs, nested', () => {
    const v = one(`<struct>
      <member><name>lowerBound</name><value><i4>18</i4></value></member>
      <member><name>list</name><value><array><data><value><i4>12</i4></value><value><string>Egypt</string></value><value><boolean>0</boolean></value></data></array></value></member>
      <member><name>empty</name><value><array><data/></array></value></member>
    </struct>`);
    assert.deepEqual(toJs(v), Object.assign(Object.create(null), { lowerBound: 18, list: [12, 'Egypt', false], empty: [] }));
    assert.equal(v.type === 'struct' && v.value.get('lowerBound')?.type, 'int');
  });

  it('parses dateTime.iso8601 forms and refuses impossible dates', () => {
    assert.equal(parseDateTime('2026-02-28T23:59:59Z')?.toISOString(), '2026-02-28T23:59:59.000Z');
    assert.equal(parseDateTime('20260228T23:59:59+01:00')?.toISOString(), '2026-02-28T22:59:59.000Z');
    assert.equal(parseDateTime('2026-02-28T10:00:00.250-0230')?.toISOString(), '2026-02-28T12:30:00.250Z');
    assert.equal(parseDateTime('20260230T00:00:00'), undefined);
    assert.equal(parseDateTime('20261301T00:00:00'), undefined);
    assert.equal(parseDateTime('20260101T24:00:00'), undefined);
    assert.equal(parseDateTime('yesterday'), undefined);
  });

  it('answers malformed calls with -32600 faults naming the problem', () => {
    const bad: [string, RegExp][] = [
      ['<int>12.5</int>', /not a four-byte integer/], ['<int>2147483648</int>', /not a four-byte integer/], ['<i4></i4>', /not a four-byte integer/],
      ['<boolean>true</boolean>', /not a boolean/], ['<double>NaN</double>', /not a double/], ['<double>1,5</double>', /not a double/],
      ['<dateTime.iso8601>soon</dateTime.iso8601>', /not a dateTime/], ['<base64>not base64!</base64>', /base64/], ['<base64>abc</base64>', /base64/],
      ['<float>1</float>', /Unknown type <float>/], ['<int>1</int><int>2</int>', /more than one value/], ['text<int>1</int>', /Unexpected text/],
      ['<string><b>bold</b></string>', /text only/], ['<array><value/></array>', /exactly one <data>/], ['<array><data/><data/></array>', /exactly one <data>/],
      ['<struct><member><name>a</name></member></struct>', /one <name> and one <value>/],
      ['<struct><member><name>a</name><value/></member><member><name>a</name><value/></member></struct>', /appears twice/],
      ['<struct><value/></struct>', /Unexpected <value>/], ['<nil>x</nil>', /must be empty/],
    ];
    for (const [v, why] of bad) {
      const r = parseMethodCall(param(v));
      assert.ok(!r.ok, v);
      assert.equal(r.fault.code, FAULT.invalidRequest, v);
      assert.match(r.fault.string, why, v);
    }
    assert.equal(fault(call('<value><int>1</int></value>')), FAULT.invalidRequest, 'a value outside <param>');
    assert.equal(fault(call('<param/>')), FAULT.invalidRequest, 'a param without value');
    assert.equal(fault(parseEl(`<methodCall xmlns='${NS_RPC}'><params/></methodCall>`)), FAULT.invalidRequest, 'no methodName');
    assert.equal(fault(parseEl(`<methodCall xmlns='${NS_RPC}'><methodName>rm -rf</methodName></methodCall>`)), FAULT.invalidRequest, 'method name characters');
    assert.equal(fault(parseEl(`<methodCall xmlns='${NS_RPC}'><methodName>a</methodName><methodName>b</methodName></methodCall>`)), FAULT.invalidRequest);
    assert.equal(fault(param('<nil/>'), { allowNil: false }), FAULT.invalidRequest, 'nil is an extension that can be turned off');
    const noParams = parseMethodCall(parseEl(`<methodCall xmlns='${NS_RPC}'><methodName>system.listMethods</methodName></methodCall>`));
    assert.deepEqual(noParams, { ok: true, value: { methodName: 'system.listMethods', params: [] } });
  });

  it('limits nesting, the number of values and of parameters', () => {
    let nested = '<int>1</int>';
    for (let i = 0; i < DEFAULT_LIMITS.maxDepth; i++) nested = `<array><data><value>${nested}</value></data></array>`;
    assert.equal(one(nested).type, 'array', 'maxDepth levels are fine');
    assert.equal(fault(param(`<array><data><value>${nested}</value></data></array>`)), FAULT.invalidRequest, 'one more is not');
    const many = `<array><data>${'<value><int>1</int></value>'.repeat(20)}</data></array>`;
    assert.equal(fault(param(many), { maxValues: 10 }), FAULT.invalidRequest);
    assert.equal(fault(call('<param><value/></param>'.repeat(5)), { maxParams: 4 }), FAULT.invalidRequest);
    assert.throws(() => fromJs([[[1]]], { maxDepth: 2 }), RangeError);
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    assert.throws(() => fromJs(cyclic), RangeError, 'a cycle ends at the depth limit');
  });

  it('tells transport errors (bad-request) from faults', () => {
    assert.deepEqual(parseRpcRequest(parseEl(`<query xmlns='${NS_RPC}'/>`)), { ok: false, badRequest: 'A request holds exactly one <methodCall>' });
    assert.ok('badRequest' in parseRpcRequest(parseEl(`<query xmlns='${NS_RPC}'><methodResponse/></query>`)));
    assert.ok('badRequest' in parseRpcRequest(parseEl(`<query xmlns='urn:other'><methodCall/></query>`)));
    const f = parseRpcRequest(parseEl(`<query xmlns='${NS_RPC}'><methodCall><methodName>x</methodName><params><param><value><int>x</int></value></param></params></methodCall></query>`));
    assert.ok(!f.ok && 'fault' in f && f.fault.code === FAULT.invalidRequest);
  });

  it('builds a response in the form slixmpp reads back: typed values, compact dateTime, one param', () => {
    const when = new Date(Date.UTC(2002, 10, 25, 2, 20, 4));
    const resp = methodResponse(fromJs({ name: 'Colorado', n: 3, ratio: 0.5, ok: true, when, raw: new Uint8Array([104, 105]), none: null, list: ['a', 1] }));
    const s = rpcQuery(resp).toString();
    assert.match(s, /^<query xmlns="jabber:iq:rpc"><methodResponse><params><param><value><struct>/);
    assert.match(s, /<member><name>name<\/name><value><string>Colorado<\/string><\/value><\/member>/);
    assert.match(s, /<value><int>3<\/int><\/value>/);
    assert.match(s, /<value><double>0.5<\/double><\/value>/);
    assert.match(s, /<value><boolean>1<\/boolean><\/value>/);
    assert.match(s, /<value><dateTime.iso8601>20021125T02:20:04<\/dateTime.iso8601><\/value>/);
    assert.match(s, /<value><base64>aGk=<\/base64><\/value>/);
    assert.match(s, /<value><nil\/><\/value>/);
    assert.match(s, /<array><data><value><string>a<\/string><\/value><value><int>1<\/int><\/value><\/data><\/array>/);
    const back = parseMethodResponse(parseEl(s).getChild('methodResponse')!);
    assert.ok(back.ok && back.value.kind === 'result');
    const js = toJs(back.value.value) as Record<string, unknown>;
    assert.equal(js.name, 'Colorado');
    assert.equal((js.when as Date).getTime(), when.getTime());
    assert.deepEqual(js.raw, new Uint8Array([104, 105]));
    assert.equal(js.none, null);
  });

  it('builds faults with faultCode and faultString, and reads them back', () => {
    const f = faultResponse({ code: FAULT.methodNotFound, string: 'No method hello.nope' });
    assert.equal(f.toString(), '<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>-32601</int></value></member><member><name>faultString</name><value><string>No method hello.nope</string></value></member></struct></value></fault></methodResponse>');
    assert.deepEqual(parseMethodResponse(f), { ok: true, value: { kind: 'fault', fault: { code: -32601, string: 'No method hello.nope' } } });
    const wrong = parseEl(`<methodResponse xmlns='${NS_RPC}'><fault><value><string>oops</string></value></fault></methodResponse>`);
    assert.equal(parseMethodResponse(wrong).ok, false);
    const two = parseEl(`<methodResponse xmlns='${NS_RPC}'><params><param><value/></param><param><value/></param></params></methodResponse>`);
    assert.equal(parseMethodResponse(two).ok, false, 'a response has exactly one parameter');
  });

  it('round-trips a methodCall', () => {
    const el = parseEl(rpcQuery(methodCall('hello.greet', [{ type: 'string', value: 'x' }, { type: 'int', value: -5 }])).toString()).getChild('methodCall')!;
    assert.deepEqual(parseMethodCall(el), { ok: true, value: { methodName: 'hello.greet', params: [{ type: 'string', value: 'x' }, { type: 'int', value: -5 }] } });
  });

  it('writes doubles without exponent and refuses values XML-RPC cannot carry', () => {
    assert.equal(formatDouble(1e21), '1000000000000000000000.0');
    assert.equal(formatDouble(1.5e-7), '0.00000015');
    assert.equal(formatDouble(-2.5e-7), '-0.00000025');
    assert.equal(formatDouble(42), '42.0');
    assert.equal(formatDouble(3.25), '3.25');
    assert.throws(() => formatDouble(Infinity), RangeError);
    assert.deepEqual(fromJs(2 ** 31), { type: 'double', value: 2 ** 31 }, 'beyond four bytes an integer is a double');
    assert.deepEqual(fromJs(7n), { type: 'int', value: 7 });
    assert.throws(() => fromJs(2n ** 40n), RangeError);
    assert.throws(() => fromJs(NaN), RangeError);
    assert.throws(() => fromJs(() => 1), TypeError);
    assert.throws(() => fromJs(null, { allowNil: false }), TypeError);
    assert.throws(() => methodResponse({ type: 'int', value: 2 ** 40 }), RangeError);
    assert.equal(formatDateTime(new Date(Date.UTC(1998, 6, 17, 14, 8, 55))), '19980717T14:08:55');
    assert.deepEqual(toJs(fromJs(new Map([['k', 'v']]))), Object.assign(Object.create(null), { k: 'v' }));
  });
});
