// PRELOGIN: the spec example and every captured PRELOGIN, decoded field by field and re-encoded
// byte for byte; round trips; malformed option tables.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BABELFISH_PRELOGIN_RESPONSE, TEDIOUS_PRELOGIN } from '../../fixtures/tds/capture-examples.js';
import { CAPTURES, loadCapture } from '../../fixtures/tds/captures.js';
import { SPEC_PRELOGIN_REQUEST } from '../../fixtures/tds/spec-examples.js';
import { ProtocolError } from '../../protocols/errors.js';
import { ENCRYPTION, type Prelogin, decodePrelogin, encodePrelogin } from '../../protocols/tds/prelogin.js';

const payload = (wire: Buffer): Buffer => wire.subarray(8);

describe('PRELOGIN', () => {
  it('decodes the [MS-TDS] 4.1 example and encodes it back byte for byte', () => {
    const p = decodePrelogin(payload(SPEC_PRELOGIN_REQUEST.bytes));
    expect(p.version).toEqual({ major: 8, minor: 0, build: 341, subBuild: 0 });
    expect(p.encryption).toBe(ENCRYPTION.ENCRYPT_OFF);
    expect(p.instance).toBe('MSSQLServer');
    expect(p.threadId).toBe(0x80190000);
    expect(p.mars).toBeUndefined();
    expect(encodePrelogin(p)).toEqual(payload(SPEC_PRELOGIN_REQUEST.bytes));
  });

  it('decodes tedious\'s PRELOGIN: version 19.2.2, ENCRYPT_NOT_SUP, 36-byte TRACEID, FEDAUTHREQUIRED', () => {
    const p = decodePrelogin(payload(TEDIOUS_PRELOGIN.bytes));
    expect(p.version).toEqual({ major: 19, minor: 2, build: 2, subBuild: 0 });
    expect(p.encryption).toBe(ENCRYPTION.ENCRYPT_NOT_SUP);
    expect(p.instance).toBe('');
    expect(p.threadId).toBe(0);
    expect(p.mars).toBe(0);
    expect(p.traceId?.connectionId.toString('hex')).toBe('9bdddd11eea8ab0c5bb748175acff82e');
    expect(p.traceId?.sequence).toBe(0x5d0041f2);
    expect(p.fedAuthRequired).toBe(1);
    expect(encodePrelogin(p)).toEqual(payload(TEDIOUS_PRELOGIN.bytes));
  });

  it('keeps Babelfish\'s zero-length THREADID and TRACEID, so the reply re-encodes exactly', () => {
    const p = decodePrelogin(payload(BABELFISH_PRELOGIN_RESPONSE.bytes));
    expect(p.version).toEqual({ major: 12, minor: 0, build: 2000, subBuild: 0 });
    expect(p.encryption).toBe(ENCRYPTION.ENCRYPT_NOT_SUP);
    expect(p.threadId).toBeNull();
    expect(p.traceId).toBeNull();
    expect(p.fedAuthRequired).toBeUndefined();
    expect(encodePrelogin(p)).toEqual(payload(BABELFISH_PRELOGIN_RESPONSE.bytes));
  });

  it('decodes and re-encodes the first message in each direction of every capture', () => {
    const seen: [string, number | undefined, number | undefined][] = [];
    for (const name of Object.values(CAPTURES)) {
      for (const conn of loadCapture(name)) {
        const c = conn.client[0]!;
        const s = conn.server[0]!;
        const cp = decodePrelogin(c.payload);
        const sp = decodePrelogin(s.payload);
        expect(encodePrelogin(cp)).toEqual(c.payload);
        expect(encodePrelogin(sp)).toEqual(s.payload);
        seen.push([name, cp.encryption, sp.encryption]);
      }
    }
    // The README's table: tedious encrypt:false and jTDS/FreeTDS against the non-TLS build.
    expect(seen).toContainEqual([CAPTURES.tediousPlain, ENCRYPTION.ENCRYPT_NOT_SUP, ENCRYPTION.ENCRYPT_NOT_SUP]);
    expect(seen).toContainEqual([CAPTURES.freetdsTsql, ENCRYPTION.ENCRYPT_OFF, ENCRYPTION.ENCRYPT_NOT_SUP]);
    expect(seen).toContainEqual([CAPTURES.tediousEncryptNotSup, ENCRYPTION.ENCRYPT_ON, ENCRYPTION.ENCRYPT_NOT_SUP]);
    expect(seen).toContainEqual([CAPTURES.tediousTls, ENCRYPTION.ENCRYPT_ON, ENCRYPTION.ENCRYPT_ON]);
    expect(seen).toContainEqual([CAPTURES.freetdsLoginOnlyTls, ENCRYPTION.ENCRYPT_OFF, ENCRYPTION.ENCRYPT_OFF]);
  });

  it('round-trips any option set, including NONCEOPT and unknown options', () => {
    const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((a) => Buffer.from(a));
    const arb = fc.record(
      {
        version: fc.record({
          major: fc.integer({ min: 0, max: 255 }),
          minor: fc.integer({ min: 0, max: 255 }),
          build: fc.integer({ min: 0, max: 0xffff }),
          subBuild: fc.integer({ min: 0, max: 0xffff }),
        }),
        encryption: fc.constantFrom(0, 1, 2, 3, 0x81),
        instance: fc.string({ maxLength: 20 }).filter((s) => !s.includes('\0') && [...s].every((c) => c.charCodeAt(0) < 256)),
        threadId: fc.option(fc.integer({ min: 0, max: 0xffffffff })),
        mars: fc.integer({ min: 0, max: 1 }),
        traceId: fc.option(fc.record({ connectionId: bytes(16), activityId: bytes(16), sequence: fc.integer({ min: 0, max: 0xffffffff }) })),
        fedAuthRequired: fc.integer({ min: 0, max: 1 }),
        nonce: bytes(32),
        unknown: fc.uniqueArray(fc.record({ token: fc.integer({ min: 8, max: 0xfe }), data: fc.uint8Array({ maxLength: 10 }).map((a) => Buffer.from(a)) }), {
          selector: (u) => u.token,
          maxLength: 3,
        }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(arb, (p) => {
        const q: Prelogin = { ...p, ...(p.unknown ? { unknown: [...p.unknown].sort((a, b) => a.token - b.token) } : {}) };
        if (q.unknown?.length === 0) delete (q as { unknown?: unknown }).unknown;
        const encoded = encodePrelogin(q);
        expect(decodePrelogin(encoded)).toEqual(q);
        expect(encodePrelogin(decodePrelogin(encoded))).toEqual(encoded);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses option tables that point outside the data, repeat an option, or lack the terminator', () => {
    const good = payload(TEDIOUS_PRELOGIN.bytes);
    const outside = Buffer.from(good);
    outside.writeUInt16BE(0x0100, 1); // VERSION offset far past the end
    expect(() => decodePrelogin(outside)).toThrow(/outside the data area/);
    const intoHeaders = Buffer.from(good);
    intoHeaders.writeUInt16BE(0x0002, 1); // VERSION data inside the option table
    expect(() => decodePrelogin(intoHeaders)).toThrow(ProtocolError);
    const twice = Buffer.from(good);
    twice[5] = 0x00; // ENCRYPTION header now says VERSION again
    expect(() => decodePrelogin(twice)).toThrow(/appears twice/);
    expect(() => decodePrelogin(good.subarray(0, 20))).toThrow(ProtocolError);
    const badLength = Buffer.from(good);
    badLength.writeUInt16BE(5, 8); // ENCRYPTION length 5
    expect(() => decodePrelogin(badLength)).toThrow(/expected 1/);
  });
});
