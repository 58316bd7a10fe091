// Prints (does not assert) what recording costs: records/s and bytes/record for a burst of 50k
// statement+result pairs from 20 concurrent sessions, against the same loop with recording off,
// and how fast verify reads the result back. Bounded so it stays a few seconds on a busy machine.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsyncPolicy } from '../../src/audit/config.js';
import { disabledRecorders, type RecorderFactory } from '../../src/audit/recorder.js';
import { openStore, PRINCIPAL, tempDataDir, transcriptsDir, verifyStore } from '../unit/audit-support.js';

const SESSIONS = 20;
let data: { dir: string; cleanup: () => void };

beforeAll(() => {
  data = tempDataDir('warden-audit-bench-');
});
afterAll(() => data.cleanup());

async function burst(factory: RecorderFactory, pairs: number, tag: string): Promise<number> {
  const recs = Array.from({ length: SESSIONS }, () => factory.recorder());
  await Promise.all(
    recs.map((r, i) => r.sessionStart({ sessionId: `${tag}-${i}`, protocol: 'postgres', target: 'bench', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 30000 + i, tls: null } })),
  );
  const started = performance.now();
  // As the relays record: statement before forwarding, result before releasing, without waiting
  // for either to be written (under `interval`); every promise is collected and awaited at the end.
  const pending: Promise<unknown>[] = [];
  await Promise.all(
    recs.map(async (r, n) => {
      for (let i = 0; i < pairs / SESSIONS; i++) {
        const sp = r.statement({
          text: 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2',
          params: [
            { type: 'int4', value: String(i % 5000) },
            { type: 'int4', value: String(i) },
          ],
          classification: { class: 'write', relations: ['public.pgbench_accounts'] },
          verdict: 'allow',
        });
        const rp = r.result({ statementId: i + 1, columns: [], rows: 1, bytes: 0, capture: { mode: 'digest', sha256: '0'.repeat(64), rows: 0 }, tag: 'UPDATE 1' });
        pending.push(sp, rp);
        // Yield now and then, as a relay does between network reads.
        if (i % 64 === n % 64) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }),
  );
  await Promise.all(pending);
  const ms = performance.now() - started;
  await Promise.all(recs.map((r) => r.sessionEnd('done')));
  return ms;
}

function storeBytes(dataDir: string): number {
  const dir = transcriptsDir(dataDir);
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

describe('transcript throughput (printed, not asserted)', () => {
  it('records a 50k statement+result burst', async () => {
    const pairs = 50_000;
    const offMs = await burst(disabledRecorders, pairs, 'off');
    const rows: string[] = [];
    for (const [fsync, n] of [['interval', pairs], ['each', pairs / 5]] as Array<[FsyncPolicy, number]>) {
      const dir = join(data.dir, fsync);
      const store = await openStore(dir, { fsync, checkpointEveryRecords: 1000 });
      const ms = await burst(store, n, fsync);
      await store.close();
      const records = 2 * n;
      const bytes = storeBytes(dir);
      const verifyStarted = performance.now();
      const report = await verifyStore(dir);
      const verifyMs = performance.now() - verifyStarted;
      expect(report.ok).toBe(true);
      rows.push(
        `fsync=${fsync}: ${n} pairs in ${ms.toFixed(0)} ms = ${Math.round((records / ms) * 1000)} records/s, ${Math.round(bytes / records)} bytes/record; verify ${Math.round((report.records / verifyMs) * 1000)} records/s`,
      );
    }
    process.stdout.write(`\ntranscript burst, ${SESSIONS} sessions (recording off: ${pairs} pairs in ${offMs.toFixed(0)} ms)\n${rows.map((r) => `  ${r}`).join('\n')}\n`);
  }, 300_000);
});
