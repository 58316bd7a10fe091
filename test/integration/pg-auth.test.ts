// Login refusals through warden, as a client sees them: every token problem is FATAL 28000 with
// a short fixed reason and nothing about the token or key material; unknown target 3D000; a
// principal outside its targets 28000; plaintext tokens refused unless the loopback exception is
// on; upstream trouble 08006 naming the target and never the upstream credential; and a token
// that expires mid-session ends it at the next idle point (or not, under a 'continue' rule).
import { createServer } from 'node:http';
import { KeyObject, sign as signBytes } from 'node:crypto';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactEncrypt, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIssuer } from '../../src/identity/dev-issuer.js';
import { encodePasswordMessage } from '../../protocols/postgres/password-message.js';
import { encodeSslRequest, encodeStartupMessage } from '../../protocols/postgres/startup-message.js';
import { TEST_ROLES } from '../helpers/pg-env.js';
import { errorIn, RawReader, readByte, startTls, tcpConnect } from '../helpers/pg-raw.js';
import { AGENT_ROLE, pgTarget, startTestWarden, type TestWarden } from '../helpers/warden.js';

const KEEPER_ROLE = 'Warden.Keeper';
let w: TestWarden;
let closedPort: number;
let dir: string;

async function freeClosedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

beforeAll(async () => {
  closedPort = await freeClosedPort();
  dir = mkdtempSync(join(tmpdir(), 'warden-auth-'));
  w = await startTestWarden({
    targets: [
      pgTarget('shop', TEST_ROLES.scram),
      pgTarget('shop_md5', TEST_ROLES.md5),
      pgTarget('closed', TEST_ROLES.scram, { port: closedPort, connectTimeout: 3000 }),
      pgTarget('badpw', { ...TEST_ROLES.scram, password: 'not-the-password' }),
      pgTarget('nodb', TEST_ROLES.scram, { database: 'no_such_database' }),
    ],
    principals: [
      { name: 'keeper', match: { issuer: 'dev', roles: [KEEPER_ROLE] }, targets: ['*'], onTokenExpiry: 'continue' },
      { name: 'shop-agent', match: { issuer: 'dev', roles: [AGENT_ROLE] }, targets: ['shop', 'closed', 'badpw', 'nodb'], onTokenExpiry: 'end' },
    ],
  });
});
afterAll(async () => {
  await w?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Refusal {
  code: string;
  severity: string;
  message: string;
  hint?: string | undefined;
}

/** Connects with node-postgres and returns the error the login ends with. */
async function refusal(password: string, database = 'shop', ssl: pg.ClientConfig['ssl'] = { ca: w.ca }, port = w.port): Promise<Refusal> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent', password, database, ssl });
  c.on('error', () => undefined);
  try {
    await c.connect();
  } catch (e) {
    const err = e as pg.DatabaseError;
    return { code: err.code as string, severity: err.severity as string, message: err.message, hint: err.hint };
  } finally {
    await c.end().catch(() => undefined);
  }
  throw new Error('the login was accepted');
}

/** What must never appear in a refusal: the token, its signature, key material. */
function leaksNothing(r: Refusal, token: string): void {
  const text = `${r.message} ${r.hint ?? ''}`;
  expect(text).not.toContain(token.slice(0, 24));
  const signature = token.split('.')[2] ?? '';
  if (signature) expect(text).not.toContain(signature.slice(0, 16));
  expect(text).not.toMatch(/BEGIN|PRIVATE|kid|modulus|jwks|http:\/\//i);
  expect(r.message.length).toBeLessThan(80);
}

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('token refusals: FATAL 28000 with a short reason', () => {
  it('a garbage password', async () => {
    const r = await refusal('not-a-token-at-all');
    expect(r).toMatchObject({ code: '28000', severity: 'FATAL', message: 'token rejected: malformed token' });
    leaksNothing(r, 'not-a-token-at-all');
  });

  it('a missing (empty) password', async () => {
    let socket: net.Socket = await tcpConnect(w.host, w.port);
    socket.write(encodeSslRequest());
    expect(await readByte(socket)).toBe(0x53);
    socket = await startTls(socket, w.ca);
    const reader = new RawReader(socket);
    socket.write(encodeStartupMessage([['user', 'agent'], ['database', 'shop']]));
    await reader.next(); // AuthenticationCleartextPassword
    socket.write(encodePasswordMessage(''));
    const msgs = await reader.untilClosed();
    expect(errorIn(msgs)).toMatchObject({ severity: 'FATAL', code: '28000', message: 'access token required as the password' });
    expect(reader.closed).toBe(true);
  });

  it('an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await w.token({ extraClaims: { iat: now - 7200, nbf: now - 7200, exp: now - 3600 } });
    const r = await refusal(token);
    expect(r).toMatchObject({ code: '28000', message: 'token rejected: token expired' });
    leaksNothing(r, token);
  });

  it('a token that expired seconds ago, within the clock skew, under an end rule', async () => {
    // The verifier's clock_skew (60 s) lets it through; the 'end' rule would end the session at
    // once, so the login is refused as an expired token rather than with the mid-session message.
    const now = Math.floor(Date.now() / 1000);
    const token = await w.token({ extraClaims: { iat: now - 600, nbf: now - 600, exp: now - 5 } });
    const r = await refusal(token);
    expect(r).toMatchObject({ code: '28000', severity: 'FATAL', message: 'token rejected: token expired' });
  });

  it('a signed token whose exp is beyond any date (1e300) is refused at login, not ended at once as expired', async () => {
    // jose accepts any number as exp; new Date(1e303) is Invalid Date, which made the session
    // timer fire at once ('access token expired' right after login) and broke transcript dates.
    for (const exp of [1e300, 8.64e12 + 1]) {
      const token = await w.token({ extraClaims: { exp } });
      const r = await refusal(token);
      expect(r).toMatchObject({ code: '28000', severity: 'FATAL', message: 'token rejected: malformed token' });
      leaksNothing(r, token);
    }
  });

  it('a token longer than 64 KiB is a malformed token (28000), not a protocol violation', async () => {
    for (const size of [70_000, 1 << 20]) {
      const r = await refusal('a'.repeat(size));
      expect(r).toMatchObject({ code: '28000', severity: 'FATAL', message: 'token rejected: malformed token' });
    }
    // The largest token the verifier takes (64 KiB) fits in the password message.
    const r = await refusal('a'.repeat(64 * 1024));
    expect(r).toMatchObject({ code: '28000', message: 'token rejected: malformed token' });
  });

  it('a token for another audience', async () => {
    const token = await w.token({ audience: 'api://some-other-service' });
    const r = await refusal(token);
    expect(r).toMatchObject({ code: '28000', message: 'token rejected: token audience is not accepted' });
    leaksNothing(r, token);
  });

  it('alg none (unsigned)', async () => {
    const real = await w.token();
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(decodeJwt(real))}.`;
    const r = await refusal(token);
    expect(r).toMatchObject({ code: '28000', message: 'token rejected: token algorithm is not allowed' });
    leaksNothing(r, token);
  });

  it('signed by another key, under the real key id', async () => {
    const real = await w.token();
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT(decodeJwt(real)).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: decodeProtectedHeader(real).kid as string }).sign(privateKey);
    const r = await refusal(token);
    expect(r).toMatchObject({ code: '28000', message: 'token rejected: token signature is invalid' });
    leaksNothing(r, token);
  });

  it('signed by another issuer key pair with its own key id', async () => {
    const dev = w.warden.devIssuer as DevIssuer;
    const other = await DevIssuer.load({ enabled: true, issuer: dev.issuer, audience: dev.audience, tenant: dev.tenant, keyFile: join(dir, 'other-key.pem') });
    const token = await other.mint({ subject: 'test-agent-app', roles: [AGENT_ROLE] });
    const r = await refusal(token);
    expect(r).toMatchObject({ code: '28000', message: 'token rejected: token signing key is unknown' });
    leaksNothing(r, token);
  });

  it('keys named in the header (jwk, jku, x5u) are never fetched or trusted; unknown crit, JWE and odd kids are refused', async () => {
    let fetched = 0;
    const lure = createServer((_req, res) => {
      fetched += 1;
      res.end('{"keys":[]}');
    });
    await new Promise<void>((r) => lure.listen(0, '127.0.0.1', r));
    const lureUrl = `http://127.0.0.1:${(lure.address() as net.AddressInfo).port}/keys`;
    try {
      const real = await w.token();
      const claims = decodeJwt(real);
      const kid = decodeProtectedHeader(real).kid as string;
      const attacker = await generateKeyPair('RS256', { extractable: true });
      // Signed by hand: jose will not sign a header with an unknown crit extension.
      const handSigned = (header: Record<string, unknown>): string => {
        const input = `${b64(header)}.${b64(claims)}`;
        return `${input}.${signBytes('sha256', Buffer.from(input), KeyObject.from(attacker.privateKey)).toString('base64url')}`;
      };
      const jwk = await exportJWK(attacker.publicKey);
      for (const header of [{ alg: 'RS256', kid, jwk }, { alg: 'RS256', kid, jku: lureUrl }, { alg: 'RS256', kid, x5u: lureUrl }]) {
        const r = await refusal(handSigned(header));
        expect(r).toMatchObject({ code: '28000', message: 'token rejected: token signature is invalid' });
      }
      expect(fetched).toBe(0);
      expect(await refusal(handSigned({ alg: 'RS256', kid, crit: ['x-warden-test'], 'x-warden-test': 1 }))).toMatchObject({ message: 'token rejected: malformed token' });
      const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader({ alg: 'RSA-OAEP', enc: 'A256GCM' }).encrypt((await generateKeyPair('RSA-OAEP')).publicKey);
      expect(jwe.split('.')).toHaveLength(5);
      expect(await refusal(jwe)).toMatchObject({ message: 'token rejected: malformed token' });
      for (const odd of ['../../../../etc/passwd', 'k'.repeat(20_000)]) {
        const r = await refusal(handSigned({ alg: 'RS256', kid: odd }));
        expect(r).toMatchObject({ code: '28000', message: 'token rejected: token signing key is unknown' });
        expect(r.message).not.toContain(odd.slice(0, 8));
      }
    } finally {
      await new Promise<void>((r) => lure.close(() => r()));
    }
  });

  it('a valid token whose identity no policy rule admits', async () => {
    const token = await w.token({ roles: ['Some.Other.Role'] });
    const r = await refusal(token);
    expect(r).toMatchObject({ code: '28000', message: 'no policy admits this identity' });
  });
});

