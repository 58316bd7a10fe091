// A session outlives setTimeout's longest wait (2^31-1 ms, about 24.8 days) when its token does:
// the expiry timer waits in steps, and the session ends when the token really expires, not when
// the first step is over. (Fake clock and timers; the sockets, TLS and PostgreSQL are real.)
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const DAY = 86_400_000;
let w: TestWarden;

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], shouldAdvanceTime: true });
  w = await startTestWarden();
});
afterAll(async () => {
  vi.useRealTimers();
  await w?.stop();
});

describe('a token valid for 30 days', () => {
  it('keeps its session past 24.8 days and ends it at 30', async () => {
    const token = await w.token({ extraClaims: { exp: Math.floor(Date.now() / 1000) + 30 * 86_400 } });
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca } });
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    await c.connect();
    vi.advanceTimersByTime(25 * DAY);
    await new Promise((r) => setTimeout(r, 300));
    expect(errors).toEqual([]);
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    vi.advanceTimersByTime(5 * DAY + 1000);
    await new Promise((r) => setTimeout(r, 300));
    expect(errors[0]).toMatchObject({ code: '28000', message: 'access token expired; reconnect with a fresh token' });
    await c.end().catch(() => undefined);
  });
});
