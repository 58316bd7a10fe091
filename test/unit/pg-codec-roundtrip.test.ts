// Round trips for every PostgreSQL message the codec encodes: encode → decode gives the value
// back (fast-check over generated values), and the authentication helpers against published
// vectors (RFC 7677's SCRAM-SHA-256 exchange; PostgreSQL's md5 scheme).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backend, ErrorField, Frontend, StartupCode, TransactionStatus } from '../../protocols/postgres/codes.js';
import { ProtocolError } from '../../protocols/errors.js';
import { decodeNotice, encodeErrorResponse, encodeNoticeResponse } from '../../protocols/postgres/error-response.js';
import { formatAt, SYNC, TERMINATE } from '../../protocols/postgres/frontend-messages.js';
import { decodeSaslInitialResponse, decodeSaslResponse, encodeSaslInitialResponse, encodeSaslResponse } from '../../protocols/postgres/password-message.js';
import { md5PasswordResponse, scramClientFinal, scramClientFirst, scramVerifyServerFinal } from '../../protocols/postgres/scram.js';
import {
  decodeStartupPacket,
  encodeCancelRequest,
  encodeGssEncRequest,
  encodeSslRequest,
  encodeStartupMessage,
} from '../../protocols/postgres/startup-message.js';
import { decodeBackend, decodeFrontend, encodeBackend, encodeFrontend, type BackendMessage, type FrontendMessage } from '../helpers/pg-codec.js';
import { RFC7677_SERVER_FINAL, RFC7677_SERVER_FIRST } from '../helpers/pg-fuzz.js';

// Generators ---------------------------------------------------------------------------------------
/** Strings as the wire carries them: UTF-8 without NUL (C strings). */
const cstr = fc.string({ unit: 'grapheme', maxLength: 24 }).map((s) => s.replace(/\0/g, ''));
const bytes = fc.uint8Array({ maxLength: 48 }).map((u) => Buffer.from(u));
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const int16 = fc.integer({ min: -0x8000, max: 0x7fff });
const format = fc.constantFrom(0, 1);
const target = fc.record({ kind: fc.constantFrom('statement' as const, 'portal' as const), name: cstr });

const frontendArb: fc.Arbitrary<FrontendMessage> = fc.oneof(
  cstr.map((sql) => ({ type: 'Query' as const, sql })),
  fc.record({ name: cstr, sql: cstr, paramTypes: fc.array(uint32, { maxLength: 6 }) }).map((value) => ({ type: 'Parse' as const, value })),
  fc
    .record({
      portal: cstr,
      statement: cstr,
      params: fc.array(fc.option(bytes, { nil: null }), { maxLength: 6 }),
      resultFormats: fc.array(format, { maxLength: 6 }),
      formatStyle: fc.constantFrom('none', 'one', 'each'),
      f: format,
    })
    .map(({ formatStyle, f, params, ...rest }) => ({
      type: 'Bind' as const,
      value: {
        ...rest,
        params,
        paramFormats: formatStyle === 'none' ? [] : formatStyle === 'one' ? [f] : params.map((_, i) => (i + f) % 2),
      },
    })),
  target.map((value) => ({ type: 'Describe' as const, value })),
  target.map((value) => ({ type: 'Close' as const, value })),
  fc.record({ portal: cstr, maxRows: int32 }).map((value) => ({ type: 'Execute' as const, value })),
  fc.constantFrom('Sync' as const, 'Flush' as const, 'Terminate' as const, 'CopyDone' as const).map((type) => ({ type })),
  bytes.map((data) => ({ type: 'CopyData' as const, data })),
  cstr.map((reason) => ({ type: 'CopyFail' as const, reason })),
  cstr.map((password) => ({ type: 'PasswordMessage' as const, password })),
);

const fieldArb = fc.record({
  name: cstr,
  tableOid: uint32,
  columnAttr: int16,
  typeOid: uint32,
  typeSize: int16,
  typeModifier: int32,
  format,
});

const errorFieldCode = fc.constantFrom(...Object.values(ErrorField));