describe('targets and principals', () => {
  it('an unknown target is 3D000', async () => {
    const r = await refusal(await w.token(), 'no_such_target');
    expect(r).toMatchObject({ code: '3D000', severity: 'FATAL', message: 'target "no_such_target" does not exist' });
  });

  it('a principal outside its targets is 28000', async () => {
    const r = await refusal(await w.token(), 'shop_md5');
    expect(r).toMatchObject({ code: '28000', message: 'principal "shop-agent" may not connect to target "shop_md5"' });
    // … while another principal may.
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token({ roles: [KEEPER_ROLE] }), database: 'shop_md5', ssl: { ca: w.ca } });
    await c.connect();
    expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe(TEST_ROLES.md5.user);
    await c.end();
  });

  it('an unreachable upstream is 08006 naming the target', async () => {
    const r = await refusal(await w.token(), 'closed');
    expect(r).toEqual({ code: '08006', severity: 'FATAL', message: 'could not connect to the target "closed"', hint: undefined });
    expect(r.message).not.toContain(String(closedPort));
  });

  it('a wrong upstream password is 08006, and the agent never learns the upstream user or database', async () => {
    const r = await refusal(await w.token(), 'badpw');
    expect(r).toMatchObject({ code: '08006', severity: 'FATAL', message: 'could not log in to the target "badpw"' });
    expect(JSON.stringify(r)).not.toContain(TEST_ROLES.scram.user);
    expect(JSON.stringify(r)).not.toContain('password');
    const db = await refusal(await w.token(), 'nodb');
    expect(db).toMatchObject({ code: '08006', message: 'could not log in to the target "nodb"' });
    expect(JSON.stringify(db)).not.toContain('no_such_database');
  });

  it('the refusals are counted as auth failures on /metrics', async () => {
    const text = await (await fetch(`${w.warden.adminUrl}/metrics`)).text();
    expect(text).toMatch(/warden_auth_failures_total\{[^}]*reason="token expired"[^}]*\} [1-9]/);
    expect(text).toMatch(/warden_auth_failures_total\{[^}]*reason="malformed token"[^}]*\} [1-9]/);
    expect(text).not.toMatch(/warden_protocol_errors_total\{[^}]*side="client"[^}]*\} [1-9]/);
    expect(text).toMatch(/warden_upstream_failures_total\{[^}]*target="closed"[^}]*\} [1-9]/);
  });
});

