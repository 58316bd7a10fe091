// The same client scenarios with transcripts on, so every statement passes through the statement
// flow (whole-message inspection, recording of parameters and rows) instead of the pass-through
// handlers: results must still equal a direct connection's, pipelines and COPY included.
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { findClient, missingClient } from '../helpers/clients.js';
import { directUrl, TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { run } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
beforeAll(async () => {
  w = await startTestWarden({
    mutate: (config) => {
      // In line: the statement flow on the event loop (recording-thread.test.ts runs the thread's).
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', instanceId: 'recorded-clients', recordingThread: false };
    },
  });
});
afterAll(async () => {
  await w?.stop();
});

describe('clients through a recording warden equal a direct connection', () => {
  it('node-postgres: pipeline with a Bind error, binary rows, a failed transaction', async () => {
    const scenario = async (c: pg.Client) => {
      const settled = await Promise.allSettled([
        c.query('SELECT $1::int AS a', [1]),
        c.query('SELECT * FROM customers WHERE id = $1', ['x']),
        c.query({ text: 'SELECT id, salary, avatar, external_id FROM customers WHERE id <= $1 ORDER BY id', values: [20], binary: true, types: { getTypeParser: () => (v: unknown) => v } } as pg.QueryConfig),
      ]);
      await c.query('BEGIN');
      const e1 = await c.query('SELECT 1/0').catch((e: pg.DatabaseError) => e.code);
      const e2 = await c.query('SELECT 1').catch((e: pg.DatabaseError) => e.code);
      await c.query('ROLLBACK');
      return {
        settled: settled.map((s) => (s.status === 'fulfilled' ? s.value.rows.map((r) => JSON.stringify(r)) : (s.reason as pg.DatabaseError).code)),
        errors: [e1, e2],
      };
    };
    const d = new pg.Client({ connectionString: directUrl(), pipeline: true } as pg.ClientConfig);
    const v = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, pipeline: true } as pg.ClientConfig);
    await d.connect();
    await v.connect();
    const [dr, vr] = [await scenario(d), await scenario(v)];
    await d.end();
    await v.end();
    expect(vr).toEqual(dr);
    expect(vr.settled[1]).toBe('22P02');
    expect(vr.settled[2]).toHaveLength(20);
    expect(vr.errors).toEqual(['22012', '25P02']);
  });

  it('postgres.js: 200 pipelined queries and COPY out', async () => {
    const pgs = testPostgres();
    const scenario = async (sql: ReturnType<typeof postgres>) => {
      const rows = await Promise.all(Array.from({ length: 200 }, (_, i) => sql`SELECT ${i}::int AS i, md5(${String(i)}) AS h`));
      const chunks: Buffer[] = [];
      for await (const chunk of await sql`COPY customers TO STDOUT`.readable()) chunks.push(Buffer.from(chunk as Buffer));
      return { rows: rows.map((r) => r[0]), copy: Buffer.concat(chunks).toString('utf8') };
    };
    const d = postgres({ host: pgs.host, port: pgs.port, user: TEST_ROLES.scram.user, password: TEST_ROLES.scram.password, database: 'shop', max: 1 });
    const v = postgres({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, max: 1 });
    try {
      const [dr, vr] = [await scenario(d), await scenario(v)];
      expect(vr).toEqual(dr);
      expect(vr.rows.map((r) => r?.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(vr.copy.trim().split('\n')).toHaveLength(20);
    } finally {
      await d.end({ timeout: 5 });
      await v.end({ timeout: 5 });
    }
  });

  it.skipIf(missingClient('psql'))('psql: a script with COPY FROM STDIN, a notice and an error', async () => {
    const pgs = testPostgres();
    const script = [
      'CREATE TEMP TABLE t (id int, name text);',
      '\\copy t FROM STDIN',
      '1\tone',
      '2\ttwo ✓',
      '\\.',
      'SELECT * FROM t ORDER BY id;',
      "DO $$ BEGIN RAISE NOTICE 'n=%', (SELECT count(*) FROM t); END $$;",
      "INSERT INTO customers (full_name, email) VALUES ('D', 'alice.testperson1@example.com');",
      'SELECT count(*) FROM customers;',
      '',
    ].join('\n');
    const psql = (env: Record<string, string>) => run(findClient('psql') as string, ['-X', '-d', 'shop', '-f', '-'], { env, input: script, timeoutMs: 30_000 });
    const d = await psql({ PGHOST: pgs.host, PGPORT: String(pgs.port), PGUSER: TEST_ROLES.scram.user, PGPASSWORD: TEST_ROLES.scram.password, PGSSLMODE: 'disable' });
    const v = await psql({ PGHOST: w.host, PGPORT: String(w.port), PGUSER: 'agent', PGPASSWORD: await w.token(), PGSSLMODE: 'require' });
    expect({ code: v.code, out: v.stdout, err: v.stderr }).toEqual({ code: d.code, out: d.stdout, err: d.stderr });
    expect(v.stdout).toContain('two ✓');
    expect(v.stderr).toContain('NOTICE:  n=2');
    expect(v.stderr).toContain('DETAIL:  Key (email)=(alice.testperson1@example.com) already exists.');
  });

  it('… and the statement flow really was in the path (it gave verdicts)', () => {
    expect(w.warden.metrics.verdictsTotal.get({ protocol: 'postgres', verdict: 'allow' })).toBeGreaterThan(200);
  });
});
