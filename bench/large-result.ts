// A 1M-row result through warden vs a direct connection: wall time as psql sees it (SELECT and
// COPY … TO STDOUT), warden's CPU per query, and warden's peak resident memory, which must stay
// flat however large the result is (streaming with backpressure).
//
//   node dist/bench/large-result.js [--rows 1000000] [--rounds 3]
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { TWO_MASKED_COLUMNS } from './configs.js';
import { benchPostgres, BENCH_PASSWORD, log, median, ratio, startWardenProcess, type BenchTarget } from './lib.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    /** Mask two of the five columns (ssn, email) on the way through warden. */
    masked: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const rounds = Number(values.rounds);

function timePsql(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`psql exited ${code}: ${err}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

/** CPU time (user + system) a process has used so far, in ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const server = await benchPostgres();
try {
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE big');
  await admin.end();
  const db = new pg.Client({ connectionString: server.url('big') });
  await db.connect();
  log(`creating a ${rows}-row table …`);
  await db.query(`CREATE TABLE people AS
    SELECT g AS id, 'Person ' || g AS full_name, 'person' || g || '@example.com' AS email,
           lpad((g % 1000000000)::text, 9, '0') AS ssn, (g % 200000)::numeric(12,2) AS salary
    FROM generate_series(1, ${rows}) g`);
  await db.query('VACUUM ANALYZE people');
  await db.end();

  const target: BenchTarget = { name: 'big', host: server.host, port: server.port, database: 'big', user: 'postgres', password: BENCH_PASSWORD };
  const warden = await startWardenProcess([target], values.masked ? TWO_MASKED_COLUMNS : '');
  const idleRss = warden.rss();
  const psql = existsSync(join(server.binDir, 'psql')) ? join(server.binDir, 'psql') : 'psql';
  const queries = {
    select: ['-X', '-q', '-c', 'SELECT * FROM people', '-o', '/dev/null'],
    copy: ['-X', '-q', '-c', 'COPY people TO STDOUT', '-o', '/dev/null'],
  };
  const setups = {
    direct: { args: ['-h', server.host, '-p', String(server.port), '-U', 'postgres', 'big'], env: { PGPASSWORD: BENCH_PASSWORD, PGSSLMODE: 'disable' } },
    warden: { args: ['-h', '127.0.0.1', '-p', String(warden.port), '-U', 'agent', 'big'], env: { PGPASSWORD: warden.token, PGSSLMODE: 'disable' } },
  };
  const times: Record<string, number[]> = {};
  // warden's own CPU per query: steadier than wall time on a shared machine.
  const cpu: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [q, qargs] of Object.entries(queries)) {
      const order = r % 2 ? (['warden', 'direct'] as const) : (['direct', 'warden'] as const);
      for (const s of order) {
        const cpu0 = cpuMs(warden.pid);
        const ms = await timePsql(psql, [...setups[s].args, ...qargs], setups[s].env);
        (times[`${q}/${s}`] ??= []).push(ms);
        if (s === 'warden') (cpu[q] ??= []).push(cpuMs(warden.pid) - cpu0);
        log(`round ${r + 1} ${q.padEnd(6)} ${s.padEnd(6)} ${ms.toFixed(0)} ms`);
      }
    }
  }
  const m = (k: string): number => median(times[k] ?? [NaN]);
  const report = {
    benchmark: `${rows}-row result, psql${values.masked ? ', two masked columns' : ''}`,
    rounds,
    ms: Object.fromEntries(Object.keys(times).map((k) => [k, Math.round(m(k))])),
    ratios: {
      select_warden_vs_direct: Number(ratio(m('select/warden'), m('select/direct'))),
      copy_warden_vs_direct: Number(ratio(m('copy/warden'), m('copy/direct'))),
    },
    wardenCpuMs: Object.fromEntries(Object.entries(cpu).map(([q, xs]) => [q, median(xs)])),
    wardenRssMiB: { idle: Math.round(idleRss / 1048576), peak: Math.round(warden.peakRss() / 1048576) },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  await warden.stop();
} finally {
  await server.stop();
}