describe('plaintext tokens', () => {
  it('are refused without TLS by default (before the password is asked for)', async () => {
    const r = await refusal(await w.token(), 'shop', false);
    expect(r).toMatchObject({ code: '28000', message: 'warden accepts access tokens only over TLS', hint: 'connect with sslmode=require' });
  });

  it('are accepted from loopback when plaintextTokens is "loopback"', async () => {
    const lw = await startTestWarden({ plaintextTokens: 'loopback' });
    try {
      const c = new pg.Client({ host: lw.host, port: lw.port, user: 'agent', password: await lw.token(), database: 'shop', ssl: false });
      await c.connect();
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await c.end();
    } finally {
      await lw.stop();
    }
  });

  it('without TLS configured, SSLRequest is answered N and the token is still refused', async () => {
    const nw = await startTestWarden({ tls: false });
    try {
      const socket = await tcpConnect(nw.host, nw.port);
      socket.write(encodeSslRequest());
      expect(await readByte(socket)).toBe(0x4e);
      const reader = new RawReader(socket);
      socket.resume();
      socket.write(encodeStartupMessage([['user', 'agent'], ['database', 'shop']]));
      const err = errorIn(await reader.untilClosed());
      expect(err).toMatchObject({ code: '28000', message: 'warden accepts access tokens only over TLS', hint: 'warden has no TLS certificate configured' });
    } finally {
      await nw.stop();
    }
  });
});

