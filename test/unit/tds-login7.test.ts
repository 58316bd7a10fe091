// LOGIN7: the spec example and the captured logins of tedious (7.4), FreeTDS (7.4) and jTDS (7.1),
// password de-obfuscation, FeatureExt (UTF8_SUPPORT, FEDAUTH with an access token), exact
// re-encoding, round trips, and LOGIN7s that lie about their offsets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TEDIOUS_LOGIN7 } from '../../fixtures/tds/capture-examples.js';
import { CAPTURES, loadCapture } from '../../fixtures/tds/captures.js';
import { SPEC_LOGIN7 } from '../../fixtures/tds/spec-examples.js';
import { ProtocolError } from '../../protocols/errors.js';
import {
  FEATURE_ID,
  FEDAUTH_LIBRARY,
  FEDAUTH_WORKFLOW,
  decodeFedAuthFeature,
  encodeFedAuthFeature,
} from '../../protocols/tds/feature-ext.js';
import { decodeFedAuthToken, encodeFedAuthToken } from '../../protocols/tds/fedauth-token.js';
import {
  LOGIN7_OPTION_FLAGS_3,
  type Login7,
  decodeLogin7,
  deobfuscatePassword,
  encodeLogin7,
  obfuscatePassword,
} from '../../protocols/tds/login7.js';
import { TDS_VERSION } from '../../protocols/tds/tds-version.js';

const tediousPayload = TEDIOUS_LOGIN7.bytes.subarray(8);

function loginOf(capture: string): Buffer {
  return loadCapture(capture)[0]!.client.find((m) => m.type === 0x10)!.payload;
}

describe('LOGIN7 decoding', () => {
  it('reads tedious\'s TDS 7.4 login: version, packet size, user babelfish_user, password 12345678', () => {
    const l = decodeLogin7(tediousPayload);
    expect(l.tdsVersion).toBe(TDS_VERSION.V7_4);
    expect(l.packetSize).toBe(4096);
    expect(l.clientPid).toBe(10088);
    expect(l.hostName).toBe('vm');
    expect(l.userName).toBe('babelfish_user');
    expect(l.password).toBe('12345678');
    expect(l.appName).toBe('Tedious');
    expect(l.serverName).toBe('127.0.0.1');
    expect(l.clientInterfaceName).toBe('Tedious');
    expect(l.language).toBe('us_english');
    expect(l.database).toBe('shop');
    expect(l.clientId).toEqual(Buffer.from('010203040506', 'hex'));
    expect(l.optionFlags3 & LOGIN7_OPTION_FLAGS_3.EXTENSION).toBeTruthy();
    expect(l.features).toEqual([{ featureId: FEATURE_ID.UTF8_SUPPORT, data: Buffer.of(1) }]);
  });

  it('re-encodes tedious\'s login and the [MS-TDS] 4.2 example byte for byte', () => {
    expect(encodeLogin7(decodeLogin7(tediousPayload))).toEqual(tediousPayload);
    const spec = SPEC_LOGIN7.bytes.subarray(8);
    const l = decodeLogin7(spec);
    expect(l).toMatchObject({
      tdsVersion: TDS_VERSION.V7_2,
      hostName: 'skostov1',
      userName: 'sa',
      password: '',
      appName: 'OSQL-32',
      clientInterfaceName: 'ODBC',
      clientLcid: 0x0409,
      optionFlags1: 0xe0,
      optionFlags2: 0x03,
    });
    expect(l.features).toBeUndefined();
    expect(encodeLogin7(l)).toEqual(spec);
  });

  it('reads FreeTDS\'s 7.4 login and re-encodes it exactly', () => {
    const payload = loginOf(CAPTURES.freetdsTsql);
    const l = decodeLogin7(payload);
    expect(l.tdsVersion).toBe(TDS_VERSION.V7_4);
    expect(l.userName).toBe('babelfish_user');
    expect(l.password).toBe('12345678');
    expect(l.database).toBe('shop');
    expect(l.features?.some((f) => f.featureId === FEATURE_ID.UTF8_SUPPORT)).toBe(true);
    expect(encodeLogin7(l)).toEqual(payload);
  });

  it('reads jTDS\'s TDS 7.1 login (86-byte fixed part, packet size 0) and round-trips it', () => {
    const payload = loginOf(CAPTURES.jtds);
    const l = decodeLogin7(payload);
    expect(l.tdsVersion).toBe(TDS_VERSION.V7_1_REV1);
    expect(l.packetSize).toBe(0);
    expect(l.userName).toBe('babelfish_user');
    expect(l.password).toBe('12345678');
    expect(l.clientInterfaceName).toBe('jTDS');
    expect(l.database).toBe('shop');
    expect(l.changePassword).toBe('');
    expect(l.features).toBeUndefined();
    // jTDS points its empty ibUnused at 0 instead of the data offset: same fields, other layout.
    const again = encodeLogin7(l);
    expect(again.length).toBe(payload.length);
    expect(decodeLogin7(again)).toEqual(l);
  });

  it('de-obfuscates and obfuscates passwords ([MS-TDS] 2.2.6.4: swap nibbles, XOR 0xA5)', () => {
    expect(obfuscatePassword('12345678').toString('hex')).toBe('b6a586a596a5e6a5f6a5c6a5d6a526a5');
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (p) => {
      expect(deobfuscatePassword(obfuscatePassword(p))).toBe(p);
    }));
  });
});

