// What recording costs per statement, on one core, without the network: the PostgreSQL statement
// flow driven with the messages of one `pgbench -S` transaction (Query → RowDescription, DataRow,
// CommandComplete, ReadyForQuery), with and without a real transcript store (fsync interval,
// digest capture), and the recorder's layers on their own. Sessions are interleaved as pgbench's
// clients are, and the loop yields to the event loop as a relay does between reads, so the
// writer's batched writes happen inside the measurement. Compare rows within one run. Each row is
// the process's CPU time per statement (user + system, all threads: the writer's fsyncs count),
// which a busy machine disturbs far less than elapsed time; elapsed time is printed beside it.
//
//   npm run build && node dist/bench/recording.js [--statements 40000] [--rounds 7]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeDataRow, encodeCommandComplete, encodeRowDescription } from '../protocols/postgres/backend-messages.js';
import { Backend, Frontend, TransactionStatus } from '../protocols/postgres/codes.js';
import { encodeQuery } from '../protocols/postgres/frontend-messages.js';
import { encodeReadyForQuery } from '../protocols/postgres/session-messages.js';
import { transcriptConfig } from '../src/audit/config.js';
import { encodeRecordJson, MERGED_RESULT_MEMBER, RECORD_KIND } from '../src/audit/frame.js';
import { resultJson, statementMembers } from '../src/audit/record-json.js';
import { TranscriptStore, type Recorder } from '../src/audit/recorder.js';
import { RowCapture } from '../src/audit/row-capture.js';
import type { Principal } from '../src/identity/types.js';
import { silentLogger } from '../src/log.js';
import { SessionFlow } from '../src/pg/flow/session-flow.js';
import { summarize } from '../src/pg/flow/verdicts.js';
import { OutputBatch } from '../src/pg/output-batch.js';
import { classifyStatement } from '../src/sql/fast.js';
import { initSqlParser } from '../src/sql/index.js';

const { values: args } = parseArgs({ options: { statements: { type: 'string', default: '40000' }, rounds: { type: 'string', default: '7' } } });
const STATEMENTS = Number(args.statements);
const ROUNDS = Number(args.rounds);
const SESSIONS = 8;

const principal: Principal = {
  name: 'bench-agent',
  issuerName: 'dev',
  issuer: 'http://127.0.0.1/dev-issuer',
  subject: 'bench-agent',
  subjectClaim: 'azp',
  roles: ['Warden.Agent'],
  groups: [],
  groupsOverage: false,
  audience: 'api://warden',
} as Principal;

