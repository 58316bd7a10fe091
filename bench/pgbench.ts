// pgbench -S through warden vs a direct connection vs pgbouncer, interleaved in one run so that
// all three see the same machine state; reports median tps and ratios, and the CPU time each
// warden process used per transaction (user + system, from /proc): on a shared machine that moves
// less with the neighbours' load than tps does.
//
//   node dist/bench/pgbench.js [--seconds 10] [--rounds 3] [--warmup 3] [--clients 8] [--threads 2] [--mode simple|extended|prepared]
//                              [--scale 10] [--record] [--thread-batch 20] [--rules] [--flow] [--tls]
import { parseArgs } from 'node:util';
import pg from 'pg';
import { join } from 'node:path';
import { RECOMMENDED_RULES } from './configs.js';
import { benchPostgres, BENCH_PASSWORD, log, median, pgbench, pgbenchPath, procCpuSeconds, ratio, startPgbouncer, startPipeRelay, startWardenProcess, dirBytes, type BenchTarget, type WardenProcess } from './lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    /**
     * Seconds each setup runs once, uncounted, before the rounds: the JIT compiles warden's hot
     * path (and the recording thread's, a separate isolate that starts cold) before anything counts.
     */
    warmup: { type: 'string', default: '3' },
    clients: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'simple' },
    scale: { type: 'string', default: '10' },
    tls: { type: 'boolean', default: false },
    /**
     * Also run warden with transcripts on (fsync interval, digest capture), to report recording on vs
     * off: as wire records (the default for sessions no rule touches), on the recording thread
     * (transcripts.wire: false) and in line.
     */
    record: { type: 'boolean', default: false },
    /**
     * The recording thread's batch in ms (transcripts.recording_thread_batch) for the runs with
     * transcripts; its lag limit is set to five times that (at least the default 100 ms).
     */
    'thread-batch': { type: 'string', default: '20' },
    /** Also run warden with the recommended statement rules loaded, to report rules vs none. */
    rules: { type: 'boolean', default: false },
    /** Also run warden with the recommended rules and no transcripts: the statement flow without recording. */
    flow: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const warmup = Number(values.warmup);

