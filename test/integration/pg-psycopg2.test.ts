// psycopg2 (libpq underneath) through warden vs direct: the scenarios of
// test/clients/pg_psycopg2_client.py (parameters, fetchmany, a server-side named cursor, COPY via
// copy_expert, an error and rollback) must print the same JSON both ways; through warden over
// TLS verified against warden's certificate.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { run } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const skip = missingClient('psycopg2');
const SCRIPT = fileURLToPath(new URL('../clients/pg_psycopg2_client.py', import.meta.url));

let w: TestWarden;
let dir: string;
let caFile: string;
beforeAll(async () => {
  if (skip) return;
  w = await startTestWarden();
  dir = mkdtempSync(join(tmpdir(), 'warden-psycopg2-'));
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, w.ca);
});
afterAll(async () => {
  await w?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** libpq keyword/value DSN (values quoted). */
const dsn = (kv: Record<string, string>): string =>
  Object.entries(kv)
    .map(([k, v]) => `${k}='${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');

async function scenario(conninfo: string): Promise<Record<string, unknown>> {
  const r = await run(findClient('psycopg2') as string, [SCRIPT, conninfo], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`psycopg2 client failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe.skipIf(skip)('psycopg2 through warden', () => {
  it('runs every scenario with results equal to a direct connection, over verified TLS', async () => {
    const pg = testPostgres();
    const direct = await scenario(
      dsn({ host: pg.host, port: String(pg.port), user: TEST_ROLES.scram.user, password: TEST_ROLES.scram.password, dbname: 'shop', sslmode: 'disable', application_name: 'psycopg2-test' }),
    );
    const viaWarden = await scenario(
      dsn({
        host: 'localhost',
        hostaddr: '127.0.0.1',
        port: String(w.port),
        user: 'agent',
        password: await w.token(),
        dbname: 'shop',
        sslmode: 'verify-full',
        sslrootcert: caFile,
        application_name: 'psycopg2-test',
      }),
    );
    expect(viaWarden.ssl_in_use).toBe(true);
    expect(direct.ssl_in_use).toBe(false);
    const { ssl_in_use: _a, ...d } = direct;
    const { ssl_in_use: _b, ...v } = viaWarden;
    expect(v).toEqual(d);

    // And the results are the ones the data holds, not two equal failures.
    expect((v.params as { rows: unknown[][] }).rows.map((r) => r[0])).toEqual([2, 3, 8]);
    expect((v.params as { columns: string[] }).columns).toHaveLength(17);
    expect(v.params_literals).toEqual([[42, "it's", true]]);
    expect((v.fetchmany as unknown[][]).map((p) => p.length)).toEqual([7, 7, 6]);
    expect(v.error).toMatchObject({ pgcode: '23505', detail: 'Key (email)=(alice.testperson1@example.com) already exists.' });
    expect(v.named_cursor).toMatchObject({ total: 5000, checksum: (5000 * 5001) / 2 });
    expect((v.copy_out as string).split('\n')[1]).toBe('1,Alice Testperson,alice.testperson1@example.com,941-74-7468,4111111111111111');
    expect(v.copy_in_rowcount).toBe(2000);
    expect(v.copy_in).toEqual([[2000, 2001000, 'üüüü']]);
    expect(v.application_name).toBe('psycopg2-test');
  }, 90_000);

  it('sslmode=require without a root certificate also works, and sslmode=disable is refused', async () => {
    const base = { host: '127.0.0.1', port: String(w.port), user: 'agent', password: await w.token(), dbname: 'shop' };
    const ok = await run(findClient('psycopg2') as string, ['-c', `import psycopg2,sys; c=psycopg2.connect(sys.argv[1]); print(c.info.ssl_in_use, c.info.ssl_attribute('protocol'))`, dsn({ ...base, sslmode: 'require' })], {
      timeoutMs: 30_000,
    });
    expect(ok.stdout.trim()).toMatch(/^True TLSv1\.[23]$/);
    const refused = await run(findClient('psycopg2') as string, ['-c', 'import psycopg2,sys; psycopg2.connect(sys.argv[1])', dsn({ ...base, sslmode: 'disable' })], { timeoutMs: 30_000 });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('warden accepts access tokens only over TLS');
  });
});
