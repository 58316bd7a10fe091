// The recording thread (src/pg/recording/) with real clients: psycopg2, pgJDBC, postgres.js,
// pgbench. Each script runs through a warden recording in line and through one recording on the
// thread; the clients must see the same answers and the two transcripts must say the same, member
// for member (test/helpers/recording-thread.ts says what is left out of the comparison).
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Backend } from '../../protocols/postgres/codes.js';
import { encodeQuery } from '../../protocols/postgres/frontend-messages.js';
import { findClient, missingClient } from '../helpers/clients.js';
import { describe as describeMessage, rawLogin } from '../helpers/pg-raw.js';
import { expectSameTranscripts, recordingWarden } from '../helpers/recording-thread.js';
import { run } from '../helpers/run.js';
import type { TestWarden } from '../helpers/warden.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/**
 * Runs `scenario` through a warden recording in line and one recording on the thread: the
 * answers and the transcripts must be equal, and the thread's chain must verify. Returns the
 * answers and the thread's records.
 */
async function same<T>(scenario: (w: TestWarden) => Promise<T>): Promise<{ out: T; records: any[] }> {
  const inline = await recordingWarden(false, cleanups);
  const threaded = await recordingWarden(true, cleanups);
  const a = await scenario(inline);
  const b = await scenario(threaded);
  expect(b).toEqual(a);
  return { out: b, records: await expectSameTranscripts(inline, threaded) };
}

const libpqEnv = async (w: TestWarden): Promise<Record<string, string>> => ({ PGHOST: w.host, PGPORT: String(w.port), PGUSER: 'agent', PGPASSWORD: await w.token(), PGSSLMODE: 'require', PGDATABASE: 'shop' });

describe('the recording thread with real clients', () => {
  it.skipIf(missingClient('psycopg2'))('psycopg2: named cursors, executemany, COPY both ways, errors in transactions, large objects', async () => {
    const script = fileURLToPath(new URL('../clients/recording_thread_psycopg2.py', import.meta.url));
    const { out, records } = await same(async (w) => {
      const r = await run(findClient('psycopg2') as string, [script, ''], { env: await libpqEnv(w), timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`psycopg2 client failed (${r.code}): ${r.stderr}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    });
    expect(out).toMatchObject({ named: (450 * 451) / 2, err: '22012', copy_err: '22P02', copy_out: '0\tn0\n1\tn1\n2\tn2\n3\tn3\n4\tn4\n' });
    // libpq's large objects are fast-path calls: refused on the thread's sessions as in line (they ran there).
    expect(out.lo).toBe('ERROR:  warden does not allow fast-path function calls');
    expect(records.filter((r) => r.k === 'statement').length).toBeGreaterThan(15);
  });

  it('a fast-path call pipelined between statements is refused, and only its answer is replaced', async () => {
    // FunctionCall of int4abs (oid 1397) with no arguments: it never reaches the server.
    const call = Buffer.from([0x46, 0, 0, 0, 14, 0, 0, 0x05, 0x75, 0, 0, 0, 0, 0, 0]);
    const { out } = await same(async (w) => {
      const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
      s.socket.write(Buffer.concat([encodeQuery('SELECT 1/0'), call, encodeQuery('SELECT 2 AS two')]));
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push((await s.reader.until(Backend.readyForQuery)).map(describeMessage).join(' | '));
      s.socket.end();
      return answers;
    });
    expect(out).toEqual(['E ERROR 22012 division by zero | Z', 'E ERROR 42501 warden does not allow fast-path function calls | Z', 'T | D | C | Z']);
  });
});