// pgbench -S: one SELECT by a random key per transaction, in the simple protocol.
const queries = Array.from({ length: 1024 }, (_, i) => encodeQuery(`SELECT abalance FROM pgbench_accounts WHERE aid = ${1 + ((i * 7919) % 1_000_000)};`));
const response = Buffer.concat([
  encodeRowDescription([{ name: 'abalance', tableOid: 16397, columnAttr: 2, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }]),
  encodeDataRow([Buffer.from('0')]),
  encodeCommandComplete('SELECT 1'),
  encodeReadyForQuery(TransactionStatus.idle),
]);
/** [code, start, end] of each message of the response. */
const responseMessages: Array<[number, number, number]> = [];
for (let p = 0; p < response.length; ) {
  const len = response.readInt32BE(p + 1);
  responseMessages.push([response[p] as number, p, p + 1 + len]);
  p += 1 + len;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function flowFor(sessionId: string, recorder: Recorder | undefined): SessionFlow {
  return new SessionFlow({
    sessionId,
    principal,
    target: 'bench',
    clientAddress: '127.0.0.1',
    instanceId: 'bench',
    logger: silentLogger,
    policy: undefined,
    approvals: undefined,
    masker: undefined,
    recorder,
    capture: { mode: 'digest', firstRows: 10 },
    durableBeforeForward: false,
    recordingHealthy: () => true,
    inject: () => undefined,
    expectReady: () => undefined,
    onQuery: () => undefined,
    onVerdict: () => undefined,
  });
}

/** µs per statement through SESSIONS flows, yielding every 8 statements per session (a read's worth). */
async function runFlows(flows: SessionFlow[]): Promise<[number, number]> {
  const out = new OutputBatch();
  const started = startClock();
  for (let i = 0; i < STATEMENTS / SESSIONS; i++) {
    for (const flow of flows) {
      const q = queries[i % queries.length] as Buffer;
      await flow.client.onMessage(Frontend.query, q, 0, q.length, out);
      for (const [code, start, end] of responseMessages) {
        if (code === Backend.dataRow && !flow.server.whole(code, end - start - 1)) out.add(response, start, end);
        else await flow.server.onMessage(code, response, start, end, out);
      }
      out.clear();
    }
    if (i % 8 === 7) await yieldNow();
  }
  return perStatement(started);
}

interface Clock {
  wall: number;
  cpu: NodeJS.CpuUsage;
}

function startClock(): Clock {
  return { wall: performance.now(), cpu: process.cpuUsage() };
}

/** [CPU µs, elapsed µs] per statement since `started`. */
function perStatement(started: Clock): [number, number] {
  const cpu = process.cpuUsage(started.cpu);
  return [(cpu.user + cpu.system) / STATEMENTS, ((performance.now() - started.wall) * 1000) / STATEMENTS];
}

async function withStore<T>(fn: (store: TranscriptStore) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-rec-'));
  const store = await TranscriptStore.open(transcriptConfig(dir, { instanceId: 'bench', fsync: 'interval' }));
  try {
    return await fn(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function startedRecorders(store: TranscriptStore, tag: string): Promise<Recorder[]> {
  const recs = Array.from({ length: SESSIONS }, () => store.recorder());
  await Promise.all(recs.map((r, i) => r.sessionStart({ sessionId: `${tag}-${i}`, protocol: 'postgres', target: 'bench', principal, client: { address: '127.0.0.1', port: 40000 + i, tls: null } })));
  return recs;
}

const sql = 'SELECT abalance FROM pgbench_accounts WHERE aid = 4242;';
await initSqlParser();
const cls = summarize(classifyStatement(sql));
const columns = [{ name: 'abalance', type: 'int4', masked: null }];
const row = encodeDataRow([Buffer.from('0')]);

/** µs per statement for the recorder calls the flow makes: statement, then its result (digest). */
async function runRecorder(recs: Recorder[]): Promise<[number, number]> {
  const started = startClock();
  for (let i = 0; i < STATEMENTS / SESSIONS; i++) {
    for (const r of recs) {
      const st = i + 1;
      r.statementNoWait({ text: sql, classification: cls, verdict: 'allow', via: 'simple' });
      const capture = new RowCapture({ mode: 'digest', firstRows: 10 });
      capture.add(row);
      r.resultNoWait({ statementId: st, columns, rows: 1, bytes: capture.bytes, capture: capture.finish(), tag: 'SELECT 1' });
    }
    if (i % 8 === 7) await yieldNow();
  }
  return perStatement(started);
}

/** µs per statement to serialize and hash its record (the statement with its result in it), nothing else. */
function runEncode(): [number, number] {
  const started = startClock();
  let prev = '0'.repeat(64);
  const ts = Date.now(); // format 2: milliseconds
  const sid = JSON.stringify('sess-0');
  const digest = { mode: 'digest' as const, sha256: 'ab'.repeat(32), rows: 1 };
  for (let i = 0; i < STATEMENTS; i++) {
    const st = statementMembers({ st: i + 1, text: sql, cls, verdict: 'allow', via: 'simple' });
    const result = resultJson({ st: i + 1, columns, rows: 1, bytes: row.length, capture: digest, ms: 0.123, tag: 'SELECT 1' }, false);
    prev = encodeRecordJson(i, ts, prev, RECORD_KIND.statement, sid, `${st},"${MERGED_RESULT_MEMBER}":${result}}`).hash;
  }
  return perStatement(started);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** [CPU, elapsed] µs per statement of each round. */
const results: Record<string, Array<[number, number]>> = { 'flow, no recording': [], 'flow + recording': [], 'recorder calls only': [], 'serialize + hash only': [] };
let bytesPerStatement = 0;
let round = 0;
for (; round < ROUNDS; round++) {
  results['flow, no recording']?.push(await runFlows(Array.from({ length: SESSIONS }, (_, i) => flowFor(`plain-${round}-${i}`, undefined))));
  await withStore(async (store) => {
    const recs = await startedRecorders(store, `flow-${round}`);
    results['flow + recording']?.push(await runFlows(recs.map((r, i) => flowFor(`flow-${round}-${i}`, r))));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the last batch's write
    bytesPerStatement = statSync(store.writer.activeFile).size / STATEMENTS;
  });
  await withStore(async (store) => results['recorder calls only']?.push(await runRecorder(await startedRecorders(store, `rec-${round}`))));
  results['serialize + hash only']?.push(runEncode());
}
const cpu = (name: string): number[] => (results[name] ?? []).map((x) => x[0]);
const wall = (name: string): number[] => (results[name] ?? []).map((x) => x[1]);
log(`recording cost per pgbench -S statement (${STATEMENTS} statements × ${ROUNDS} rounds, ${SESSIONS} sessions; median CPU µs/statement, elapsed beside it)`);
for (const name of Object.keys(results)) {
  log(`  ${name.padEnd(22)} ${median(cpu(name)).toFixed(2).padStart(7)} µs   [${cpu(name).map((x) => x.toFixed(1)).join(' ')}]   elapsed ${median(wall(name)).toFixed(2)} µs`);
}
const flow = median(cpu('flow, no recording'));
const rec = median(cpu('flow + recording'));
log(`  recording adds        ${(rec - flow).toFixed(2).padStart(7)} µs CPU per statement to the flow; ${Math.round(bytesPerStatement)} transcript bytes per statement`);