describe('LOGIN7 FeatureExt', () => {
  const token = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2RhdGFiYXNlLndpbmRvd3MubmV0LyJ9.c2ln';

  it('carries a FEDAUTH security token (UTF-16LE, as [MS-TDS] 2.2.6.4 says) and reads it back', () => {
    const fedauth = encodeFedAuthFeature({ library: FEDAUTH_LIBRARY.SECURITY_TOKEN, echo: true, token });
    expect(fedauth[0]).toBe((FEDAUTH_LIBRARY.SECURITY_TOKEN << 1) | 1);
    expect(fedauth.readUInt32LE(1)).toBe(token.length * 2);
    expect(fedauth.subarray(5).toString('utf16le')).toBe(token);
    const base = decodeLogin7(tediousPayload);
    const login: Login7 = { ...base, userName: '', password: '', features: [{ featureId: FEATURE_ID.FEDAUTH, data: fedauth }] };
    const decoded = decodeLogin7(encodeLogin7(login));
    expect(decoded.features).toHaveLength(1);
    const f = decodeFedAuthFeature(decoded.features![0]!.data);
    expect(f).toEqual({ library: FEDAUTH_LIBRARY.SECURITY_TOKEN, echo: true, token });
  });

  it('round-trips a FEDAUTH token with a nonce and the ADAL workflow form', () => {
    const nonce = Buffer.alloc(32, 0x5a);
    const withNonce = { library: FEDAUTH_LIBRARY.SECURITY_TOKEN, echo: false, token, nonce };
    expect(decodeFedAuthFeature(encodeFedAuthFeature(withNonce))).toEqual(withNonce);
    const adal = { library: FEDAUTH_LIBRARY.ADAL, echo: true, workflow: FEDAUTH_WORKFLOW.INTEGRATED };
    expect(decodeFedAuthFeature(encodeFedAuthFeature(adal))).toEqual(adal);
    expect(() => decodeFedAuthFeature(Buffer.concat([encodeFedAuthFeature(withNonce), Buffer.of(1)]))).toThrow(/nonce must be 32 bytes/);
  });

  it('round-trips the FEDAUTH token message (packet type 0x08)', () => {
    const m = { token, nonce: Buffer.alloc(32, 1) };
    const bytes = encodeFedAuthToken(m);
    expect(bytes.readUInt32LE(0)).toBe(bytes.length - 4);
    expect(decodeFedAuthToken(bytes)).toEqual(m);
    expect(decodeFedAuthToken(encodeFedAuthToken({ token }))).toEqual({ token });
    expect(() => decodeFedAuthToken(bytes.subarray(0, bytes.length - 1))).toThrow(ProtocolError);
  });

  it('refuses FeatureExt below TDS 7.4 when encoding', () => {
    const l = decodeLogin7(SPEC_LOGIN7.bytes.subarray(8));
    expect(() => encodeLogin7({ ...l, features: [] })).toThrow(/needs TDS 7.4/);
  });
});

