// tedious through warden to the SQL Server stand-in, compared with tedious straight to the
// stand-in: encrypt on (TLS in PRELOGIN), TDS 8.0 strict, the token as the password and through
// FEDAUTH, multiple result sets, RPC with output parameters, TransMgr transactions, errors,
// INFO; and the logins warden must refuse (plaintext, bad tokens, unknown database).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'tedious';
import {
  closeTedious,
  connectTedious,
  query,
  STANDIN_LOGIN,
  startTdsHarness,
  tediousConfig,
  TYPES,
  type Encrypt,
  type TdsHarness,
} from '../helpers/tds.js';

let h: TdsHarness;
let token: string;

beforeAll(async () => {
  h = await startTdsHarness();
  token = await h.tw.token();
});

afterAll(async () => {
  await h?.stop();
});

async function viaWarden(encrypt: Encrypt, auth: 'password' | 'fedauth' = 'password', database = 'shop'): Promise<Connection> {
  return connectTedious(tediousConfig({ port: h.port, encrypt, database, ca: h.tw.ca, auth: auth === 'fedauth' ? { fedauthToken: token } : { password: token } }));
}

async function direct(encrypt: Encrypt = true): Promise<Connection> {
  return connectTedious(tediousConfig({ port: h.standin.port, encrypt, ca: h.standin.certificate ?? '', auth: { user: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password } }));
}

/** The same work on a connection through warden and one straight to the stand-in, for comparison. */
async function both<T>(encrypt: Encrypt, work: (c: Connection) => Promise<T>, auth: 'password' | 'fedauth' = 'password'): Promise<[T, T]> {
  const w = await viaWarden(encrypt, auth);
  const d = await direct(encrypt === 'strict' ? 'strict' : true);
  try {
    return [await work(w), await work(d)];
  } finally {
    await closeTedious(w);
    await closeTedious(d);
  }
}

const SELECT_ALL = 'SELECT * FROM customers ORDER BY id';

describe.each([
  ['encrypt on (TLS in PRELOGIN)', true as Encrypt, 'password' as const],
  ['TDS 8.0 strict', 'strict' as Encrypt, 'password' as const],
  ['FEDAUTH access token', true as Encrypt, 'fedauth' as const],
])('tedious through warden, %s', (_name, encrypt, auth) => {
  it('reads every column of every customer exactly as directly', async () => {
    const [w, d] = await both(encrypt, (c) => query(c, SELECT_ALL), auth);
    expect(w.sets[0]!.rows.length).toBe(20);
    expect(w).toEqual(d);
  });

  it('relays several result sets, errors and INFO', async () => {
    const [w, d] = await both(encrypt, async (c) => {
      const two = await query(c, 'SELECT id, full_name FROM customers WHERE id <= 3 ORDER BY id; SELECT COUNT(*) AS n FROM customers');
      const err = await query(c, 'SELECT * FROM no_such_table').catch((e: Error & { number?: number }) => ({ number: e.number, message: e.message }));
      const info = await query(c, "PRINT 'hello from print'");
      return { two, err, info: info.infos };
    }, auth);
    expect(w.two.sets.length).toBe(2);
    expect(w.info).toEqual(['hello from print']);
    expect(w).toEqual(d);
  });

  it('runs RPCs with typed and output parameters', async () => {
    const [w, d] = await both(encrypt, (c) => query(c, 'SELECT id, full_name, salary FROM customers WHERE id = @id OR full_name = @name ORDER BY id', [
      ['id', TYPES.Int, 2],
      ['name', TYPES.NVarChar, 'nobody'],
    ]), auth);
    expect(w.sets[0]!.rows.length).toBe(1);
    expect(w).toEqual(d);
  });
});