const server = await benchPostgres();
try {
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const bin = pgbenchPath(server);
  log(`initialising pgbench scale ${values.scale} …`);
  await pgbench(bin, ['-i', '-q', '-s', String(values.scale), '-h', server.host, '-p', String(server.port), '-U', 'postgres', 'bench'], {
    PGPASSWORD: BENCH_PASSWORD,
  }).catch((e: Error) => {
    // pgbench -i prints no tps line; treat "done" as success
    if (!/done/.test(e.message)) throw e;
  });

  const target: BenchTarget = { name: 'bench', host: server.host, port: server.port, database: 'bench', user: 'postgres', password: BENCH_PASSWORD };
  const tlsYaml = values.tls ? 'tls: { self_signed: true }' : '';
  const warden = await startWardenProcess([target], tlsYaml);
  // The recommended statement rules (docs/approvals.md), and transcripts (fsync interval, digest capture).
  const batchMs = Number(values['thread-batch']);
  const recordingYaml = `transcripts: { enabled: true, capture: digest, recording_thread_batch: ${batchMs}ms, recording_thread_max_lag: ${Math.max(100, batchMs * 5)}ms }`;
  const recording = values.record || values.rules ? await startWardenProcess([target], `${tlsYaml}\n${recordingYaml}`) : undefined;
  // The same, recorded as statements by the statement flow on the recording thread …
  const threaded = values.record ? await startWardenProcess([target], `${tlsYaml}\n${recordingYaml.replace(/ }$/, ', wire: false }')}`) : undefined;
  // … and on the event loop.
  const inline = values.record ? await startWardenProcess([target], `${tlsYaml}\ntranscripts: { enabled: true, capture: digest, wire: false, recording_thread: false }`) : undefined;
  // Rules are compared against the same warden without them (both recording, as deployed).
  const rules = values.rules ? await startWardenProcess([target], `${tlsYaml}\n${recordingYaml}\n${RECOMMENDED_RULES}`) : undefined;
  // Rules alone run the statement flow (decode, classify, verdict) without recording anything.
  const flow = values.flow ? await startWardenProcess([target], `${tlsYaml}\n${RECOMMENDED_RULES}`) : undefined;
  const bouncer = await startPgbouncer(server, 'bench');
  if (!bouncer) log('pgbouncer not installed: its column is skipped (Debian package pgbouncer)');

  const common = ['-S', '-n', '-c', String(values.clients), '-j', String(values.threads), '-T', String(seconds), '-M', String(values.mode)];
  // `pid`: the process in the path whose CPU time per transaction is reported (warden, a relay, pgbouncer).
  const setups: { name: string; args: string[]; env: NodeJS.ProcessEnv; warden?: WardenProcess; pid?: number }[] = [
    { name: 'direct', args: ['-h', server.host, '-p', String(server.port), '-U', 'postgres', 'bench'], env: { PGPASSWORD: BENCH_PASSWORD, PGSSLMODE: 'disable' } },
  ];
  const throughWarden = (name: string, w: WardenProcess): void => {
    setups.push({ name, args: ['-h', '127.0.0.1', '-p', String(w.port), '-U', 'agent', 'bench'], env: { PGPASSWORD: w.token, PGSSLMODE: values.tls ? 'require' : 'disable' }, warden: w, pid: w.pid });
  };
  // warden and warden+rec run back to back in every round (but the one where the rotation splits
  // them): their per-round ratio (recording_on_vs_off_paired) sees the least drift of the machine.
  throughWarden('warden', warden);
  if (recording) throughWarden('warden+rec', recording);
  if (threaded) throughWarden('warden+rec-thread', threaded);
  if (inline) throughWarden('warden+rec-inline', inline);
  if (rules) throughWarden('warden+rec+rules', rules);
  if (flow) throughWarden('warden+rules', flow);
  const superuser = (name: string, port: number, pid: number): void => {
    setups.push({ name, args: ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'bench'], env: { PGPASSWORD: BENCH_PASSWORD, PGSSLMODE: 'disable' }, pid });
  };
  // The floors a Node.js relay stands on: socket.pipe (public API), and libuv's handles without
  // the stream layer (internal API, bench/raw-relay.ts).
  const pipe = await startPipeRelay(server.host, server.port);
  superuser('pipe', pipe.port, pipe.pid);
  const raw = await startPipeRelay(server.host, server.port, true);
  superuser('raw-relay', raw.port, raw.pid);
  if (bouncer) superuser('pgbouncer', bouncer.port, bouncer.pid);

  const results = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  /** The recording thread of `warden+rec-thread`: its lag during each run, and how long it took to catch up after it. */
  const threadLags: number[] = [];
  const catchUps: number[] = [];
  /** warden+rec-thread's tps as pgbench reported it, before its catch-up was counted. */
  const tpsBeforeCatchUp: number[] = [];
  /** Microseconds of CPU per transaction of the setup's proxy process, per round. */
  const cpu = new Map<string, number[]>(setups.filter((s) => s.pid !== undefined).map((s) => [s.name, []]));
  if (warmup > 0) {
    for (const s of setups) {
      await pgbench(bin, [...common.map((a, i) => (common[i - 1] === '-T' ? String(warmup) : a)), ...s.args], s.env);
      if (s.name === 'warden+rec-thread' && s.warden?.adminUrl) await watchThread(s.warden.adminUrl).stop();
    }
    log(`warmed up: ${warmup} s per setup, not counted`);
  }
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round so no setup always runs first or last.
    const order = setups.map((_, i) => setups[(i + r) % setups.length]!);
    for (const s of order) {
      const cpuBefore = s.pid === undefined ? undefined : procCpuSeconds(s.pid);
      const watch = s.name === 'warden+rec-thread' && s.warden?.adminUrl ? watchThread(s.warden.adminUrl) : undefined;
      const res = await pgbench(bin, [...common, ...s.args], s.env);
      let tps = res.tps;
      if (watch) {
        // The thread records at background priority and may still be behind when pgbench ends: the
        // run counts until it has caught up, so no recording work is left for the next run to pay.
        const { lags, catchUpMs } = await watch.stop();
        threadLags.push(...lags);
        catchUps.push(catchUpMs);
        tpsBeforeCatchUp.push(res.tps);
        tps = (res.tps * seconds) / (seconds + catchUpMs / 1000);
        log(`round ${r + 1} ${s.name}: recording thread lag median ${median(lags).toFixed(0)} ms, max ${Math.max(...lags).toFixed(0)} ms; caught up ${catchUpMs.toFixed(0)} ms after pgbench ended`);
      }
      results.get(s.name)!.push(tps);
      const perTx = s.pid !== undefined && cpuBefore !== undefined ? ((procCpuSeconds(s.pid) - cpuBefore) * 1e6) / res.transactions : undefined;
      if (perTx !== undefined) cpu.get(s.name)!.push(perTx);
      log(`round ${r + 1} ${s.name.padEnd(9)} ${tps.toFixed(0)} tps (latency ${res.latencyMs} ms)${perTx === undefined ? '' : `, proxy ${perTx.toFixed(1)} µs CPU/transaction`}`);
    }
  }
  const med = (n: string): number => median(results.get(n) ?? [NaN]);
  const cpuMed = (n: string): number => median(cpu.get(n) ?? [NaN]);
  /** Each round's own ratio of `a`'s tps to `b`'s. */
  const roundRatios = (a: string, b: string): number[] => {
    const ys = results.get(b) ?? [];
    return (results.get(a) ?? []).map((x, i) => x / (ys[i] as number));
  };
  const pairedRatio = (a: string, b: string): number => median(roundRatios(a, b));
  const report = {
    benchmark: 'pgbench -S',
    mode: values.mode,
    clients: Number(values.clients),
    seconds,
    rounds,
    warmupSeconds: warmup,
    ...(values.record || values.rules ? { threadBatchMs: batchMs } : {}),
    wardenTls: Boolean(values.tls),
    tps: Object.fromEntries(setups.map((s) => [s.name, Math.round(med(s.name))])),
    // How far the rounds' own ratios spread: on a shared machine, more telling than any one median.
    ...(recording || inline
      ? {
          roundRatiosVsWarden: Object.fromEntries(
            ['warden+rec', 'warden+rec-thread', 'warden+rec-inline']
              .filter((n) => results.has(n))
              .map((n) => [n, roundRatios(n, 'warden').map((x) => Number(x.toFixed(2)))]),
          ),
        }
      : {}),
    proxyCpuUsPerTransaction: Object.fromEntries([...cpu.keys()].map((n) => [n, Math.round(cpuMed(n) * 10) / 10])),
    ratios: {
      warden_vs_direct: Number(ratio(med('warden'), med('direct'))),
      pipe_relay_vs_direct: Number(ratio(med('pipe'), med('direct'))),
      ...(recording ? { recording_on_vs_off: Number(ratio(med('warden+rec'), med('warden'))) } : {}),
      // The median of each round's own ratio: what the machine's drift between rounds moves least.
      ...(recording ? { recording_on_vs_off_paired: Number(pairedRatio('warden+rec', 'warden').toFixed(2)) } : {}),
      ...(threaded ? { recording_thread_on_vs_off: Number(ratio(med('warden+rec-thread'), med('warden'))) } : {}),
      ...(threaded ? { recording_thread_on_vs_off_paired: Number(pairedRatio('warden+rec-thread', 'warden').toFixed(2)) } : {}),
      ...(inline ? { recording_inline_on_vs_off_paired: Number(pairedRatio('warden+rec-inline', 'warden').toFixed(2)) } : {}),
      ...(inline ? { recording_inline_on_vs_off: Number(ratio(med('warden+rec-inline'), med('warden'))) } : {}),
      ...(rules ? { rules_vs_none: Number(ratio(med('warden+rec+rules'), med('warden+rec'))) } : {}),
      ...(flow ? { rules_only_vs_off: Number(ratio(med('warden+rules'), med('warden'))) } : {}),
      ...(flow && recording ? { recording_vs_rules_only: Number(ratio(med('warden+rec'), med('warden+rules'))) } : {}),
      // CPU per transaction, the other way round (more CPU, a higher number).
      ...(recording ? { cpu_recording_on_vs_off: Number(ratio(cpuMed('warden+rec'), cpuMed('warden'))) } : {}),
      ...(flow && recording ? { cpu_recording_vs_rules_only: Number(ratio(cpuMed('warden+rec'), cpuMed('warden+rules'))) } : {}),
      raw_relay_vs_direct: Number(ratio(med('raw-relay'), med('direct'))),
      warden_vs_pipe_relay: Number(ratio(med('warden'), med('pipe'))),
      ...(bouncer
        ? {
            pgbouncer_vs_direct: Number(ratio(med('pgbouncer'), med('direct'))),
            warden_vs_pgbouncer: Number(ratio(med('warden'), med('pgbouncer'))),
            // The floors against pgbouncer: what no Node.js relay's JavaScript can improve on.
            pipe_relay_vs_pgbouncer: Number(ratio(med('pipe'), med('pgbouncer'))),
            raw_relay_vs_pgbouncer: Number(ratio(med('raw-relay'), med('pgbouncer'))),
          }
        : {}),
    },
    ...(threaded && threadLags.length > 0
      ? {
          recordingThread: {
            lagMsMedian: Math.round(median(threadLags)),
            lagMsMax: Math.round(Math.max(...threadLags)),
            catchUpMsMax: Math.round(Math.max(...catchUps)),
            tpsBeforeCatchUp: Math.round(median(tpsBeforeCatchUp)),
          },
        }
      : {}),
    wardenPeakRssMiB: Math.round(warden.peakRss() / 1048576),
    ...(recording ? { wardenWithRecordingPeakRssMiB: Math.round(recording.peakRss() / 1048576) } : {}),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  await warden.stop();
  await recording?.stop();
  await threaded?.stop();
  await inline?.stop();
  if (recording) {
    // Every statement of every recorded run: pgbench -S runs one statement per transaction.
    const statements = Math.round((results.get('warden+rec') ?? []).reduce((a, tps) => a + tps * seconds, 0));
    const bytes = dirBytes(join(recording.dataDir, 'transcripts'));
    process.stdout.write(`${JSON.stringify({ transcriptBytes: bytes, statementsRecorded: statements, transcriptBytesPerStatement: Math.round(bytes / Math.max(1, statements)) })}\n`);
  }
  await rules?.stop();
  await flow?.stop();
  await bouncer?.stop();
  await pipe.stop();
  await raw.stop();
} finally {
  await server.stop();
}

/**
 * Samples the recording thread's lag (/healthz `recording_thread.lag_ms`) every 100 ms while
 * pgbench runs; stop() then waits until the thread has nothing pending and says how long that took.
 */
function watchThread(adminUrl: string): { stop(): Promise<{ lags: number[]; catchUpMs: number }> } {
  const health = async (): Promise<{ lag_ms: number; pending_bytes: number }> =>
    ((await (await fetch(`${adminUrl}/healthz`)).json()) as { recording_thread: { lag_ms: number; pending_bytes: number } }).recording_thread;
  const lags: number[] = [];
  let running = true;
  const sampling = (async () => {
    while (running) {
      lags.push((await health()).lag_ms);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      const ended = performance.now();
      running = false;
      while ((await health()).pending_bytes > 0) await new Promise((r) => setTimeout(r, 2));
      const catchUpMs = performance.now() - ended;
      await sampling;
      return { lags, catchUpMs };
    },
  };
}