describe('LOGIN7 round trips', () => {
  const name = (max: number) => fc.string({ maxLength: max });
  const arb = fc.record({
    tdsVersion: fc.constantFrom<number>(TDS_VERSION.V7_1_REV1, TDS_VERSION.V7_2, TDS_VERSION.V7_3B, TDS_VERSION.V7_4),
    packetSize: fc.integer({ min: 0, max: 32767 }),
    clientProgVer: fc.integer({ min: 0, max: 0xffffffff }),
    clientPid: fc.integer({ min: 0, max: 0xffffffff }),
    connectionId: fc.integer({ min: 0, max: 0xffffffff }),
    optionFlags1: fc.integer({ min: 0, max: 255 }),
    optionFlags2: fc.integer({ min: 0, max: 255 }),
    typeFlags: fc.integer({ min: 0, max: 255 }),
    optionFlags3: fc.integer({ min: 0, max: 255 }).map((f) => f & ~LOGIN7_OPTION_FLAGS_3.EXTENSION),
    clientTimeZone: fc.integer({ min: -720, max: 840 }),
    clientLcid: fc.integer({ min: 0, max: 0xffffffff }),
    hostName: name(20),
    userName: name(128),
    password: name(128),
    appName: name(20),
    serverName: name(20),
    clientInterfaceName: name(20),
    language: name(20),
    database: name(128),
    clientId: fc.uint8Array({ minLength: 6, maxLength: 6 }).map((a) => Buffer.from(a)),
    sspi: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    attachDbFile: name(260),
    changePassword: name(20),
    features: fc.option(
      fc.array(fc.record({ featureId: fc.integer({ min: 0, max: 0xfe }), data: fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a)) }), {
        maxLength: 4,
      }),
      { nil: undefined },
    ),
  });

  it('decode(encode(login)) gives the login back, and encode(decode(bytes)) the bytes', () => {
    fc.assert(
      fc.property(arb, (raw) => {
        const v72 = raw.tdsVersion !== TDS_VERSION.V7_1_REV1;
        const v74 = raw.tdsVersion === TDS_VERSION.V7_4;
        const { features, ...rest } = raw;
        const login: Login7 = {
          ...rest,
          changePassword: v72 ? raw.changePassword : '',
          optionFlags3: raw.optionFlags3 | (v74 && features ? LOGIN7_OPTION_FLAGS_3.EXTENSION : 0),
          ...(v74 && features ? { features } : {}),
        };
        const bytes = encodeLogin7(login);
        expect(decodeLogin7(bytes)).toEqual(login);
        expect(encodeLogin7(decodeLogin7(bytes)).equals(bytes)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('LOGIN7 that lies', () => {
  const at = { ibUserName: 36 + 4, cchUserName: 36 + 6, ibPassword: 36 + 8, ibExtension: 36 + 20, cbExtension: 36 + 22 };
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(tediousPayload);
    f(b);
    return b;
  };

  it('refuses a Length that does not match the message', () => {
    expect(() => decodeLogin7(mutate((b) => b.writeUInt32LE(b.length + 1, 0)))).toThrow(/does not match/);
    expect(() => decodeLogin7(tediousPayload.subarray(0, 60))).toThrow(ProtocolError);
  });

  it('refuses a string that points past the end, into the fixed part, or is too long', () => {
    expect(() => decodeLogin7(mutate((b) => b.writeUInt16LE(0xe0, at.ibUserName)))).toThrow(/UserName at 224\+28 lies outside/);
    expect(() => decodeLogin7(mutate((b) => b.writeUInt16LE(10, at.ibPassword)))).toThrow(/Password at 10\+16 lies outside/);
    expect(() => decodeLogin7(mutate((b) => b.writeUInt16LE(129, at.cchUserName)))).toThrow(/129 characters; the limit is 128/);
  });

  it('refuses a FeatureExt pointer or list that leaves the message', () => {
    expect(() => decodeLogin7(mutate((b) => b.writeUInt16LE(2, at.cbExtension)))).toThrow(/cbExtension is 2/);
    expect(() => decodeLogin7(mutate((b) => b.writeUInt32LE(0x1000, 0xae)))).toThrow(/FeatureExt offset 4096/);
    expect(() => decodeLogin7(mutate((b) => b.writeUInt32LE(9, 0xdd)))).toThrow(ProtocolError); // feature length past the end
    expect(() => decodeLogin7(mutate((b) => (b[b.length - 1] = 0x0b)))).toThrow(ProtocolError); // no terminator
  });

  it('refuses TDS versions this codec does not speak', () => {
    expect(() => decodeLogin7(mutate((b) => b.writeUInt32LE(0x70000000, 4)))).toThrow(/supported are 7.1 to 7.4/);
  });
});
