// Approval-to-forward latency: how long after an approver's decision a held statement runs and
// its result reaches the agent. An agent sends a held statement; as soon as the request appears
// the benchmark approves it through the admin API and times from the approval's HTTP response to
// the client receiving the statement's result.
//
//   node dist/bench/approvals.js [--rounds 30]
import { parseArgs } from 'node:util';
import pg from 'pg';
import { benchPostgres, BENCH_PASSWORD, log, median, startWardenProcess, type BenchTarget } from './lib.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '30' } } });
const rounds = Number(values.rounds);
const APPROVER = 'Bench.Approver';

const server = await benchPostgres();
try {
  const target: BenchTarget = { name: 'bench', host: server.host, port: server.port, database: 'postgres', user: 'postgres', password: BENCH_PASSWORD };
  const warden = await startWardenProcess(
    [target],
    `
rules:
  - { name: ddl, match: { kinds: [create, drop] }, action: hold }
approvals:
  timeout: 1m
  approvers:
    - { name: bench-approvers, match: { issuer: dev, roles: [${APPROVER}] } }
transcripts: { enabled: true }
`,
  );
  const approver = await warden.mint('bench-approver', [APPROVER]);
  const client = new pg.Client({ host: '127.0.0.1', port: warden.port, user: 'agent', password: warden.token, database: 'bench' });
  const noticed: string[] = [];
  client.on('notice', (n) => noticed.push(n.message ?? ''));
  await client.connect();
  const latencies: number[] = [];
  const holds: number[] = [];
  const fromRequest: number[] = [];
  for (let i = 0; i < rounds; i++) {
    noticed.length = 0;
    const sent = performance.now();
    let done = 0;
    const q = client.query(i % 2 ? 'DROP TABLE IF EXISTS bench_approval' : 'CREATE TABLE IF NOT EXISTS bench_approval (id int)').then(() => {
      done = performance.now();
    });
    let id: string | undefined;
    while (!id) {
      await new Promise((r) => setTimeout(r, 2));
      id = noticed.map((n) => /request (\S+),/.exec(n)?.[1]).find(Boolean);
    }
    const held = performance.now();
    const asked = performance.now();
    const res = await fetch(`${warden.adminUrl}/approvals/${id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${approver}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'benchmark' }),
    });
    const approved = performance.now();
    if (res.status !== 200) throw new Error(`approve answered ${res.status}`);
    await q;
    latencies.push(done - approved);
    fromRequest.push(done - asked);
    holds.push(held - sent);
  }
  await client.end();
  await warden.stop();
  const sorted = [...latencies].sort((a, b) => a - b);
  const report = {
    benchmark: 'approval-to-forward latency (embedded store, same instance)',
    rounds,
    heldNoticeMs: { median: Number(median(holds).toFixed(2)) },
    approveRequestToResultMs: { median: Number(median(fromRequest).toFixed(2)) },
    approveToResultMs: { median: Number(median(latencies).toFixed(2)), p95: Number((sorted[Math.floor(sorted.length * 0.95)] ?? NaN).toFixed(2)), max: Number((sorted.at(-1) ?? NaN).toFixed(2)) },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  log('done');
} finally {
  await server.stop();
}
