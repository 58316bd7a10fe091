// tedious's bulk load (execBulkLoad: an INSERT BULK batch, then the rows in a BULK_LOAD message)
// through warden under statement rules, as directly against the stand-in: the INSERT BULK is
// understood (a copy from the client into its table), judged like any insert, and when allowed
// its BULK_LOAD data follows it to the target; when denied, nothing reaches the target and the
// session goes on. The transcript records the INSERT BULK with the count of rows its BULK_LOAD
// inserted. Each load runs in a transaction that is rolled back (other tests count rows).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Connection } from 'tedious';
import { readStore } from '../../src/audit/reader.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { closeTedious, connectTedious, query, startTdsHarness, STANDIN_LOGIN, tediousConfig, TYPES, type TdsHarness } from '../helpers/tds.js';

let h: TdsHarness;

beforeAll(async () => {
  h = await startTdsHarness({
    yaml: 'rules:\n  - name: no-orders-writes\n    match: { relations: [orders], access: [insert, update, delete] }\n    action: deny\napprovals:\n  timeout: 1s\n',
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', instanceId: 'tds-bulk' };
    },
  });
});

afterAll(async () => {
  await h?.stop();
});

const tx = (c: Connection, op: 'beginTransaction' | 'rollbackTransaction'): Promise<void> => new Promise((r, j) => c[op]((e) => (e ? j(e) : r())));

/** Bulk-loads two customers inside a transaction; what the load and a count inside it said, then rolls back. */
async function loadCustomers(c: Connection, table = 'customers'): Promise<{ loaded: unknown; inside: unknown; after: unknown }> {
  await tx(c, 'beginTransaction');
  const loaded = await new Promise((resolve) => {
    const b = c.newBulkLoad(table, {}, (err, rowCount) => resolve(err ? { number: (err as Error & { number?: number }).number, message: err.message } : { rowCount }));
    b.addColumn('full_name', TYPES.NVarChar, { length: 100, nullable: false });
    b.addColumn('email', TYPES.NVarChar, { length: 100, nullable: false });
    c.execBulkLoad(b, [
      { full_name: 'Bulk One', email: 'bulk-one@example.com' },
      { full_name: 'Bulk Two', email: 'bulk-two@example.com' },
    ]);
  });
  const inside = (await query(c, "SELECT full_name FROM customers WHERE email LIKE 'bulk-%' ORDER BY email")).sets[0]?.rows;
  await tx(c, 'rollbackTransaction');
  const after = (await query(c, "SELECT COUNT(*) FROM customers WHERE email LIKE 'bulk-%'")).sets[0]?.rows;
  return { loaded, inside, after };
}

it('a bulk load runs through warden as directly', async () => {
  const w = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
  const d = await connectTedious(tediousConfig({ port: h.standin.port, encrypt: true, auth: { user: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password } }));
  try {
    const viaWarden = await loadCustomers(w);
    expect(viaWarden).toEqual({ loaded: { rowCount: 2 }, inside: [['Bulk One'], ['Bulk Two']], after: [[0]] });
    expect(viaWarden).toEqual(await loadCustomers(d));
  } finally {
    await closeTedious(w);
    await closeTedious(d);
  }
});

it('a bulk load into a table a rule denies is refused with 229; nothing reaches the target and the session goes on', async () => {
  const w = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
  try {
    const r = await loadCustomers(w, 'orders');
    expect(r.loaded).toMatchObject({ number: 229, message: expect.stringMatching(/rule "no-orders-writes"/) });
    expect((await query(w, 'SELECT 1 AS one')).sets[0]?.rows).toEqual([[1]]);
  } finally {
    await closeTedious(w);
  }
});

it('a load that fails (a duplicate key) inserts none of its rows and the transaction goes on, as directly', async () => {
  const failing = async (c: Connection): Promise<unknown> => {
    await tx(c, 'beginTransaction');
    const loaded = await new Promise((resolve) => {
      const b = c.newBulkLoad('customers', {}, (err, rowCount) => resolve(err ? { number: (err as Error & { number?: number }).number } : { rowCount }));
      b.addColumn('id', TYPES.Int, { nullable: false });
      b.addColumn('full_name', TYPES.NVarChar, { length: 100, nullable: false });
      b.addColumn('email', TYPES.NVarChar, { length: 100, nullable: false });
      c.execBulkLoad(b, [
        { id: 9001, full_name: 'Bulk New', email: 'bulk-new@example.com' },
        { id: 1, full_name: 'Bulk Dup', email: 'bulk-dup@example.com' },
      ]);
    });
    const inside = (await query(c, "SELECT COUNT(*) FROM customers WHERE email LIKE 'bulk-%'")).sets[0]?.rows;
    const tranCount = (await query(c, 'SELECT @@TRANCOUNT')).sets[0]?.rows;
    await tx(c, 'rollbackTransaction');
    return { loaded, inside, tranCount };
  };
  const w = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
  const d = await connectTedious(tediousConfig({ port: h.standin.port, encrypt: true, auth: { user: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password } }));
  try {
    const viaWarden = await failing(w);
    expect(viaWarden).toEqual({ loaded: { number: 2627 }, inside: [[0]], tranCount: [[1]] });
    expect(viaWarden).toEqual(await failing(d));
  } finally {
    await closeTedious(w);
    await closeTedious(d);
  }
});

it('the transcript records the INSERT BULK, and the rows its BULK_LOAD inserted as a result of it', async () => {
  await h.tw.warden.close(500);
  const records: { k: string; sid?: string; d: Record<string, unknown> }[] = [];
  for await (const r of readStore(join(h.tw.dataDir, 'transcripts'))) records.push(r.record as (typeof records)[number]);
  const st = records.find((r) => r.k === 'statement' && /^insert bulk customers/i.test(String(r.d.text)));
  expect(st?.d).toMatchObject({ via: 'batch', verdict: 'allow', cls: { kinds: ['copy'], relations: ['customers'] } });
  const results = records.filter((r) => r.k === 'result' && r.sid === st?.sid && r.d.st === st?.d.st).map((r) => r.d);
  expect(results.some((r) => r.rows === 2 && r.tag === 'DONE 2')).toBe(true);
});
