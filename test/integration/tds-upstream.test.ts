// warden's upstream TDS login against the stand-in: a SQL login and an access token (FEDAUTH),
// TLS inside PRELOGIN with verify-full, TDS 8.0 strict, and each failure as the UpstreamError
// kind the session turns into a login error (tls, auth, unreachable), never leaking the credential.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlServerStandIn } from '../../fixtures/sqlserver-standin/index.js';
import { connectTdsUpstream, UpstreamError } from '../../src/tds/upstream.js';
import { login7, STANDIN_ACCESS_TOKEN, startStandIn, tdsTarget } from '../helpers/tds.js';
import { selfSignedCertificate } from '../../src/tls/self-signed.js';

let tlsStandIn: SqlServerStandIn;
let requiredStandIn: SqlServerStandIn;
let plainStandIn: SqlServerStandIn;

beforeAll(async () => {
  [tlsStandIn, requiredStandIn, plainStandIn] = await Promise.all([startStandIn(), startStandIn({ encryption: 'required' }), startStandIn({ noTls: true })]);
});

afterAll(async () => {
  await Promise.all([tlsStandIn?.stop(), requiredStandIn?.stop(), plainStandIn?.stop()]);
});

const agent = login7('agent-token-never-forwarded');

describe('upstream TDS login', () => {
  it('logs in with the SQL login over TLS in PRELOGIN, verifying the certificate', async () => {
    const up = await connectTdsUpstream(tdsTarget('shop', tlsStandIn), agent);
    try {
      expect(up.tls?.protocol).toBe('TLSv1.2');
      expect(up.strict).toBe(false);
      expect(up.tokens.some((t) => t.token.kind === 'LOGINACK')).toBe(true);
      expect(up.spid).toBeGreaterThan(0);
    } finally {
      up.socket.destroy();
    }
  });

  it('logs in with TDS 8.0 strict encryption (TLS first, ALPN tds/8.0)', async () => {
    const up = await connectTdsUpstream(tdsTarget('shop', tlsStandIn), agent, { strict: true });
    try {
      expect(up.strict).toBe(true);
      expect(up.tls?.alpn).toBe('tds/8.0');
      expect(up.tokens.some((t) => t.token.kind === 'LOGINACK')).toBe(true);
    } finally {
      up.socket.destroy();
    }
  });

  it('logs in with an access token through FEDAUTH', async () => {
    const up = await connectTdsUpstream(tdsTarget('shop', tlsStandIn, { accessToken: STANDIN_ACCESS_TOKEN }), agent);
    up.socket.destroy();
    const bad = await connectTdsUpstream(tdsTarget('shop', tlsStandIn, { accessToken: 'not-the-token' }), agent).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(UpstreamError);
    expect(bad).toMatchObject({ kind: 'auth', clientMessage: 'could not log in to the target' });
    expect((bad as Error).message).not.toContain('not-the-token');
  });

  it('reports a wrong password as an auth failure, with the server\'s error for the log only', async () => {
    const err = await connectTdsUpstream(tdsTarget('shop', tlsStandIn, { password: 'wrong-password' }), agent).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'auth', clientMessage: 'could not log in to the target' });
    expect((err as UpstreamError).detail).toMatch(/18456/);
    expect((err as UpstreamError).detail).not.toContain('wrong-password');
  });

  it('refuses a certificate that does not verify', async () => {
    const other = await selfSignedCertificate('localhost');
    const err = await connectTdsUpstream(tdsTarget('shop', tlsStandIn, { tls: { mode: 'verify-full', ca: other.cert, serverName: 'localhost' } }), agent).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'tls', clientMessage: 'could not establish TLS with the target' });
  });

  it('follows tls.mode against servers that do not, or must, encrypt', async () => {
    const noTls = await connectTdsUpstream(tdsTarget('shop', plainStandIn, { tls: { mode: 'require' } }), agent).catch((e: unknown) => e);
    expect(noTls).toMatchObject({ kind: 'tls', detail: 'the target does not support encryption' });
    const prefer = await connectTdsUpstream(tdsTarget('shop', plainStandIn, { tls: { mode: 'prefer' } }), agent);
    expect(prefer.tls).toBeUndefined();
    prefer.socket.destroy();
    const disabled = await connectTdsUpstream(tdsTarget('shop', requiredStandIn, { tls: { mode: 'disable' } }), agent).catch((e: unknown) => e);
    expect(disabled).toMatchObject({ kind: 'tls', detail: 'the target requires encryption but tls.mode is disable' });
  });

  it('reports an unreachable target', async () => {
    const err = await connectTdsUpstream({ ...tdsTarget('shop', tlsStandIn), port: 1 }, agent).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'unreachable', clientMessage: 'could not connect to the target' });
  });
});