describe('logins warden refuses', () => {
  it('refuses a token sent in plaintext (encrypt: false), and counts it', async () => {
    const err = await viaWarden(false).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/Login failed for user 'agent'\. Reason: warden accepts access tokens only over TLS/);
    expect(h.tw.warden.metrics.authFailuresTotal.get({ protocol: 'tds', reason: 'plaintext' })).toBeGreaterThan(0);
  });

  it('refuses a bad token with 18456 and the reason', async () => {
    const bad = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: `${token}x` } })).catch((e: Error) => e);
    expect((bad as Error).message).toMatch(/Login failed for user 'agent'\. Reason: token rejected: token signature is invalid/);
    const now = Math.floor(Date.now() / 1000);
    const expired = await h.tw.token({ extraClaims: { iat: now - 7200, nbf: now - 7200, exp: now - 3600 } });
    const old = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { fedauthToken: expired } })).catch((e: Error) => e);
    expect((old as Error).message).toMatch(/Login failed for user '<token-identified principal>'\. Reason: token rejected: token expired/);
  });

  it('refuses a token that expired seconds ago (within the clock skew) as expired, not with the mid-session message', async () => {
    const now = Math.floor(Date.now() / 1000);
    const just = await h.tw.token({ extraClaims: { iat: now - 600, nbf: now - 600, exp: now - 5 } });
    const err = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: just } })).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/Login failed for user 'agent'\. Reason: token rejected: token expired/);
    expect(h.tw.warden.metrics.authFailuresTotal.get({ protocol: 'tds', reason: 'token expired' })).toBeGreaterThan(0);
  });

  it('refuses a FEDAUTH token longer than 64 KiB as a malformed token (18456), not a protocol error', async () => {
    // 70,000 characters are 140,000 bytes of UTF-16: more than a LOGIN7 may be.
    for (const size of [70_000, 1 << 20]) {
      const err = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { fedauthToken: 'a'.repeat(size) } })).catch((e: Error) => e);
      expect((err as Error).message).toMatch(/Login failed for user '<token-identified principal>'\. Reason: token rejected: malformed token/);
    }
    expect(h.tw.warden.metrics.authFailuresTotal.get({ protocol: 'tds', reason: 'malformed token' })).toBeGreaterThanOrEqual(2);
  });

  it('takes a 20,000-character token as the password (an agent in 500 groups), and refuses 30,000 characters of junk as a malformed token', async () => {
    const groups = Array.from({ length: 500 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    const big = await h.tw.token({ groups });
    expect(big.length).toBeGreaterThan(20_000);
    const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: big } }));
    expect((await query(c, 'SELECT 1 AS one')).sets[0]?.rows).toEqual([[1]]);
    await closeTedious(c);
    // LOGIN7 offsets are 16-bit: tedious cannot place fields after a password much longer than this.
    const err = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: 'a'.repeat(30_000) } })).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/Login failed for user 'agent'\. Reason: token rejected: malformed token/);
  });

  it('refuses a signed token whose exp is beyond any date at login', async () => {
    const far = await h.tw.token({ extraClaims: { exp: 1e300 } });
    const err = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { fedauthToken: far } })).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/Login failed for user '<token-identified principal>'\. Reason: token rejected: malformed token/);
  });

  it('finds the target whatever the letter case of the database name, as SQL Server does', async () => {
    const c = await viaWarden(true, 'password', 'SHOP');
    expect((await query(c, 'SELECT 1 AS one')).sets[0]?.rows).toEqual([[1]]);
    await closeTedious(c);
  });

  it('refuses an unknown database with 4060', async () => {
    const err = await viaWarden(true, 'password', 'nope').catch((e: Error) => e);
    expect((err as Error).message).toMatch(/Cannot open database "nope" requested by the login/);
  });
});

