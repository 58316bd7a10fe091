// Limits on a session's life: shutdown past the grace cancels what the database is still running;
// a connection cannot switch identity through startup options.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { directUrl } from '../helpers/pg-env.js';
import { startTestWarden } from '../helpers/warden.js';

async function running(marker: string): Promise<number> {
  const d = new pg.Client({ connectionString: directUrl() });
  await d.connect();
  const r = await d.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()", [`%${marker}%`]);
  await d.end();
  return r.rows[0].n as number;
}

describe('session limits', () => {
  it('closing warden past the grace period cancels the statement still running upstream', async () => {
    const w = await startTestWarden();
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    c.on('error', () => undefined);
    await c.connect();
    const q = c.query("SELECT pg_sleep(30) /* grace-marker */").catch((e: Error) => e);
    for (let i = 0; i < 50 && (await running('grace-marker')) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await running('grace-marker')).toBe(1);
    await w.warden.close(300);
    await q;
    let left = 1;
    for (let i = 0; i < 50 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await running('grace-marker');
    }
    expect(left).toBe(0);
    await w.stop();
  });

  it('refuses startup options that would change the session user', async () => {
    const w = await startTestWarden();
    for (const options of ['-c role=postgres', '--session_authorization=postgres']) {
      const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, options });
      const err = (await c.connect().catch((e: pg.DatabaseError) => e)) as pg.DatabaseError;
      expect(err.code).toBe('42501');
      expect(err.message).toMatch(/does not allow setting "(role|session_authorization)"/);
    }
    const ok = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, options: '-c search_path=public' });
    await ok.connect();
    expect((await ok.query('SHOW search_path')).rows[0]).toEqual({ search_path: 'public' });
    await ok.end();
    await w.stop();
  });
});
