// pgJDBC 42.5 through warden vs direct: test/clients/PgJdbcClient.java (compiled here with javac)
// runs named prepared statements with binary transfer, executeBatch, DatabaseMetaData as DBeaver
// uses it, and every customers column as strings; its output through warden must equal its
// output on a direct connection, line for line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { run } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const skip = missingClient('java') || missingClient('javac') || missingClient('pgjdbc');
const SOURCE = fileURLToPath(new URL('../clients/PgJdbcClient.java', import.meta.url));
const OPTIONS = 'prepareThreshold=1&binaryTransfer=true&ApplicationName=jdbc-test';

let w: TestWarden;
let dir: string;
let caFile: string;
beforeAll(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'warden-jdbc-'));
  const [compiled, started] = await Promise.all([
    run(findClient('javac') as string, ['-d', dir, SOURCE], { timeoutMs: 90_000 }),
    startTestWarden(),
  ]);
  w = started;
  if (compiled.code !== 0) throw new Error(`javac failed: ${compiled.stderr}`);
  caFile = join(dir, 'warden-ca.pem');
  writeFileSync(caFile, w.ca);
}, 120_000);
afterAll(async () => {
  await w?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function jdbc(url: string, user: string, password: string): Promise<string[]> {
  const cp = `${dir}:${findClient('pgjdbc') as string}`;
  const r = await run(findClient('java') as string, ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', cp, 'PgJdbcClient', url, user, password], { timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`PgJdbcClient failed (${r.code}): ${r.stderr}`);
  return r.stdout.trimEnd().split('\n');
}

describe.skipIf(skip)('pgJDBC through warden', () => {
  it('prints exactly what it prints on a direct connection (binary transfer, batch, metadata, all columns)', async () => {
    const pg = testPostgres();
    const [direct, viaWarden] = await Promise.all([
      jdbc(`jdbc:postgresql://${pg.host}:${pg.port}/shop?sslmode=disable&${OPTIONS}`, TEST_ROLES.scram.user, TEST_ROLES.scram.password),
      jdbc(`jdbc:postgresql://127.0.0.1:${w.port}/shop?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}&${OPTIONS}`, 'agent', await w.token()),
    ]);
    expect(viaWarden).toEqual(direct);

    // The output holds what the scenarios promise (two equal failures would not).
    expect(viaWarden).toContain('prepared(16) count: 16');
    expect(viaWarden.filter((l) => l.startsWith('prepared(3) row:'))[0]).toBe(
      'prepared(3) row: | 1 | Alice Testperson | 941-74-7468 | 4111111111111111 | 42657.09 | 1953-09-07 | 2024-01-01 00:00:00.062907 | 2025-01-10 00:15:30.123457+00 | f | \\x89504e470d0a1a0a0000000d49484452 | 3d9c1724-11e2-4b8f-ab0d-549b6f03675a | -0.215685 | 13610 | 9007199254740993',
    );
    expect(viaWarden).toContain('typed-params row: | 2001.02 | 9007199254740993 | 1999-12-31 | t');
    expect(viaWarden.filter((l) => /^server-prepared row: \| S_\d+ \| f$/.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(viaWarden).toContain('batch counts: [1, 1, 1]');
    expect(viaWarden).toContain('in-tx row: | 3');
    expect(viaWarden).toContain('after-rollback row: | 20');
    expect(viaWarden.find((l) => l.startsWith('error:'))).toMatch(/^error: 23505 ERROR: duplicate key value violates unique constraint "customers_email_key"/);
    expect(viaWarden).toContain('table: customers TABLE');
    expect(viaWarden).toContain('table: active_customers VIEW');
    expect(viaWarden.filter((l) => l.startsWith('column: '))).toHaveLength(17);
    expect(viaWarden).toContain('column: 6 salary numeric size=12 digits=2 nullable=1 default=null autoinc=NO');
    expect(viaWarden).toContain('pk: id customers_pkey');
    expect(viaWarden).toContain('all count: 20');
    expect(viaWarden).toContain('app row: | jdbc-test');
  }, 120_000);
});
