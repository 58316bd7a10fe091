import { describe, it, expect } from 'vitest';
import pg from 'pg';
import { directUrl, TEST_ROLES } from '../helpers/pg-env.js';

describe('test harness PostgreSQL', () => {
  for (const role of [TEST_ROLES.scram, TEST_ROLES.md5, TEST_ROLES.password]) {
    it(`accepts ${role.method} logins and serves the shop data`, async () => {
      const c = new pg.Client({ connectionString: directUrl(role) });
      await c.connect();
      const r = await c.query('SELECT count(*)::int AS n, max(email) AS e FROM customers');
      await c.end();
      expect(r.rows[0]).toEqual({ n: 20, e: 'nia.fakename14@example.com' });
    });
  }
});
