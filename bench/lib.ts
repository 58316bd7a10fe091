// Shared parts of the benchmarks: a PostgreSQL server, pgbouncer, warden in its own process,
// and helpers to run pgbench and read a process's peak memory.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort, startPostgres, type PostgresServer } from '../src/embedded/postgres.js';
import { DEV_ISSUER_DEFAULTS } from '../src/config/sections/identity.js';
import { DevIssuer } from '../src/identity/dev-issuer.js';

export const BENCH_PASSWORD = 'bench-superuser';
export const AGENT_ROLE = 'Warden.Agent';

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/**
 * Temporary directories this run made (a database at pgbench scale 10 is ~320 MB; transcripts add
 * more): removed when the process exits, unless WARDEN_BENCH_KEEP is set (to look at them).
 */
const madeDirs: string[] = [];

export function benchTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (madeDirs.push(dir) === 1 && !process.env.WARDEN_BENCH_KEEP) {
    process.once('exit', () => {
      for (const d of madeDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

export async function benchPostgres(): Promise<PostgresServer> {
  const dir = benchTempDir('warden-bench-pg-');
  return startPostgres({ dataDir: dir, superuserPassword: BENCH_PASSWORD });
}

export function pgbenchPath(pg: PostgresServer): string {
  const local = join(pg.binDir, 'pgbench');
  if (existsSync(local)) return local;
  return 'pgbench';
}

export interface PgbenchResult {
  tps: number;
  latencyMs: number;
  transactions: number;
}

/** Runs pgbench and parses its summary. */
export function pgbench(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<PgbenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const tps = /tps = ([\d.]+)/.exec(out);
      const lat = /latency average = ([\d.]+) ms/.exec(out);
      const tx = /number of transactions actually processed: (\d+)/.exec(out);
      if (code !== 0 || !tps) {
        reject(new Error(`pgbench exited ${code}: ${out.trim().split('\n').slice(-4).join(' | ')}`));
        return;
      }
      resolve({ tps: Number(tps[1]), latencyMs: lat ? Number(lat[1]) : NaN, transactions: tx ? Number(tx[1]) : NaN });
    });
  });
}