describe('a token that expires during the session', () => {
  async function connect(token: string): Promise<{ c: pg.Client; errors: pg.DatabaseError[] }> {
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca } });
    const errors: pg.DatabaseError[] = [];
    c.on('error', (e) => errors.push(e as pg.DatabaseError));
    await c.connect();
    return { c, errors };
  }
  const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    return cond();
  };

  it("ends an idle session with FATAL 28000 under an 'end' rule", async () => {
    const { c, errors } = await connect(await w.token({ ttlSeconds: 2 }));
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(await until(() => errors.length > 0, 4000)).toBe(true);
    expect(errors[0]).toMatchObject({ severity: 'FATAL', code: '28000', message: 'access token expired; reconnect with a fresh token' });
    await expect(c.query('SELECT 1')).rejects.toThrow();
    await c.end().catch(() => undefined);
  }, 10_000);

  it('lets a query that is running at expiry finish, then ends the session', async () => {
    const { c, errors } = await connect(await w.token({ ttlSeconds: 2 }));
    const r = await c.query("SELECT pg_sleep(2.5), 'finished' AS status");
    expect(r.rows[0].status).toBe('finished');
    expect(await until(() => errors.length > 0, 2000)).toBe(true);
    expect(errors[0]).toMatchObject({ code: '28000' });
    await c.end().catch(() => undefined);
  }, 10_000);

  it("keeps the session open under a 'continue' rule", async () => {
    const { c, errors } = await connect(await w.token({ ttlSeconds: 2, roles: [KEEPER_ROLE] }));
    await new Promise((r) => setTimeout(r, 3000));
    expect(errors).toEqual([]);
    expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    await c.end();
  }, 10_000);
});