const backendArb: fc.Arbitrary<BackendMessage> = fc.oneof(
  fc
    .oneof(
      fc.constant({ type: 'ok' as const }),
      fc.constant({ type: 'cleartext-password' as const }),
      fc.uint8Array({ minLength: 4, maxLength: 4 }).map((s) => ({ type: 'md5-password' as const, salt: Buffer.from(s) })),
      fc.array(cstr.filter((s) => s !== ''), { maxLength: 3 }).map((mechanisms) => ({ type: 'sasl' as const, mechanisms })),
      bytes.map((data) => ({ type: 'sasl-continue' as const, data })),
      bytes.map((data) => ({ type: 'sasl-final' as const, data })),
    )
    .map((value) => ({ type: 'Authentication' as const, value })),
  fc.record({ name: cstr, value: cstr }).map((p) => ({ type: 'ParameterStatus' as const, ...p })),
  fc.record({ processId: int32, secretKey: int32 }).map((value) => ({ type: 'BackendKeyData' as const, value })),
  fc.constantFrom(...Object.values(TransactionStatus)).map((status) => ({ type: 'ReadyForQuery' as const, status })),
  fc
    .record({ newestMinor: fc.nat(5), unrecognized: fc.array(cstr.map((s) => `_pq_.${s}`), { maxLength: 3 }) })
    .map((value) => ({ type: 'NegotiateProtocolVersion' as const, value })),
  fc.array(fieldArb, { maxLength: 5 }).map((fields) => ({ type: 'RowDescription' as const, fields })),
  fc.array(fc.option(bytes, { nil: null }), { maxLength: 8 }).map((values) => ({ type: 'DataRow' as const, values })),
  cstr.map((tag) => ({ type: 'CommandComplete' as const, tag })),
  fc.array(uint32, { maxLength: 6 }).map((types) => ({ type: 'ParameterDescription' as const, types })),
  fc.record({ processId: int32, channel: cstr, payload: cstr }).map((value) => ({ type: 'NotificationResponse' as const, value })),
  fc
    .tuple(fc.constantFrom('CopyInResponse' as const, 'CopyOutResponse' as const, 'CopyBothResponse' as const), format, fc.array(format, { maxLength: 6 }))
    .map(([type, f, columnFormats]) => ({ type, value: { format: f, columnFormats } })),
  bytes.map((data) => ({ type: 'CopyData' as const, data })),
  fc
    .tuple(fc.constantFrom('ErrorResponse' as const, 'NoticeResponse' as const), fc.uniqueArray(fc.tuple(errorFieldCode, cstr), { selector: ([k]) => k, maxLength: 8 }))
    .map(([type, pairs]) => ({ type, fields: new Map(pairs) })),
  fc
    .constantFrom('ParseComplete', 'BindComplete', 'CloseComplete', 'NoData', 'EmptyQueryResponse', 'PortalSuspended', 'CopyDone')
    .map((type) => ({ type }) as BackendMessage),
);

