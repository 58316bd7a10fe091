// A large result (200k rows by default) read with tedious through warden's TDS relay vs straight
// from the SQL Server stand-in, each in its own process: wall time as tedious sees it (every row
// delivered), the ratio warden/direct per mode — TLS in PRELOGIN on both hops ("tls"), and
// plaintext ("plain", tokens allowed from loopback) — and warden's peak resident memory, which
// must stay flat however large the result (streaming with backpressure). warden's CPU time per
// query is reported too: on a shared machine it is steadier than wall time.
//
//   npm run build && node dist/bench/tds-large-result.js [--rows 200000] [--rounds 3] [--transcripts]
//   npx tsx bench/tds-large-result.ts …   (from source, no build)
//
// --transcripts records the sessions (digest capture), to see what recording costs.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Connection, Request, type ConnectionConfiguration } from 'tedious';
import type { TargetConfig, TdsTargetConfig, WardenConfig } from '../src/config/types.js';
import { defaultTranscripts } from '../src/config/sections/transcripts.js';
import { freePort } from '../src/embedded/postgres.js';
import { DevIssuer } from '../src/identity/dev-issuer.js';
import { silentLogger } from '../src/log.js';
import { startWarden } from '../src/server.js';
import { benchPostgres, benchTempDir, BENCH_PASSWORD, log, median, ratio } from './lib.js';

const ROLE = process.env.WARDEN_TDS_BENCH_ROLE;
const AGENT_ROLE = 'Warden.Agent';
const STANDIN_LOGIN = { user: 'bench', password: 'bench-standin-1' };

if (ROLE === 'warden') {
  // The warden process: config from the environment, one JSON line when ready.
  const raw = JSON.parse(process.env.WARDEN_BENCH_CONFIG ?? '{}') as Omit<WardenConfig, 'targets' | 'transcripts'> & {
    targets: TargetConfig[];
    transcripts?: Omit<NonNullable<WardenConfig['transcripts']>, 'targets'>;
  };
  const config: WardenConfig = {
    ...raw,
    targets: new Map(raw.targets.map((t) => [t.name, t])),
    ...(raw.transcripts ? { transcripts: { ...raw.transcripts, targets: new Map() } } : {}),
  } as WardenConfig;
  const warden = await startWarden(config, { logger: silentLogger });
  process.stdout.write(`${JSON.stringify({ port: warden.tds?.port, pid: process.pid, cert: warden.certificate })}\n`);
  process.on('SIGTERM', () => void warden.close(100).then(() => process.exit(0)));
} else {
  await driver();
}

/** Node arguments to run a sibling script: compiled (dist/) as is, from source through tsx. */
function script(relative: string): string[] {
  const self = fileURLToPath(import.meta.url);
  const fromSource = self.endsWith('.ts');
  const path = fileURLToPath(new URL(fromSource ? relative.replace(/\.js$/, '.ts') : relative, import.meta.url));
  return fromSource ? ['--import', 'tsx', path] : [path];
}

