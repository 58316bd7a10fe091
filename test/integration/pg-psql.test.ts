// psql through warden: the same commands and scripts run direct and through warden must print
// the same output, the same errors and exit with the same code. Also psql's TLS modes against
// warden's certificate.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { run, type RunResult } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const skip = missingClient('psql');

let w: TestWarden;
let dir: string;
let caFile: string;
let token: string;
beforeAll(async () => {
  if (skip) return;
  w = await startTestWarden();
  token = await w.token();
  dir = mkdtempSync(join(tmpdir(), 'warden-psql-'));
  caFile = join(dir, 'warden-ca.pem');
  writeFileSync(caFile, w.ca);
});
afterAll(async () => {
  await w?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Via = 'direct' | 'warden';

function env(via: Via, extra: Record<string, string> = {}): Record<string, string> {
  const pg = testPostgres();
  const common = { PGDATABASE: 'shop', PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'psql-test', PGOPTIONS: '', ...extra };
  return via === 'direct'
    ? { PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: TEST_ROLES.scram.user, PGPASSWORD: TEST_ROLES.scram.password, PGSSLMODE: 'disable', ...common }
    : { PGHOST: w.host, PGPORT: String(w.port), PGUSER: 'agent', PGPASSWORD: token, PGSSLMODE: 'require', ...common };
}

function psql(via: Via, args: string[], input?: string, extraEnv: Record<string, string> = {}): Promise<RunResult> {
  return run(findClient('psql') as string, ['-X', '--no-psqlrc', ...args], { env: env(via, extraEnv), timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
}

async function both(args: string[], input?: string): Promise<{ direct: RunResult; warden: RunResult }> {
  return { direct: await psql('direct', args, input), warden: await psql('warden', args, input) };
}

const visible = (r: RunResult) => ({ code: r.code, stdout: r.stdout, stderr: r.stderr });

describe.skipIf(skip)('psql through warden prints what a direct connection prints', () => {
  it('-c queries (aligned and unaligned output)', async () => {
    const r = await both([
      '-c',
      'SELECT id, full_name, email, salary, birth_date, is_active, avatar FROM customers ORDER BY id',
      '-c',
      'SELECT count(*) AS n, sum(salary) AS total FROM customers',
    ]);
    expect(visible(r.warden)).toEqual(visible(r.direct));
    expect(r.warden.code).toBe(0);
    expect(r.warden.stdout).toContain('Hana 花子 Dummy');
    expect(r.warden.stdout).toContain('(20 rows)');
    const unaligned = await both(['-A', '-t', '-F', '|', '-c', 'SELECT * FROM customers ORDER BY id']);
    expect(visible(unaligned.warden)).toEqual(visible(unaligned.direct));
    expect(unaligned.warden.stdout.trim().split('\n')).toHaveLength(20);
  });

  it('a multi-statement script with \\set ON_ERROR_STOP stops at the first error, exit code 3', async () => {
    const script = [
      '\\set ON_ERROR_STOP on',
      'SELECT count(*) AS n FROM customers ; SELECT id, full_name, ssn FROM customers WHERE id <= 2 ;',
      'BEGIN;',
      "INSERT INTO customers (full_name, email) VALUES ('Script Person', 'script.person@example.com');",
      'SELECT full_name FROM customers WHERE email = $$script.person@example.com$$;',
      'ROLLBACK;',
      'SELECT 1/0 AS boom;',
      "SELECT 'never reached' AS nope;",
      '',
    ].join('\n');
    const r = await both(['-f', '-'], script);
    expect(visible(r.warden)).toEqual(visible(r.direct));
    expect(r.warden.code).toBe(3);
    expect(r.warden.stderr).toContain('ERROR:  division by zero');
    expect(r.warden.stdout).toContain('Script Person');
    expect(r.warden.stdout).not.toContain('never reached');
  });

  it('COPY … TO STDOUT and \\copy … FROM STDIN (data inline in the script)', async () => {
    const script = [
      '\\set ON_ERROR_STOP on',
      'COPY customers (id, full_name, email, ssn, card_number) TO STDOUT;',
      'CREATE TEMP TABLE copy_target (id int, full_name text, email text, ssn text);',
      '\\copy copy_target FROM STDIN',
      '101\tCopy Inperson\tcopy.in1@example.com\t900-11-2222',
      '102\tCopy Inperson Two ✓\t\\N\t\\N',
      '\\.',
      'SELECT * FROM copy_target ORDER BY id;',
      "COPY (SELECT id, full_name FROM customers WHERE id > 18 ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER);",
      '',
    ].join('\n');
    const r = await both(['-f', '-'], script);
    expect(visible(r.warden)).toEqual(visible(r.direct));
    expect(r.warden.code).toBe(0);
    expect(r.warden.stdout).toContain('1\tAlice Testperson\talice.testperson1@example.com\t941-74-7468\t4111111111111111');
    expect(r.warden.stdout).toContain('COPY 2');
    expect(r.warden.stdout).toContain('Copy Inperson Two ✓');
    expect(r.warden.stdout).toContain('id,full_name\n19,Sven Specimen\n20,Tariq Fixture');
  });

  it('a NOTICE from a DO block and an error with DETAIL (23505)', async () => {
    const script = [
      "DO $$ BEGIN RAISE NOTICE 'hello from DO: % customers', (SELECT count(*) FROM customers); END $$;",
      "INSERT INTO customers (full_name, email) VALUES ('Duplicate Alice', 'alice.testperson1@example.com');",
      'SELECT 1 AS still_alive;',
      '',
    ].join('\n');
    const r = await both(['-f', '-'], script);
    expect(visible(r.warden)).toEqual(visible(r.direct));
    expect(r.warden.stderr).toContain('NOTICE:  hello from DO: 20 customers');
    expect(r.warden.stderr).toContain('ERROR:  duplicate key value violates unique constraint "customers_email_key"');
    expect(r.warden.stderr).toContain('DETAIL:  Key (email)=(alice.testperson1@example.com) already exists.');
    expect(r.warden.stdout).toContain('still_alive');
    // Verbose error fields (schema, table, constraint, source location) come through too.
    const verbose = await both(['-c', '\\set VERBOSITY verbose', '-c', "INSERT INTO customers (full_name, email) VALUES ('D', 'alice.testperson1@example.com')"]);
    expect(visible(verbose.warden)).toEqual(visible(verbose.direct));
    expect(verbose.warden.stderr).toMatch(/ERROR:  23505: duplicate key/);
    expect(verbose.warden.stderr).toMatch(/SCHEMA NAME:  public\nTABLE NAME:  customers\nCONSTRAINT NAME:  customers_email_key/);
  });

  it('\\d customers, \\dt, \\dv and \\d+ orders (catalog queries psql builds) equal direct', async () => {
    const r = await both(['-c', '\\d customers', '-c', '\\dt', '-c', '\\dv', '-c', '\\d+ orders']);
    expect(visible(r.warden)).toEqual(visible(r.direct));
    expect(r.warden.stdout).toContain('Table "public.customers"');
    expect(r.warden.stdout).toContain('"customers_email_key" UNIQUE CONSTRAINT, btree (email)');
    expect(r.warden.stdout).toContain('active_customers');
  });
});

describe.skipIf(skip)('psql TLS modes against warden', () => {
  const conninfo = ['-c', '\\conninfo', '-A', '-t', '-c', 'SELECT current_database()'];

  it('sslmode=require with PGSSLROOTCERT=warden’s certificate (libpq then verifies the chain)', async () => {
    const r = await psql('warden', conninfo, undefined, { PGSSLMODE: 'require', PGSSLROOTCERT: caFile });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
    expect(r.stdout).toContain('shop');
  });

  it('sslmode=verify-full for host 127.0.0.1 and for localhost', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const r = await psql('warden', conninfo, undefined, { PGSSLMODE: 'verify-full', PGSSLROOTCERT: caFile, PGHOST: host, PGHOSTADDR: '127.0.0.1' });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('SSL connection');
    }
  });

  it('verify-full with some other CA fails the handshake (the check is real)', async () => {
    const other = join(dir, 'other-ca.pem');
    writeFileSync(other, testPostgres().caCert);
    const r = await psql('warden', conninfo, undefined, { PGSSLMODE: 'verify-full', PGSSLROOTCERT: other });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/certificate verify failed/);
  });

  it('sslmode=disable is refused: tokens only over TLS', async () => {
    const r = await psql('warden', conninfo, undefined, { PGSSLMODE: 'disable' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('FATAL:  warden accepts access tokens only over TLS');
    expect(r.stderr).not.toContain(token.slice(0, 20));
  });
});