export interface WardenProcess {
  port: number;
  pid: number;
  token: string;
  child: ChildProcess;
  dataDir: string;
  adminUrl: string;
  /** Mints another token from the same dev issuer (e.g. an approver's). */
  mint(subject: string, roles: string[]): Promise<string>;
  /** Peak resident memory of the warden process so far, in bytes (VmHWM). */
  peakRss(): number;
  rss(): number;
  /** CPU time the warden process has used so far (user + system, all its threads), in seconds. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** CPU time process `pid` has used so far (user + system, all its threads), in seconds. */
export function procCpuSeconds(pid: number): number {
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ; // utime, stime (fields 14 and 15)
}

export interface BenchTarget {
  name: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/**
 * Starts warden (compiled, dist/) in its own process in front of `targets`, from a YAML
 * configuration written like a user's (`extraYaml` adds sections: rules, masking, transcripts,
 * tls …), read by the real loader.
 */
export async function startWardenProcess(targets: BenchTarget[], extraYaml = ''): Promise<WardenProcess> {
  const dataDir = benchTempDir('warden-bench-');
  const keyFile = join(dataDir, 'keys', 'dev-issuer.pem');
  const adminPort = await freePort();
  const issuer = `http://127.0.0.1:${adminPort}/dev-issuer`;
  const configFile = join(dataDir, 'warden.yaml');
  const env: NodeJS.ProcessEnv = {};
  const yaml = [
    `data_dir: ${JSON.stringify(dataDir)}`,
    `listen: { postgres: { host: 127.0.0.1, port: 0 }, admin: { host: 127.0.0.1, port: ${adminPort} } }`,
    'plaintext_tokens: loopback',
    'log: { level: silent }',
    `identity: { issuers: [], dev_issuer: { enabled: true, issuer: "${issuer}" } }`,
    'targets:',
    ...targets.map((t, i) => {
      env[`BENCH_TARGET_PASSWORD_${i}`] = t.password;
      return `  ${t.name}: { protocol: postgres, host: ${t.host}, port: ${t.port}, database: ${t.database}, user: ${t.user}, password: "\${env:BENCH_TARGET_PASSWORD_${i}}", tls: { mode: disable } }`;
    }),
    'principals:',
    `  - { name: bench-agent, match: { issuer: dev, roles: [${AGENT_ROLE}] }, targets: ["*"], on_token_expiry: continue }`,
    'sessions: { shutdown_grace: 1s }',
    extraYaml.includes('transcripts:') ? '' : 'transcripts: { enabled: false }',
    extraYaml,
    '',
  ].join('\n');
  writeFileSync(configFile, yaml);
  const script = fileURLToPath(new URL('./warden-process.js', import.meta.url));
  // The same V8 flag as the warden command (see src/cli/main.ts's first line).
  const child = spawn(process.execPath, ['--liftoff-only', ...(process.env.WARDEN_NODE_FLAGS ? process.env.WARDEN_NODE_FLAGS.split(' ') : []), script, configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`warden exited with ${code} before it was ready`)));
  });
  const info = JSON.parse(line) as { port: number; pid: number; adminUrl: string };
  const dev = await DevIssuer.load({ enabled: true, issuer, keyFile, audience: DEV_ISSUER_DEFAULTS.audience, tenant: DEV_ISSUER_DEFAULTS.tenant });
  const token = await dev.mint({ subject: 'bench-agent', roles: [AGENT_ROLE], ttlSeconds: 3600 });
  return {
    port: info.port,
    pid: info.pid,
    token,
    child,
    dataDir,
    adminUrl: info.adminUrl,
    mint: (subject, roles) => dev.mint({ subject, roles, ttlSeconds: 3600 }),
    peakRss: () => procStatus(info.pid, 'VmHWM'),
    rss: () => procStatus(info.pid, 'VmRSS'),
    cpuSeconds: () => procCpuSeconds(info.pid),
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface Pgbouncer {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

function pgbouncerBinary(): string | undefined {
  for (const p of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer']) if (existsSync(p)) return p;
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Starts pgbouncer (session pooling, like warden's one upstream per client) in front of `pg`. */
export async function startPgbouncer(pg: PostgresServer, database: string): Promise<Pgbouncer | undefined> {
  const bin = pgbouncerBinary();
  if (!bin) return undefined;
  const dir = benchTempDir('warden-bench-pgb-');
  chmodSync(dir, 0o755);
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  const users = join(dir, 'users.txt');
  writeFileSync(users, `"postgres" "${BENCH_PASSWORD}"\n`);
  writeFileSync(
    ini,
    [
      '[databases]',
      `${database} = host=${pg.host} port=${pg.port} dbname=${database} user=postgres password=${BENCH_PASSWORD}`,
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      `auth_type = plain`,
      `auth_file = ${users}`,
      `pool_mode = session`,
      `max_client_conn = 200`,
      `default_pool_size = 50`,
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  let runAs: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    // pgbouncer refuses to run as root.
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    runAs = { uid, gid };
    for (const f of [dir, ini, users]) chownSync(f, uid, gid);
  }
  const child = spawn(bin, [ini], { stdio: ['ignore', 'ignore', 'pipe'], ...(runAs ?? {}) });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 10_000;
  const net = await import('node:net');
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`pgbouncer did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    pid: child.pid as number,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

export function ratio(a: number, b: number): string {
  return (a / b).toFixed(2);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export interface PipeRelay {
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts the bare socket.pipe relay (bench/pipe-relay.ts), or with `raw` the relay on libuv's
 * handles without the stream layer (bench/raw-relay.ts), in its own process.
 */
export async function startPipeRelay(host: string, port: number, raw = false): Promise<PipeRelay & { pid: number }> {
  const script = fileURLToPath(new URL(raw ? './raw-relay.js' : './pipe-relay.js', import.meta.url));
  const child = spawn(process.execPath, [script], { env: { ...process.env, PIPE_TARGET: `${host}:${port}` }, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`pipe relay exited with ${code}`)));
  });
  const ready = JSON.parse(line) as { port: number; pid: number };
  return {
    port: ready.port,
    pid: ready.pid,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Total size of the files under `dir` (recursively), in bytes. */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return total;
}
