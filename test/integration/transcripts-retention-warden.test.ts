// transcripts.retention in a running warden: at start its writer and its recording thread's each
// remove their chain's segments past the retention (the configuration reaches both), the sessions
// after it are recorded on, and the store verifies with a retention note per chain. The recording
// thread keeps unshipped records when told its chain is shipped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { transcriptConfig } from '../../src/audit/config.js';
import { TranscriptStore } from '../../src/audit/recorder.js';
import { silentLogger } from '../../src/log.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { RecordingThread } from '../../src/pg/recording/thread.js';
import { startTestWarden } from '../helpers/warden.js';
import { errorKinds, manualClock, recordSession, recordThenRotate, segmentFiles, testConfig, verifyStore } from '../unit/audit-support.js';

const DAY = 24 * 60 * 60 * 1000;
const HOUR = 60 * 60 * 1000;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-retention-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Two daily segments of `instance`, written in January 2026 and sealed: all long past an hour's retention. */
async function oldChain(dir: string, instance: string): Promise<void> {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const store = await TranscriptStore.open(testConfig(dir, { instanceId: instance, segmentMaxAgeMs: HOUR, fsyncIntervalMs: 20 }), { clock: clock.now });
  await recordThenRotate(store, clock, `${instance}-old-1`, 2, DAY);
  await recordSession(store, `${instance}-old-2`, 2);
  await store.close();
}

describe('transcripts.retention in warden', () => {
  it('removes the old segments of its own chain and of its recording thread at start, and records on', async () => {
    const dir = dataDir();
    await oldChain(dir, 'w1');
    await oldChain(dir, 'w1.rec');
    expect(segmentFiles(dir, 'w1')).toHaveLength(2);
    expect(segmentFiles(dir, 'w1.rec')).toHaveLength(2);
    const w = await startTestWarden({
      dataDir: dir,
      mutate: (config) => {
        // wire: false: its sessions are recorded on the recording thread, whose chain retention covers too.
        config.transcripts = { ...defaultTranscripts(config.dataDir), instanceId: 'w1', retentionMs: HOUR, wire: false };
      },
    });
    let stopped = false;
    cleanups.push(() => (stopped ? undefined : w.stop()));
    // Both chains now begin at the segment their writer started with.
    expect(segmentFiles(dir, 'w1')).toHaveLength(1);
    expect(segmentFiles(dir, 'w1.rec')).toHaveLength(1);
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    expect((await c.query('SELECT count(*)::int AS n FROM customers')).rows[0]).toEqual({ n: 20 });
    await c.end();
    await w.stop();
    stopped = true;
    const report = await verifyStore(dir);
    expect(errorKinds(report)).toEqual([]);
    const notes = report.findings.filter((f) => f.kind === 'retention').map((f) => f.instance);
    expect(notes.sort()).toEqual(['w1', 'w1.rec']);
    // The session went to the thread's chain, after its new beginning.
    const rec = report.instances.find((i) => i.instance === 'w1.rec');
    expect(rec?.retention?.file).toMatch(/^w1\.rec_00000003_/);
    expect(rec?.records).toBeGreaterThan(4);
  });

  it('the recording thread keeps segments not yet shipped', async () => {
    const dir = dataDir();
    await oldChain(dir, 'w3.rec');
    const start = (keepUnshipped: boolean): Promise<RecordingThread> =>
      RecordingThread.start({ transcript: transcriptConfig(dir, { instanceId: 'w3.rec', retentionMs: HOUR }), logger: silentLogger, logLevel: 'silent', keepUnshipped });
    const shipped = await start(true);
    await shipped.close();
    // Nothing was said to be shipped: everything stays (the thread's restart added a segment).
    expect(segmentFiles(dir, 'w3.rec')).toHaveLength(3);
    const unshipped = await start(false);
    await unshipped.close();
    // The two of January went (the second by its signed seal: the segment after it began only
    // now); the one the first restart sealed a moment ago stays, with the newest.
    expect(segmentFiles(dir, 'w3.rec').map((f) => f.slice(f.lastIndexOf('/') + 1, f.lastIndexOf('_')))).toEqual(['w3.rec_00000003', 'w3.rec_00000004']);
    expect(errorKinds(await verifyStore(dir))).toEqual([]);
  });
});
