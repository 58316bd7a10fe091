import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';
import { directUrl } from '../helpers/pg-env.js';

let w: TestWarden;
beforeAll(async () => {
  w = await startTestWarden();
});
afterAll(async () => {
  await w?.stop();
});

function client(token: string, database = 'shop'): pg.Client {
  return new pg.Client({ host: w.host, port: w.port, user: 'agent', password: token, database, ssl: { ca: w.ca } });
}

describe('node-postgres through warden', () => {
  it('returns the same rows as a direct connection', async () => {
    const c = client(await w.token());
    await c.connect();
    const viaWarden = await c.query('SELECT id, full_name, email, salary FROM customers ORDER BY id');
    await c.end();
    const d = new pg.Client({ connectionString: directUrl() });
    await d.connect();
    const direct = await d.query('SELECT id, full_name, email, salary FROM customers ORDER BY id');
    await d.end();
    expect(viaWarden.rows).toEqual(direct.rows);
    expect(viaWarden.rows).toHaveLength(20);
  });

  for (const target of ['shop_md5', 'shop_plain', 'shop_tls']) {
    it(`logs in upstream for target ${target}`, async () => {
      const c = client(await w.token(), target);
      await c.connect();
      const r = await c.query('SELECT current_user AS u, count(*)::int AS n FROM customers');
      await c.end();
      expect(r.rows[0].n).toBe(20);
    });
  }
});
