// Masked results are ordinary results: real drivers (node-postgres, postgres.js, psql, pgJDBC
// with binary transfer) decode them, and see masked values where the rules say.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const MASKING = `
masking:
  rules:
    - { name: national-ids, columns: [customers.ssn], strategy: partial, options: { keep_last: 4 } }
    - { name: cards, columns: [customers.card_number], strategy: format, options: { key: drivers-test-format-key-1234, keep_last: 4 } }
    - { name: emails, columns: [customers.email], strategy: email }
    - { name: salaries, columns: [customers.salary], strategy: hash, options: { key: drivers-test-hash-key-123456 } }
    - { name: birthdays, columns: [customers.birth_date], strategy: date, options: { precision: year } }
    - { name: ids, columns: [customers.external_id], strategy: hash, options: { key: drivers-test-hash-key-123456 } }
`;

let w: TestWarden;
let dir: string;
beforeAll(async () => {
  w = await startTestWarden({ yaml: MASKING });
  dir = mkdtempSync(join(tmpdir(), 'warden-mask-drivers-'));
});
afterAll(async () => {
  await w?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('drivers decode masked results', () => {
  it('node-postgres: text and binary', async () => {
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    const sql = 'SELECT id, email, ssn, card_number, salary, birth_date, external_id FROM customers WHERE id = 1';
    const text = (await c.query(sql)).rows[0];
    expect(text.email).toMatch(/^\*+@example\.com$/);
    expect(text.ssn).toBe('*******7468');
    expect(text.card_number).toMatch(/^\d{12}1111$/);
    expect(text.card_number).not.toBe('4111111111111111');
    expect(text.salary).toMatch(/^\d+\.\d{2}$/);
    expect(text.salary).not.toBe('42657.09');
    expect((text.birth_date as Date).getMonth()).toBe(0);
    expect(text.external_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const bin = (await c.query({ text: sql, binary: true } as pg.QueryConfig)).rows[0];
    expect(bin.id).toBe(1);
    await c.end();
  });

  it('postgres.js', async () => {
    const sql = postgres({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, max: 1 });
    const rows = await sql`SELECT id, email, ssn, salary FROM customers WHERE id <= ${3} ORDER BY id`;
    expect(rows).toHaveLength(3);
    expect(rows[0]?.ssn).toBe('*******7468');
    expect(String(rows[0]?.salary)).not.toBe('42657.09');
    await sql.end();
  });

  it.skipIf(missingClient('psql'))('psql', async () => {
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, w.ca);
    const r = await run(findClient('psql') as string, ['-X', '-A', '-t', '-c', 'SELECT id, ssn, email, birth_date FROM customers WHERE id <= 2 ORDER BY id', `host=127.0.0.1 port=${w.port} dbname=shop user=agent sslmode=verify-full sslrootcert=${caFile}`], {
      env: { PGPASSWORD: await w.token() },
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^1\|\*{7}7468\|\*+@example\.com\|1953-01-01$/),
      expect.stringMatching(/^2\|\*{7}4657\|\*+@example\.com\|1952-01-01$/),
    ]);
  });

  it.skipIf(missingClient('java') || missingClient('javac') || missingClient('pgjdbc'))('pgJDBC with binary transfer', async () => {
    const source = fileURLToPath(new URL('../clients/MaskedJdbcClient.java', import.meta.url));
    const compiled = await run(findClient('javac') as string, ['-d', dir, source], { timeoutMs: 90_000 });
    expect(compiled.code, compiled.stderr).toBe(0);
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, w.ca);
    const url = `jdbc:postgresql://127.0.0.1:${w.port}/shop?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}&prepareThreshold=1&binaryTransfer=true`;
    const r = await run(findClient('java') as string, ['-XX:TieredStopAtLevel=1', '-cp', `${dir}:${findClient('pgjdbc') as string}`, 'MaskedJdbcClient', url, 'agent', await w.token()], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(9);
    for (const round of [1, 2, 3]) {
      const first = lines.find((l) => l.startsWith(`round ${round}: | 1 |`)) ?? '';
      expect(first).toContain('| *******7468 |');
      expect(first).toContain('| 1953-01-01 |');
      expect(first).not.toContain('941-74-7468');
      expect(first).not.toContain('4111111111111111');
    }
  }, 120_000);
});

describe('catalog queries under masking', () => {
  it.skipIf(missingClient('psql'))('psql \\d works for a masked principal, and a catalog query cannot smuggle table data into a condition', async () => {
    const caFile = join(dir, 'ca-d.pem');
    writeFileSync(caFile, w.ca);
    const conn = `host=127.0.0.1 port=${w.port} dbname=shop user=agent sslmode=verify-full sslrootcert=${caFile}`;
    const d = await run(findClient('psql') as string, ['-X', '-c', '\\d customers', conn], { env: { PGPASSWORD: await w.token() }, timeoutMs: 30_000 });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('card_number');
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    const smuggled = await c
      .query("SELECT relname FROM pg_catalog.pg_class WHERE pg_catalog.query_to_xml('select ssn from customers', true, false, '')::text LIKE '%941%'")
      .catch((e: pg.DatabaseError) => e);
    expect((smuggled as pg.DatabaseError).code).toBe('42501');
    const stats = await c.query("SELECT attname FROM pg_catalog.pg_stats WHERE tablename = 'customers' AND most_common_vals::text LIKE '%941%'").catch((e: pg.DatabaseError) => e);
    expect((stats as pg.DatabaseError).code).toBe('42501');
    await c.end();
  });
});