function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time the process has used (user + system), in milliseconds: unaffected by other load on the machine. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before it was ready`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function connect(config: ConnectionConfiguration): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const c = new Connection(config);
    c.on('error', () => undefined);
    c.connect((err) => (err ? reject(err) : resolve(c)));
  });
}

/** Runs the query and counts rows as tedious delivers them; resolves to [ms, rows]. */
function timeQuery(c: Connection, sql: string): Promise<[number, number]> {
  return new Promise((resolve, reject) => {
    let rows = 0;
    const started = process.hrtime.bigint();
    const req = new Request(sql, (err) => (err ? reject(err) : resolve([Number(process.hrtime.bigint() - started) / 1e6, rows])));
    req.on('row', () => rows++);
    c.execSqlBatch(req);
  });
}

async function driver(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '200000' },
      rounds: { type: 'string', default: '3' },
      transcripts: { type: 'boolean', default: false },
    },
  });
  const rows = Number(values.rows);
  const rounds = Number(values.rounds);
  const server = await benchPostgres();
  const children: ChildProcess[] = [];
  try {
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    await admin.query('CREATE DATABASE big');
    await admin.end();
    const db = new pg.Client({ connectionString: server.url('big') });
    await db.connect();
    log(`creating a ${rows}-row table …`);
    await db.query(`CREATE TABLE people (id int PRIMARY KEY, full_name varchar(100), email varchar(200), ssn char(11), salary numeric(12,2), created_at timestamp)`);
    await db.query(`INSERT INTO people SELECT g, 'Person ' || g, 'person' || g || '@example.com', lpad((g % 1000000000)::text, 11, '0'),
      (g % 200000)::numeric(12,2), timestamp '2024-01-01' + g * interval '1 minute' FROM generate_series(1, ${rows}) g`);
    await db.query('VACUUM ANALYZE people');
    await db.end();

    // The stand-in, in its own process.
    const standinPort = await freePort();
    const pgUrl = `postgres://postgres:${encodeURIComponent(BENCH_PASSWORD)}@${server.host}:${server.port}/big`;
    const standin = spawn(process.execPath, [...script('../fixtures/sqlserver-standin/main.js'), '--pg-url', pgUrl, '--port', String(standinPort), '--tls', 'self-signed', '--login', `${STANDIN_LOGIN.user}:${STANDIN_LOGIN.password}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(standin);
    await firstLine(standin, 'the stand-in');

    // warden, in its own process.
    const dataDir = benchTempDir('warden-tds-bench-');
    const adminPort = await freePort();
    const issuer = `http://127.0.0.1:${adminPort}/dev-issuer`;
    const keyFile = join(dataDir, 'dev-issuer.pem');
    const target = (name: string, tls: TdsTargetConfig['tls']): TdsTargetConfig => ({
      name, protocol: 'tds', host: '127.0.0.1', port: standinPort, database: 'big', user: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password, tls, connectTimeout: 10_000,
    });
    const config = {
      dataDir,
      listen: { tds: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: adminPort } },
      tls: { selfSigned: true },
      plaintextTokens: 'loopback',
      log: { level: 'silent' },
      identity: { issuers: [], devIssuer: { enabled: true, issuer, keyFile, audience: 'api://warden', tenant: '11111111-2222-3333-4444-555555555555' } },
      principals: [{ name: 'bench-agent', match: { issuer: 'dev', roles: [AGENT_ROLE] }, targets: ['*'], onTokenExpiry: 'continue' }],
      sessions: { shutdownGrace: 1000, maxMessageBytes: 1 << 30, loginTimeout: 10_000 },
      targets: [target('big', { mode: 'require' }), target('big_plain', { mode: 'disable' })],
      ...(values.transcripts ? { transcripts: { ...defaultTranscripts(dataDir), capture: 'digest', targets: undefined } } : {}),
    };
    const wardenChild = spawn(process.execPath, script('./tds-large-result.js'), { env: { ...process.env, WARDEN_TDS_BENCH_ROLE: 'warden', WARDEN_BENCH_CONFIG: JSON.stringify(config) }, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(wardenChild);
    const info = JSON.parse(await firstLine(wardenChild, 'warden')) as { port: number; pid: number };
    const dev = await DevIssuer.load({ enabled: true, issuer, keyFile, audience: 'api://warden', tenant: '11111111-2222-3333-4444-555555555555' });
    const token = await dev.mint({ subject: 'bench-agent', roles: [AGENT_ROLE], ttlSeconds: 3600 });

    const options = (port: number, database: string, encrypt: boolean): ConnectionConfiguration['options'] => ({
      port, database, encrypt, trustServerCertificate: true, serverName: 'localhost', requestTimeout: 0, rowCollectionOnRequestCompletion: false, rowCollectionOnDone: false,
    });
    const setups = {
      'tls/direct': { server: '127.0.0.1', authentication: { type: 'default', options: { userName: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password } }, options: options(standinPort, 'big', true) },
      'tls/warden': { server: '127.0.0.1', authentication: { type: 'default', options: { userName: 'agent', password: token } }, options: options(info.port, 'big', true) },
      'plain/direct': { server: '127.0.0.1', authentication: { type: 'default', options: { userName: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password } }, options: options(standinPort, 'big', false) },
      'plain/warden': { server: '127.0.0.1', authentication: { type: 'default', options: { userName: 'agent', password: token } }, options: options(info.port, 'big_plain', false) },
    } as Record<string, ConnectionConfiguration>;
    const idleRss = procStatus(info.pid, 'VmRSS');
    const times: Record<string, number[]> = {};
    const wardenCpu: Record<string, number[]> = {};
    const sql = 'SELECT * FROM people';
    // One warm-up of each, then alternate the order round by round.
    for (const [name, cfg] of Object.entries(setups)) {
      const c = await connect(cfg);
      const [, n] = await timeQuery(c, sql);
      if (n !== rows) throw new Error(`${name}: ${n} rows, expected ${rows}`);
      c.close();
    }
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['tls', 'plain']) {
        const order = r % 2 ? ['warden', 'direct'] : ['direct', 'warden'];
        for (const via of order) {
          const key = `${mode}/${via}`;
          const c = await connect(setups[key] as ConnectionConfiguration);
          const cpuBefore = cpuMs(info.pid);
          const [ms, n] = await timeQuery(c, sql);
          if (via === 'warden') (wardenCpu[mode] ??= []).push(cpuMs(info.pid) - cpuBefore);
          c.close();
          if (n !== rows) throw new Error(`${key}: ${n} rows, expected ${rows}`);
          (times[key] ??= []).push(ms);
          log(`round ${r + 1} ${key.padEnd(13)} ${ms.toFixed(0)} ms`);
        }
      }
    }
    const m = (k: string): number => median(times[k] ?? [NaN]);
    const report = {
      benchmark: `${rows}-row result, tedious, TDS through warden vs the stand-in directly`,
      rounds,
      transcripts: values.transcripts ? 'digest' : 'off',
      ms: Object.fromEntries(Object.keys(times).sort().map((k) => [k, Math.round(m(k))])),
      ratios: {
        tls_warden_vs_direct: Number(ratio(m('tls/warden'), m('tls/direct'))),
        plain_warden_vs_direct: Number(ratio(m('plain/warden'), m('plain/direct'))),
      },
      // warden's own CPU per query: what the relay costs, whatever else runs on the machine.
      wardenCpuMsPerQuery: Object.fromEntries(Object.entries(wardenCpu).map(([k, v]) => [k, Math.round(median(v))])),
      wardenRssMiB: { idle: Math.round(idleRss / 1048576), peak: Math.round(procStatus(info.pid, 'VmHWM') / 1048576) },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    for (const c of children.reverse()) await stop(c);
    await server.stop();
  }
}
