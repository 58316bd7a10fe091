// COPY sends no column names, so warden knows a COPY's columns only by position, from the
// statement. A protected table outside public (hr.staff) and a same-named table the agent creates
// in public, with other columns: with search_path = hr, public, PostgreSQL reads hr.staff while
// a reader that picks "public first" among same-named relations saw the agent's table, and
// `COPY (SELECT * FROM staff) TO STDOUT` sent hr.staff.ssn in clear under the agent's column name,
// and so did whole rows (`SELECT s::text FROM staff s`), traced as the agent's (id, note).
// Real psql through warden against the real PostgreSQL.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';
import { superuserTarget } from './masking-wire.js';

const S = `hr_${process.pid}`;
const T = `staff_${process.pid}`;
const SSNS = ['912-34-5671', '913-45-6782'];

let w: TestWarden;
let admin: pg.Client;

async function psql(sql: string): Promise<{ stdout: string; stderr: string }> {
  const conn = `host=127.0.0.1 port=${w.port} dbname=shop user=agent sslmode=disable`;
  const r = await run(findClient('psql') as string, ['-X', '-A', '-t', '-c', `SET search_path = ${S}, public`, '-c', sql, conn], {
    env: { PGPASSWORD: await w.token() },
    timeoutMs: 30_000,
  });
  return { stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(missingClient('psql'))('COPY of a name that means different relations', () => {
  beforeAll(async () => {
    admin = new pg.Client({ ...superuserTarget(), ssl: false });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${S}`);
    await admin.query(`CREATE TABLE ${S}.${T} (id int, ssn char(11))`);
    await admin.query(`INSERT INTO ${S}.${T} VALUES (1, '${SSNS[0]}'), (2, '${SSNS[1]}')`);
    await admin.query(`GRANT USAGE ON SCHEMA ${S} TO warden_scram`);
    await admin.query(`GRANT SELECT ON ${S}.${T} TO warden_scram`);
    w = await startTestWarden({
      plaintextTokens: 'loopback',
      yaml: `
masking:
  rules:
    - { name: hr-ssn, columns: [${S}.${T}.ssn], strategy: partial, options: { keep_last: 0 } }
`,
    });
    // The agent's own table of that name in public, with a harmless column where ssn is.
    const made = await psql(`CREATE TABLE public.${T} (id int, note text)`);
    expect(made.stderr).toBe('');
  });

  afterAll(async () => {
    await w?.stop();
    await admin?.query(`DROP TABLE IF EXISTS public.${T}`);
    await admin?.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
    await admin?.end();
  });

  for (const sql of [
    `COPY (SELECT * FROM ${T}) TO STDOUT`,
    `COPY ${T} TO STDOUT`,
    `COPY (SELECT id, ssn FROM ${T}) TO STDOUT (FORMAT csv)`,
    `SELECT * FROM ${T}`,
    // Whole rows: lineage listed the agent's columns (id, note) for them, none protected.
    `SELECT s::text AS s FROM ${T} s`,
    `SELECT row_to_json(s) FROM ${T} s`,
    `SELECT s.*::text AS s FROM ${T} s UNION ALL SELECT 'x'`,
    `SELECT id FROM ${T} s WHERE s::text LIKE '%912%'`,
  ]) {
    it(sql, async () => {
      const r = await psql(sql);
      for (const ssn of SSNS) expect(r.stdout + r.stderr).not.toContain(ssn);
      // Either refused or masked: never the values, and rows are not silently lost.
      if (r.stderr === '') expect(r.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(3); // SET and both rows
    });
  }
});
