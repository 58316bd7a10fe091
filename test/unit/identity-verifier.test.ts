// Token validation against real keys served by a real JWKS server on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { exportSPKI, SignJWT } from 'jose';
import { createTokenVerifier } from '../../src/identity/verifier.js';
import { AUTH_REASONS } from '../../src/identity/reasons.js';
import { AuthError, type TokenVerifier } from '../../src/identity/types.js';
import {
  b64,
  issuer,
  jwksOf,
  makeKey,
  now,
  PG_AUDIENCE,
  sign,
  SQL_AUDIENCE,
  startJwksServer,
  TENANT,
  v1Claims,
  v2Claims,
  V1_ISS,
  V2_ISS,
  type JwksServer,
  type TestKey,
} from './identity-support.js';

let v2Key: TestKey;
let v1Key: TestKey;
let v2Server: JwksServer;
let v1Server: JwksServer;
let verifier: TokenVerifier;

beforeAll(async () => {
  [v2Key, v1Key] = await Promise.all([makeKey('v2-key'), makeKey('v1-key')]);
  v2Server = await startJwksServer(jwksOf(v2Key));
  v1Server = await startJwksServer(jwksOf(v1Key));
  verifier = createTokenVerifier({
    issuers: [
      issuer({ name: 'entra-v2', issuer: V2_ISS, jwksUri: v2Server.url, tenant: TENANT }),
      issuer({ name: 'entra-v1', issuer: V1_ISS, jwksUri: v1Server.url, tenant: TENANT }),
    ],
  });
});

afterAll(async () => {
  await Promise.all([v2Server?.close(), v1Server?.close()]);
});

/** Asserts the refusal reason, and that neither the reason nor the detail echoes the token. */
async function refused(token: string, reason: string, v: TokenVerifier = verifier): Promise<AuthError> {
  const err = await v.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  const authErr = err as AuthError;
  expect(authErr.reason).toBe(reason);
  if (token.length > 8) {
    expect(authErr.message).not.toContain(token);
    expect(authErr.detail ?? '').not.toContain(token);
    const signature = token.split('.')[2] ?? '';
    if (signature.length > 8) expect(authErr.detail ?? '').not.toContain(signature);
  }
  return authErr;
}

describe('accepted tokens', () => {
  it('maps an Azure AD v2.0 app-only token to an identity', async () => {
    const claims = v2Claims({ groups: ['g-analysts'] });
    const identity = await verifier.verify(await sign(v2Key, claims));
    expect(identity).toEqual({
      issuerName: 'entra-v2',
      issuer: V2_ISS,
      subject: claims.azp,
      subjectClaim: 'azp',
      appId: claims.azp,
      objectId: claims.oid,
      tenantId: TENANT,
      version: '2.0',
      identityType: 'app',
      roles: ['Reports.Read'],
      groups: ['g-analysts'],
      groupsOverage: false,
      audience: PG_AUDIENCE,
      expiresAt: new Date((claims.exp as number) * 1000),
      issuedAt: new Date((claims.iat as number) * 1000),
      tokenId: claims.uti,
    });
  });

  it('maps an Azure AD v1.0 app-only token to an identity', async () => {
    const claims = v1Claims();
    const identity = await verifier.verify(await sign(v1Key, claims));
    expect(identity).toMatchObject({
      issuerName: 'entra-v1',
      issuer: V1_ISS,
      subject: claims.appid,
      subjectClaim: 'appid',
      appId: claims.appid,
      objectId: claims.oid,
      version: '1.0',
      roles: ['Orders.Write', 'Orders.Read'],
      groups: [],
      groupsOverage: false,
      audience: SQL_AUDIENCE,
    });
    expect(identity).not.toHaveProperty('tokenId');
  });

  it('names the accepted audience when aud is a list, and ignores surrounding whitespace', async () => {
    const token = await sign(v2Key, v2Claims({ aud: ['api://other', SQL_AUDIENCE] }));
    const identity = await verifier.verify(`  ${token}\n`);
    expect(identity.audience).toBe(SQL_AUDIENCE);
  });

  it('allows the clock skew on both sides: exp 30 s ago and nbf 30 s ahead pass with 60 s skew', async () => {
    const t = now();
    await expect(verifier.verify(await sign(v2Key, v2Claims({ iat: t - 3600, nbf: t - 3600, exp: t - 30 })))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(v2Key, v2Claims({ iat: t, nbf: t + 30, exp: t + 3600 })))).resolves.toBeDefined();
  });

  it('accepts a token without kid when exactly one key of the set fits', async () => {
    const identity = await verifier.verify(await sign(v2Key, v2Claims(), { kid: undefined }));
    expect(identity.issuerName).toBe('entra-v2');
  });

  it('falls back through the subject claims in order', async () => {
    const token = await sign(v2Key, v2Claims({ azp: undefined, appid: undefined }));
    const identity = await verifier.verify(token);
    expect(identity.subjectClaim).toBe('oid');
    expect(identity.subject).toBe(v2Claims().oid);
  });
});

