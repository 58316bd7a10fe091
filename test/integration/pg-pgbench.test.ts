// pgbench's TPC-B-like workload through warden in each query mode (simple, extended, prepared):
// no failed transactions, every transaction processed, and the table sums equal what the
// transactions did (each one adds the same delta to an account, a teller, a branch and the history).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { run } from '../helpers/run.js';
import { pgTarget, startTestWarden, type TestWarden } from '../helpers/warden.js';

const skip = missingClient('pgbench');
const DB = 'pgbench_relay';
const CLIENTS = 4;
const TX_PER_CLIENT = 200;

let w: TestWarden;
let token: string;

function superuserEnv(): Record<string, string> {
  const s = testPostgres();
  return { PGHOST: s.host, PGPORT: String(s.port), PGUSER: 'postgres', PGPASSWORD: s.superuserPassword, PGSSLMODE: 'disable' };
}

async function superuser(database: string): Promise<pg.Client> {
  const s = testPostgres();
  const c = new pg.Client({ host: s.host, port: s.port, user: 'postgres', password: s.superuserPassword, database });
  await c.connect();
  return c;
}

interface Totals {
  history: number;
  delta: number;
  accounts: number;
  tellers: number;
  branches: number;
}

async function totals(): Promise<Totals> {
  const c = await superuser(DB);
  try {
    const r = await c.query(`SELECT
      (SELECT count(*) FROM pgbench_history)::int AS history,
      (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::bigint AS delta,
      (SELECT sum(abalance) FROM pgbench_accounts)::bigint AS accounts,
      (SELECT sum(tbalance) FROM pgbench_tellers)::bigint AS tellers,
      (SELECT sum(bbalance) FROM pgbench_branches)::bigint AS branches`);
    const row = r.rows[0] as Record<string, string | number>;
    return { history: Number(row.history), delta: Number(row.delta), accounts: Number(row.accounts), tellers: Number(row.tellers), branches: Number(row.branches) };
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  if (skip) return;
  const admin = await superuser('postgres');
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
    await admin.query(`CREATE DATABASE ${DB}`);
  } finally {
    await admin.end();
  }
  const init = await run(findClient('pgbench') as string, ['-i', '-s', '1', '-q', DB], { env: superuserEnv(), timeoutMs: 60_000 });
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  const db = await superuser(DB);
  try {
    await db.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${TEST_ROLES.scram.user}`);
  } finally {
    await db.end();
  }
  w = await startTestWarden({ targets: [pgTarget('bench', TEST_ROLES.scram, { database: DB })] });
  token = await w.token();
}, 90_000);

afterAll(async () => {
  await w?.stop();
});

describe.skipIf(skip)('pgbench through warden', () => {
  const runs: { mode: string; via: 'warden' | 'direct' }[] = [
    { mode: 'simple', via: 'warden' },
    { mode: 'extended', via: 'warden' },
    { mode: 'prepared', via: 'warden' },
    { mode: 'prepared', via: 'direct' },
  ];
  for (const { mode, via } of runs) {
    it(`-M ${mode} ${via === 'direct' ? '(direct, the baseline)' : 'through warden'}: no failures, every transaction accounted for`, async () => {
      const before = await totals();
      const s = testPostgres();
      const env =
        via === 'warden'
          ? { PGHOST: w.host, PGPORT: String(w.port), PGUSER: 'agent', PGPASSWORD: token, PGSSLMODE: 'require', PGDATABASE: 'bench' }
          : { PGHOST: s.host, PGPORT: String(s.port), PGUSER: TEST_ROLES.scram.user, PGPASSWORD: TEST_ROLES.scram.password, PGSSLMODE: 'disable', PGDATABASE: DB };
      const r = await run(findClient('pgbench') as string, ['-n', '-M', mode, '-c', String(CLIENTS), '-j', '2', '-t', String(TX_PER_CLIENT)], { env, timeoutMs: 90_000 });
      expect(r.stderr).not.toMatch(/error|FATAL/i);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`query mode: ${mode}`);
      expect(r.stdout).toContain(`number of transactions actually processed: ${CLIENTS * TX_PER_CLIENT}/${CLIENTS * TX_PER_CLIENT}`);
      expect(r.stdout).toMatch(/number of failed transactions: 0 \(0\.000%\)/);
      const after = await totals();
      // One history row per transaction; each transaction adds its delta to all four places.
      expect(after.history - before.history).toBe(CLIENTS * TX_PER_CLIENT);
      const delta = after.delta - before.delta;
      expect(after.accounts - before.accounts).toBe(delta);
      expect(after.tellers - before.tellers).toBe(delta);
      expect(after.branches - before.branches).toBe(delta);
    }, 120_000);
  }

  it('the totals hold across all runs (the database saw exactly what pgbench did)', async () => {
    const t = await totals();
    expect(t.history).toBe(runs.length * CLIENTS * TX_PER_CLIENT);
    expect(t.accounts).toBe(t.delta);
    expect(t.tellers).toBe(t.delta);
    expect(t.branches).toBe(t.delta);
  });
});
