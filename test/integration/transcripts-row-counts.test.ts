// A result's `rows` and `bytes` count every row the client received, whatever the capture keeps.
// Under `first` and `all` the statement flow stops looking at rows once the capture is full (they
// stream through): those rows went uncounted, so a 20,000-row result was recorded as 10 (`first`)
// or as the rows that fit the 256 KiB capture (`all`). In line and on the recording thread.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { readStore } from '../../src/audit/reader.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { startTestWarden } from '../helpers/warden.js';

async function recordedResult(capture: 'none' | 'digest' | 'first' | 'all', recordingThread: boolean): Promise<{ rows: number; bytes: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-row-counts-'));
  try {
    const w = await startTestWarden({ dataDir, mutate: (c) => void (c.transcripts = { ...defaultTranscripts(c.dataDir), capture, recordingThread }) });
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    expect((await c.query("SELECT n, repeat('x', 1000) AS pad FROM generate_series(1, 20000) AS n")).rowCount).toBe(20000);
    await c.end();
    await w.stop();
    // The result joins its statement's record, or follows in one of its own.
    let st: number | undefined;
    for await (const { record } of readStore(join(dataDir, 'transcripts'))) {
      const d = record.d as { st: number; text?: string; result?: { rows: number; bytes: number }; rows?: number; bytes?: number };
      if (record.k === 'statement' && d.text?.startsWith('SELECT n,')) {
        if (d.result) return { rows: d.result.rows, bytes: d.result.bytes };
        st = d.st;
      }
      if (record.k === 'result' && d.st === st) return { rows: d.rows as number, bytes: d.bytes as number };
    }
    throw new Error('no result recorded');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe.each([false, true])('recording thread %s', (thread) => {
  it('every capture mode records all 20,000 rows and their wire bytes', async () => {
    const digest = await recordedResult('digest', thread);
    expect(digest.rows).toBe(20000);
    // Each DataRow: type byte, length, column count, two columns with their lengths and text.
    expect(digest.bytes).toBeGreaterThan(20000 * 1000);
    for (const capture of ['first', 'all'] as const) {
      expect(await recordedResult(capture, thread)).toEqual(digest);
    }
  });
});