describe('groups overage', () => {
  it('flags _claim_names/_claim_sources and keeps groups empty', async () => {
    const token = await sign(
      v2Key,
      v2Claims({
        _claim_names: { groups: 'src1' },
        _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/x/getMemberObjects' } },
      }),
    );
    const identity = await verifier.verify(token);
    expect(identity.groupsOverage).toBe(true);
    expect(identity.groups).toEqual([]);
  });

  it('flags hasgroups, and a bare _claim_sources pointer', async () => {
    expect((await verifier.verify(await sign(v2Key, v2Claims({ hasgroups: true })))).groupsOverage).toBe(true);
    expect((await verifier.verify(await sign(v2Key, v2Claims({ _claim_sources: {} })))).groupsOverage).toBe(true);
  });

  it('does not flag a token whose groups are all there', async () => {
    const identity = await verifier.verify(await sign(v2Key, v2Claims({ groups: ['a', 'b'] })));
    expect(identity).toMatchObject({ groups: ['a', 'b'], groupsOverage: false });
  });
});

describe('refused tokens', () => {
  it('refuses an expired token (beyond the skew)', async () => {
    const t = now();
    const err = await refused(await sign(v2Key, v2Claims({ iat: t - 7200, nbf: t - 7200, exp: t - 120 })), AUTH_REASONS.expired);
    expect(err.detail).toContain('entra-v2');
  });

  it('refuses a token whose nbf is ahead beyond the skew', async () => {
    const t = now();
    await refused(await sign(v2Key, v2Claims({ nbf: t + 120, exp: t + 3600 })), AUTH_REASONS.notYetValid);
  });

  it('refuses an exp (or ignores an iat) beyond any date a session could end at', async () => {
    for (const exp of [1e300, 8.64e12 + 1]) {
      const err = await refused(await sign(v2Key, v2Claims({ exp })), AUTH_REASONS.malformed);
      expect(err.detail).toContain('exp');
    }
    const id = await verifier.verify(await sign(v2Key, v2Claims({ iat: 1e300 })));
    expect(id.issuedAt).toBeUndefined();
    expect(id.expiresAt?.getTime()).toBeGreaterThan(Date.now());
  });

  it('refuses a token without exp', async () => {
    await refused(await sign(v2Key, v2Claims({ exp: undefined })), AUTH_REASONS.noExpiry);
  });

  it('refuses a token signed by other key material under the same kid', async () => {
    const impostor = await makeKey('v2-key');
    const err = await refused(await sign(impostor, v2Claims()), AUTH_REASONS.signature);
    expect(err.detail).toContain('v2-key');
  });

  it('refuses a token whose body was altered after signing', async () => {
    const [h, , s] = (await sign(v2Key, v2Claims())).split('.');
    await refused(`${h}.${b64(v2Claims({ roles: ['Admin'] }))}.${s}`, AUTH_REASONS.signature);
  });

  it('refuses a token for another audience, and one without aud', async () => {
    const err = await refused(await sign(v2Key, v2Claims({ aud: 'api://someone-else' })), AUTH_REASONS.audience);
    expect(err.detail).toContain('api://someone-else');
    await refused(await sign(v2Key, v2Claims({ aud: undefined })), AUTH_REASONS.audience);
  });

  it('refuses an untrusted issuer, and a token without iss', async () => {
    const err = await refused(await sign(v2Key, v2Claims({ iss: 'https://evil.example/' })), AUTH_REASONS.issuer);
    expect(err.detail).toContain('https://evil.example/');
    await refused(await sign(v2Key, v2Claims({ iss: undefined })), AUTH_REASONS.issuer);
  });

  it("verifies with the issuer's own keys only", async () => {
    // Signed by the v2 tenant's key but claiming the v1 issuer: v1's key set has no such kid.
    await refused(await sign(v2Key, v1Claims()), AUTH_REASONS.unknownKey);
  });

  it('refuses a hand-made alg:none token', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(v2Claims())}.`;
    await refused(token, AUTH_REASONS.algorithm);
    await refused(`${b64({ alg: 'None', typ: 'JWT' })}.${b64(v2Claims())}.`, AUTH_REASONS.algorithm);
  });

  it('refuses an HS256 token whose secret is the public key (key confusion)', async () => {
    const secret = new TextEncoder().encode(await exportSPKI(v2Key.publicKey));
    const token = await new SignJWT(v2Claims()).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'v2-key' }).sign(secret);
    await refused(token, AUTH_REASONS.algorithm);
  });

  it('refuses an algorithm the issuer does not allow', async () => {
    const ps = await makeKey('v2-key', 'PS256');
    const err = await refused(await sign(ps, v2Claims(), { alg: 'PS256' }), AUTH_REASONS.algorithm);
    expect(err.detail).toContain('RS256');
  });

  it('refuses another tenant, and a token without tid', async () => {
    const err = await refused(await sign(v2Key, v2Claims({ tid: 'f00df00d-0000-4000-8000-000000000000' })), AUTH_REASONS.tenant);
    expect(err.detail).toContain('f00df00d');
    await refused(await sign(v2Key, v2Claims({ tid: undefined })), AUTH_REASONS.tenant);
  });

  it('refuses a token with none of the subject claims', async () => {
    const claims = v2Claims({ azp: undefined, oid: undefined, sub: undefined });
    await refused(await sign(v2Key, claims), AUTH_REASONS.noSubject);
    await refused(await sign(v2Key, { ...claims, azp: '' }), AUTH_REASONS.noSubject);
  });

  it('refuses roles or groups that are not lists of strings', async () => {
    await refused(await sign(v2Key, v2Claims({ roles: 'Admin' })), AUTH_REASONS.malformed);
    await refused(await sign(v2Key, v2Claims({ groups: [1, 2] })), AUTH_REASONS.malformed);
  });

  it('refuses passwords and other non-JWT input without echoing them', async () => {
    for (const input of ['hunter2-correct-horse', '', '   ', 'a.b', 'a.b.c.d.e', 'e30.e30', `${'x'.repeat(70_000)}.a.b`, 'ab$.cd.ef']) {
      const err = await refused(input, AUTH_REASONS.malformed);
      expect(err.detail ?? '').not.toContain('hunter2');
    }
  });

  it('refuses a header that is not JSON, and a header without alg', async () => {
    await refused('Zm9vYmFy.Zm9vYmFy.Zm9vYmFy', AUTH_REASONS.malformed);
    await refused(`e30.${b64(v2Claims())}.c2ln`, AUTH_REASONS.algorithm);
  });

  it('refuses every fuzzed input with an AuthError, never another error', async () => {
    const reasons = new Set<string>(Object.values(AUTH_REASONS));
    const segment = fc.oneof(
      fc.string().map((s) => Buffer.from(s).toString('base64url')),
      fc.dictionary(fc.constantFrom('alg', 'kid', 'iss', 'aud', 'exp', 'typ', 'crit'), fc.jsonValue()).map(b64),
      fc.constantFrom(b64({ alg: 'RS256', kid: 'v2-key' }), b64(v2Claims()), ''),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.tuple(segment, segment, segment).map((p) => p.join('.'))), async (input) => {
        const err = await verifier.verify(input).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(AuthError);
        expect(reasons.has((err as AuthError).reason)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
