// A statement the relay lets through whose rows come back masked is recorded `allow`, its masking
// in its result. Through a real warden: sessions list counted it both allowed and masked (a/m/h/d
// adding up to more than the statements) and the access review only as allowed.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSessions } from '../../src/audit/reader.js';
import { buildReview } from '../../src/audit/review.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';
import { transcriptsDir } from '../unit/audit-support.js';

let w: TestWarden;

beforeAll(async () => {
  w = await startTestWarden({
    yaml: `
masking:
  rules:
    - { name: emails, columns: [customers.email], strategy: email }
transcripts: { capture: digest }
`,
  });
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  await c.connect();
  await c.query('SELECT id, email FROM customers WHERE id <= 2');
  await c.query('SELECT id FROM customers WHERE id <= 2');
  await c.query({ text: 'SELECT email FROM customers WHERE id = $1', values: [1] });
  await c.end();
  await w.warden.close(500);
});
afterAll(async () => {
  await w.stop();
});

describe('a masked statement', () => {
  it('counts once, as masked, in sessions list and in the review', async () => {
    const dir = transcriptsDir(w.dataDir);
    const [session] = await listSessions(dir);
    expect(session?.statements).toBe(3);
    expect(session?.verdicts).toEqual({ allow: 1, mask: 2, hold: 0, deny: 0 });
    const review = await buildReview(dir, { principal: 'agent', since: new Date(0), until: new Date(Date.now() + 60_000) });
    expect(review.statementsByClass).toEqual([{ class: 'read', count: 3, verdicts: { allow: 1, mask: 2, hold: 0, deny: 0 } }]);
    expect(review.protectedColumns).toEqual([expect.objectContaining({ column: 'email', rule: 'emails', results: 2, rows: 3 })]);
  });
});