describe('tedious sessions through warden', () => {
  it('runs TransMgr transactions (beginTransaction / rollbackTransaction) as directly', async () => {
    const txn = async (c: Connection): Promise<{ inside: unknown; after: unknown }> => {
      await new Promise<void>((r, j) => c.beginTransaction((e) => (e ? j(e) : r())));
      await query(c, "INSERT INTO customers (full_name, email) VALUES (N'Rolled Back', 'rolled-back-tedious@example.com')");
      const inside = (await query(c, "SELECT COUNT(*) FROM customers WHERE email = 'rolled-back-tedious@example.com'")).sets[0]!.rows;
      await new Promise<void>((r, j) => c.rollbackTransaction((e) => (e ? j(e) : r())));
      const after = (await query(c, "SELECT COUNT(*) FROM customers WHERE email = 'rolled-back-tedious@example.com'")).sets[0]!.rows;
      return { inside, after };
    };
    const [w, d] = await both(true, txn);
    expect(w).toEqual({ inside: [[1]], after: [[0]] });
    expect(w).toEqual(d);
  });

  it('cancels a running statement with ATTENTION, as directly, and the session goes on', async () => {
    const cancelOn = async (c: Connection): Promise<{ code: string | undefined; quick: boolean; after: unknown }> => {
      const started = Date.now();
      const running = query(c, "WAITFOR DELAY '00:00:20'").catch((e: Error & { code?: string }) => e);
      await new Promise((r) => setTimeout(r, 500));
      c.cancel();
      const err = (await running) as { code?: string };
      const quick = Date.now() - started < 10_000;
      return { code: err.code, quick, after: (await query(c, 'SELECT 42')).sets[0]!.rows };
    };
    const [w, d] = await both(true, cancelOn);
    expect(w).toEqual({ code: 'ECANCEL', quick: true, after: [[42]] });
    expect(w).toEqual(d);
    expect(h.tw.warden.metrics.cancelsTotal.get({ protocol: 'tds', result: 'forwarded' })).toBeGreaterThan(0);
  });

  it('logs in upstream with an access token (FEDAUTH) when the target has one', async () => {
    const c = await viaWarden(true, 'password', 'shop_token');
    try {
      expect((await query(c, 'SELECT COUNT(*) FROM customers')).sets[0]!.rows).toEqual([[20]]);
    } finally {
      await closeTedious(c);
    }
  });

  it('keeps other sessions going when one is refused', async () => {
    const c = await viaWarden(true);
    try {
      await expect(viaWarden(false)).rejects.toThrow(/only over TLS/);
      expect((await query(c, 'SELECT 7')).sets[0]!.rows).toEqual([[7]]);
    } finally {
      await closeTedious(c);
    }
  });
});

describe('plaintext_tokens: loopback', () => {
  let lh: TdsHarness;
  beforeAll(async () => {
    lh = await startTdsHarness({ plaintextTokens: 'loopback' });
  });
  afterAll(async () => {
    await lh?.stop();
  });

  it('accepts a token in plaintext from loopback (encrypt: false), with results as directly', async () => {
    const t = await lh.tw.token();
    const w = await connectTedious(tediousConfig({ port: lh.port, encrypt: false, auth: { password: t } }));
    const d = await connectTedious(tediousConfig({ port: lh.standin.port, encrypt: false, auth: { user: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password } }));
    try {
      const [a, b] = [await query(w, SELECT_ALL), await query(d, SELECT_ALL)];
      expect(a.sets[0]!.rows.length).toBe(20);
      expect(a).toEqual(b);
    } finally {
      await closeTedious(w);
      await closeTedious(d);
    }
  });
});

describe('session endings', () => {
  let eh: TdsHarness;
  beforeAll(async () => {
    eh = await startTdsHarness();
  });
  afterAll(async () => {
    await eh?.stop();
  });

  it('ends a session whose token expired at its next request, with 18456 saying so', async () => {
    const short = await eh.tw.token({ ttlSeconds: 2 });
    const c = await connectTedious(tediousConfig({ port: eh.port, encrypt: true, auth: { password: short } }));
    try {
      expect((await query(c, 'SELECT 1')).sets[0]!.rows).toEqual([[1]]);
      await new Promise((r) => setTimeout(r, 2500));
      const err = await query(c, 'SELECT 2').catch((e: Error & { number?: number }) => e);
      expect(err).toMatchObject({ number: 18456, message: 'access token expired; reconnect with a fresh token' });
    } finally {
      await closeTedious(c);
    }
  });

  it('on shutdown closes idle sessions at once and lets a running statement finish first', async () => {
    const idle = await connectTedious(tediousConfig({ port: eh.port, encrypt: true, auth: { password: await eh.tw.token() } }));
    const busy = await connectTedious(tediousConfig({ port: eh.port, encrypt: true, auth: { password: await eh.tw.token() } }));
    const idleEnded = new Promise<void>((r) => idle.once('end', () => r()));
    const running = query(busy, "WAITFOR DELAY '00:00:01'; SELECT 'finished' AS state");
    await new Promise((r) => setTimeout(r, 300));
    const closing = eh.tw.warden.close(10_000);
    await idleEnded;
    expect((await running).sets.at(-1)!.rows).toEqual([['finished']]);
    await closing;
    expect(eh.tw.warden.tdsListener?.openSessions).toBe(0);
  });
});
