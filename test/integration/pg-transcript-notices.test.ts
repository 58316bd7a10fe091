// Notices and warnings PostgreSQL sends with a statement's result (RAISE NOTICE, "… does not exist,
// skipping") are part of what came back: the result record keeps them, in line and on the
// recording thread alike, and replay shows them.
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { listSessions } from '../../src/audit/reader.js';
import { loadSession, renderReplayText } from '../../src/audit/replay.js';
import { expectSameTranscripts, recordingWarden } from '../helpers/recording-thread.js';
import type { TestWarden } from '../helpers/warden.js';
import { join } from 'node:path';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function scenario(w: TestWarden): Promise<string[]> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  c.on('error', () => undefined);
  const seen: string[] = [];
  c.on('notice', (n) => seen.push(`${n.severity} ${n.message}`));
  await c.connect();
  await c.query("DO $$ BEGIN RAISE NOTICE 'checking % rows', 20; RAISE WARNING 'careful'; END $$");
  await c.query('DROP TABLE IF EXISTS no_such_table_here');
  // Notices of a statement that also returns rows, and more than a result keeps.
  await c.query("DO $$ BEGIN FOR i IN 1..25 LOOP RAISE NOTICE 'n%', i; END LOOP; END $$");
  await c.query('SELECT count(*) FROM customers');
  await c.end();
  return seen;
}

describe('notices in transcripts', () => {
  it('are recorded with their result, the same in line and on the recording thread, and replay shows them', async () => {
    const inline = await recordingWarden(false, cleanups);
    const threaded = await recordingWarden(true, cleanups);
    const seen = await scenario(inline);
    expect(await scenario(threaded)).toEqual(seen);
    expect(seen.slice(0, 3)).toEqual(['NOTICE checking 20 rows', 'WARNING careful', 'NOTICE table "no_such_table_here" does not exist, skipping']);
    const records = await expectSameTranscripts(inline, threaded);
    const results = records.filter((r) => r.k === 'result');
    expect(results[0].d.notices).toEqual([
      { severity: 'NOTICE', code: '00000', message: 'checking 20 rows' },
      { severity: 'WARNING', code: '01000', message: 'careful' },
    ]);
    expect(results[1].d.notices).toEqual([{ severity: 'NOTICE', code: '00000', message: 'table "no_such_table_here" does not exist, skipping' }]);
    expect(results[2].d.notices).toHaveLength(20);
    expect(results[2].d.notices[19].message).toBe('n20');
    expect(results[2].d.noticesDropped).toBe(5);
    // A result without notices has no such member.
    expect(results[3].d).not.toHaveProperty('notices');
    expect(results[3].d.rows).toBe(1);

    const dir = join(threaded.dataDir, 'transcripts');
    const [session] = await listSessions(dir);
    const replay = renderReplayText(await loadSession(dir, session?.sessionId as string));
    expect(replay).toContain('NOTICE 00000: checking 20 rows');
    expect(replay).toContain('WARNING 01000: careful');
    expect(replay).toContain('… 5 more notices');
  });
});