describe('encode → decode gives the value back', () => {
  it('every frontend message', () => {
    fc.assert(
      fc.property(frontendArb, (m) => {
        const wire = encodeFrontend(m);
        expect(wire.readInt32BE(1)).toBe(wire.length - 1);
        expect(decodeFrontend(wire)).toEqual(m);
        expect(encodeFrontend(decodeFrontend(wire)).equals(wire)).toBe(true);
      }),
      { numRuns: 1500, seed: 7677 },
    );
  });

  it('every backend message', () => {
    fc.assert(
      fc.property(backendArb, (m) => {
        const wire = encodeBackend(m);
        expect(wire.readInt32BE(1)).toBe(wire.length - 1);
        expect(decodeBackend(wire)).toEqual(m);
        expect(encodeBackend(decodeBackend(wire)).equals(wire)).toBe(true);
      }),
      { numRuns: 1500, seed: 7677 },
    );
  });

  it('startup packets: StartupMessage (any minor version, any parameters), SSLRequest, GSSENCRequest, CancelRequest', () => {
    const params = fc.uniqueArray(fc.tuple(cstr.filter((s) => s !== ''), cstr), { selector: ([k]) => k, maxLength: 6 });
    fc.assert(
      fc.property(params, fc.nat(3), int32, int32, (p, minor, pid, secret) => {
        const startup = encodeStartupMessage(p, StartupCode.protocol30 + minor);
        expect(decodeStartupPacket(startup)).toEqual({ kind: 'startup', version: StartupCode.protocol30 + minor, params: new Map(p) });
        expect(decodeStartupPacket(encodeCancelRequest(pid, secret))).toEqual({ kind: 'cancel', processId: pid, secretKey: secret });
      }),
      { numRuns: 500, seed: 1 },
    );
    expect(encodeSslRequest().toString('hex')).toBe('0000000804d2162f');
    expect(encodeGssEncRequest().toString('hex')).toBe('0000000804d21630');
    expect(decodeStartupPacket(encodeGssEncRequest())).toEqual({ kind: 'gssenc' });
  });

  it('refuses a duplicate startup parameter and an unknown protocol', () => {
    const dup = encodeStartupMessage([['user', 'a'], ['user', 'b']]);
    expect(() => decodeStartupPacket(dup)).toThrow(ProtocolError);
    const v2 = encodeStartupMessage([['user', 'a']], 2 << 16);
    expect(() => decodeStartupPacket(v2)).toThrow(/unsupported frontend protocol 2\.0/);
  });

  it('SASLInitialResponse and SASLResponse', () => {
    fc.assert(
      fc.property(cstr, fc.option(bytes, { nil: null }), bytes, (mech, data, more) => {
        expect(decodeSaslInitialResponse(encodeSaslInitialResponse(mech, data))).toEqual({ mechanism: mech, data });
        expect(decodeSaslResponse(encodeSaslResponse(more))).toEqual(more);
      }),
      { numRuns: 300, seed: 2 },
    );
  });

  it('ErrorResponse and NoticeResponse built from a spec decode to the same spec', () => {
    const e = { severity: 'FATAL' as const, code: '28000', message: 'token rejected: expired', hint: 'get a fresh token' };
    expect(decodeNotice(encodeErrorResponse(e))).toMatchObject(e);
    expect(encodeErrorResponse(e)[0]).toBe(Backend.errorResponse);
    expect(decodeNotice(encodeNoticeResponse({ ...e, severity: 'NOTICE', detail: 'd' }))).toMatchObject({ severity: 'NOTICE', detail: 'd' });
  });

  it('the fixed messages have the bytes the protocol documents', () => {
    expect(SYNC.toString('hex')).toBe('5300000004');
    expect(TERMINATE.toString('hex')).toBe('5800000004');
    expect(SYNC[0]).toBe(Frontend.sync);
  });

  it('formatAt applies the Bind format-code rules (none = text, one = all, else per column)', () => {
    expect([formatAt([], 3), formatAt([1], 3), formatAt([0, 1, 0, 1], 3)]).toEqual([0, 1, 1]);
  });
});

describe('authentication helpers', () => {
  it('SCRAM-SHA-256 reproduces the RFC 7677 §3 example exchange', () => {
    const client = {
      clientFirst: Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'),
      clientNonce: 'rOprNGfwEbeRWgbNEkqO',
      clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
    };
    const final = scramClientFinal(client, Buffer.from(RFC7677_SERVER_FIRST), 'pencil');
    expect(final.clientFinal.toString()).toBe(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    expect(() => scramVerifyServerFinal(final, Buffer.from(RFC7677_SERVER_FINAL))).not.toThrow();
    expect(() => scramVerifyServerFinal(final, Buffer.from('v=AAAATRBVBX6xdkpfqYcBLN3hmXHRc3b8rqimzAnvF0k='))).toThrow(/does not match/);
    expect(() => scramVerifyServerFinal(final, Buffer.from('e=invalid-proof'))).toThrow(/invalid-proof/);
  });

  it('SCRAM refuses a server nonce that does not extend the client nonce, and absurd iteration counts', () => {
    const c = scramClientFirst('abc');
    expect(c.clientFirst.toString()).toBe('n,,n=*,r=abc');
    expect(() => scramClientFinal(c, Buffer.from('r=xyz123,s=AAAA,i=4096'), 'p')).toThrow(/does not extend/);
    expect(() => scramClientFinal(c, Buffer.from('r=abc,s=AAAA,i=4096'), 'p')).toThrow(/does not extend/);
    expect(() => scramClientFinal(c, Buffer.from('r=abcd,s=AAAA,i=99999999'), 'p')).toThrow(/unreasonable/);
  });

  it('md5: "md5" + md5hex(md5hex(password + user) + salt), as PostgreSQL computes it', () => {
    const salt = Buffer.from('01020304', 'hex');
    // Computed independently with Python's hashlib:
    //   i = hashlib.md5(b'md5-secret-1warden_md5').hexdigest(); hashlib.md5(i.encode() + bytes([1,2,3,4])).hexdigest()
    expect(md5PasswordResponse('warden_md5', 'md5-secret-1', salt)).toBe('md5a69899479ec514f3a753c273e4f77884');
    // The integration tests log in to a real md5 role (target shop_md5) with the same function.
  });
});
