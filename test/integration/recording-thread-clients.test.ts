// The recording thread (src/pg/recording/) with real clients: psycopg2, pgJDBC, postgres.js,
// pgbench. Each script runs through a warden recording in line and through one recording on the
// thread; the clients must see the same answers and the two transcripts must say the same, member
// for member (test/helpers/recording-thread.ts says what is left out of the comparison).
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import postgres from 'postgres';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Backend } from '../../protocols/postgres/codes.js';
import { encodeParse, encodeQuery } from '../../protocols/postgres/frontend-messages.js';
import { findClient, missingClient } from '../helpers/clients.js';
import { describe as describeMessage, rawLogin } from '../helpers/pg-raw.js';
import { expectSameTranscripts, recordingWarden, transcriptOf } from '../helpers/recording-thread.js';
import { run } from '../helpers/run.js';
import type { RecordingThread } from '../../src/pg/recording/thread.js';
import type { TestWarden } from '../helpers/warden.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/**
 * Runs `scenario` through a warden recording in line and one recording on the thread: the
 * answers and the transcripts must be equal, and the thread's chain must verify. Then again
 * through one recording in line and one recording wire records. Returns the answers and the
 * thread's records.
 */
async function same<T>(
  scenario: (w: TestWarden) => Promise<T>,
  opts: { randomNames?: boolean; capture?: 'none' | 'digest' | 'first' | 'all'; segmentMaxBytes?: number } = {},
): Promise<{ out: T; records: any[] }> {
  const transcripts = { transcripts: { ...(opts.capture ? { capture: opts.capture } : {}), ...(opts.segmentMaxBytes ? { segmentMaxBytes: opts.segmentMaxBytes } : {}) } };
  const inline = await recordingWarden(false, cleanups, transcripts);
  const threaded = await recordingWarden(true, cleanups, transcripts);
  const a = await scenario(inline);
  const b = await scenario(threaded);
  expect(b).toEqual(a);
  const records = await expectSameTranscripts(inline, threaded, opts);
  // The same as wire records, read back through the statement flow (capture `all` is not recorded
  // that way: `first` keeps the first rows of each result, the others are summarized).
  const wireTranscripts = { transcripts: { ...transcripts.transcripts, capture: opts.capture === undefined || opts.capture === 'all' ? ('first' as const) : opts.capture } };
  const inlineAgain = await recordingWarden(false, cleanups, wireTranscripts);
  const wired = await recordingWarden('wire', cleanups, wireTranscripts);
  expect(await scenario(wired)).toEqual(await scenario(inlineAgain));
  await expectSameTranscripts(inlineAgain, wired, { ...opts, wire: true });
  return { out: b, records };
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
    expect(out).toMatchObject({ named: (450 * 451) / 2, err: '22012', copy_err: '22P02', cancelled: '57014', copy_out: '0\tn0\n1\tn1\n2\tn2\n3\tn3\n4\tn4\n' });
    // libpq's large objects are fast-path calls: refused on the thread's sessions as in line (they ran there).
    expect(out.lo).toBe('ERROR:  warden does not allow fast-path function calls');
    expect(records.filter((r) => r.k === 'statement').length).toBeGreaterThan(15);
  });

  it('a fast-path call pipelined between statements is refused, and only its answer is replaced', async () => {
    // FunctionCall of int4abs (oid 1397) with no arguments: it never reaches the server.
    const call = Buffer.from([0x46, 0, 0, 0, 14, 0, 0, 0x05, 0x75, 0, 0, 0, 0, 0, 0]);
    const { out, records } = await same(async (w) => {
      const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
      s.socket.write(Buffer.concat([encodeQuery('SELECT 1/0'), call, encodeQuery('SELECT 2 AS two')]));
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push((await s.reader.until(Backend.readyForQuery)).map(describeMessage).join(' | '));
      s.socket.end();
      // The thread's allows are counted as it acknowledges its batches.
      const verdicts = w.warden.metrics.verdictsTotal;
      for (let i = 0; i < 50 && verdicts.get({ protocol: 'postgres', verdict: 'allow' }) < 2; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100));
      return { answers, allowed: verdicts.get({ protocol: 'postgres', verdict: 'allow' }), denied: verdicts.get({ protocol: 'postgres', verdict: 'deny' }) };
    });
    expect(out).toEqual({ answers: ['E ERROR 22012 division by zero | Z', 'E ERROR 42501 warden does not allow fast-path function calls | Z', 'T | D | C | Z'], allowed: 2, denied: 1 });
    // Recorded as refused, with the error the client got.
    const refused = records.find((r) => r.k === 'statement' && r.d.via === 'fast-path');
    expect(refused?.d).toMatchObject({ text: 'fast-path call of function 1397', verdict: 'deny', rule: 'fast-path' });
    expect(records.find((r) => r.k === 'result' && r.d.st === refused?.d.st)?.d.error).toEqual({ code: '42501', message: 'warden does not allow fast-path function calls' });
  });

  it.skipIf(missingClient('java') || missingClient('javac') || missingClient('pgjdbc'))('pgJDBC: named statements past prepareThreshold, batches, fetch size (portal suspended), binary transfer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-thread-jdbc-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const source = fileURLToPath(new URL('../clients/RecordingThreadJdbc.java', import.meta.url));
    const compiled = await run(findClient('javac') as string, ['-cp', findClient('pgjdbc') as string, '-d', dir, source], { timeoutMs: 90_000 });
    if (compiled.code !== 0) throw new Error(`javac failed: ${compiled.stderr}`);
    const jdbc = (options: string) => async (w: TestWarden): Promise<string[]> => {
      const url = `jdbc:postgresql://127.0.0.1:${w.port}/shop?sslmode=require&${options}`;
      const r = await run(findClient('java') as string, ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', `${dir}:${findClient('pgjdbc') as string}`, 'RecordingThreadJdbc', url, 'agent', await w.token()], { timeoutMs: 90_000 });
      if (r.code !== 0) throw new Error(`RecordingThreadJdbc failed (${r.code}): ${r.stderr}`);
      return r.stdout.trimEnd().split('\n');
    };
    // Savepoints around every statement (autosave), statements sent as simple Queries. (Not
    // cleanupSavepoints: pgJDBC 42.5 then loses its place after a failed large-object call, on a
    // direct connection too.)
    for (const options of ['autosave=always', 'preferQueryMode=simple']) expect((await same(jdbc(options))).out).toContain('fetched 1000 500500');
    const { out, records } = await same(jdbc('prepareThreshold=3&binaryTransfer=true'));
    expect(out).toContain('fetched 1000 500500');
    expect(out).toContain('count 40 780');
    expect(out).toContain('error 22012');
    expect(out.filter((l) => l.startsWith('prepared '))).toHaveLength(6);
    expect(out).toContain('large object 42501 ERROR: warden does not allow fast-path function calls');
    // The fetch size: one Execute (statement and result) per 64 rows.
    const steps = records.filter((r) => r.k === 'result' && r.d.columns?.[1]?.name === 'md5');
    expect(steps.map((r) => r.d.rows)).toEqual([...Array(15).fill(64), 40]);
  });

  it('postgres.js: a pipeline of 200 queries, LISTEN/NOTIFY between statements, unsafe multi-statement text, COPY of 5 MB both ways', async () => {
    const { out, records } = await same(async (w) => {
      // No array-type look-up at connect: its answer is the shared `shop` catalog's, which other
      // test files change while this one runs (a run compared 294 array types against 293).
      const opts = { host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, onnotice: () => undefined, fetch_types: false };
      const sql = postgres({ ...opts, max: 1 });
      const heard: string[] = [];
      const listener = postgres({ ...opts, max: 1 });
      const result: Record<string, unknown> = {};
      try {
        const piped = await Promise.all(Array.from({ length: 200 }, (_, i) => sql`SELECT ${i}::int AS i, repeat('p', ${i}) AS pad`));
        result.piped = piped.reduce((n, r) => n + (r[0]?.i as number), 0);
        await listener.listen('thread_chan', (payload) => heard.push(payload));
        for (let i = 0; i < 5; i++) {
          await sql.notify('thread_chan', `n${i}`);
          await listener`SELECT ${i}::int AS between`;
        }
        result.unsafe = (await sql.unsafe("SELECT 1 AS a; CREATE TEMP TABLE pj (id int, body text); INSERT INTO pj SELECT n, md5(n::text) FROM generate_series(1, 3) AS n; SELECT count(*)::int AS c FROM pj")).map((r: any) => r.count ?? r.length);
        const line = (n: number): string => `${n}\t${'x'.repeat(200)}\n`;
        await pipeline(Readable.from((function* () { for (let n = 0; n < 25_000; n++) yield line(n); })()), await sql`COPY pj FROM STDIN`.writable());
        let bytes = 0;
        for await (const chunk of await sql`COPY pj TO STDOUT`.readable()) bytes += (chunk as Buffer).length;
        result.copyOut = bytes;
        for (let i = 0; i < 50 && heard.length < 5; i++) await new Promise((r) => setTimeout(r, 20));
        result.heard = [...heard];
        // Dropped here, not when the session ends (PostgreSQL does that after the client has gone).
        await sql`DROP TABLE pj`;
      } finally {
        await listener.end({ timeout: 5 });
        await sql.end({ timeout: 5 });
      }
      return result;
    }, { randomNames: true });
    expect(out).toMatchObject({ piped: (199 * 200) / 2, heard: ['n0', 'n1', 'n2', 'n3', 'n4'] });
    expect(out.copyOut).toBeGreaterThan(5_000_000);
    const copyIn = records.find((r) => r.k === 'result' && r.d.tag === 'COPY 25000');
    expect(copyIn).toBeDefined();
  });

  for (const capture of ['first', 'digest', 'none'] as const) {
    it(`messages split across reads: a 300 KiB Query, a 2 MB parameter, a 6 MB result (capture ${capture})`, async () => {
      const { out, records } = await same(
        async (w) => {
          const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
          await c.connect();
          try {
            const long = (await c.query(`SELECT length('${'q'.repeat(300 * 1024)}') AS n`)).rows[0].n as number;
            const param = (await c.query('SELECT length($1::text) AS n, md5($1::text) AS h', ['p'.repeat(2 * 1024 * 1024)])).rows[0] as unknown;
            const big = await c.query("SELECT n, repeat(md5(n::text), 10) AS pad FROM generate_series(1, 20000) AS n");
            return { long, param, rows: big.rowCount };
          } finally {
            await c.end();
          }
        },
        { capture },
      );
      expect(out).toEqual({ long: 300 * 1024, param: { n: 2 * 1024 * 1024, h: expect.any(String) }, rows: 20000 });
      const results = records.filter((r) => r.k === 'result');
      expect(results.map((r) => r.d.rows)).toEqual(expect.arrayContaining([1, 20000]));
      // Clipped to 64 KiB in the record, with its length and digest.
      expect(records.find((r) => r.k === 'statement' && r.d.textBytes > 300 * 1024 && r.d.textSha256)).toBeDefined();
    });
  }

  it('session endings: Terminate pipelined after a Query, a client gone in the middle of a result, the server ending the session', async () => {
    const { out, records } = await same(async (w) => {
      const a = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
      const terminate = Buffer.from([0x58, 0, 0, 0, 4]);
      a.socket.write(Buffer.concat([encodeQuery('SELECT 42 AS answer'), terminate]));
      const first = (await a.reader.untilClosed()).map(describeMessage);
      const b = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
      b.socket.write(encodeQuery("SELECT n, repeat('z', 500) FROM generate_series(1, 200000) AS n"));
      await b.reader.next();
      b.socket.destroy();
      // The server notices the client is gone, and warden ends the session.
      await new Promise((r) => setTimeout(r, 500));
      const c = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
      c.socket.write(encodeQuery('SELECT pg_terminate_backend(pg_backend_pid())'));
      const killed = (await c.reader.untilClosed()).map(describeMessage);
      return { first, killed };
    });
    expect(out).toEqual({ first: ['T', 'D', 'C', 'Z'], killed: ['T', 'D', 'E FATAL 57P01 terminating connection due to administrator command'] });
    expect(records.filter((r) => r.k === 'session-end').map((r) => r.d.reason)).toEqual(['client-terminate', 'client-disconnect', 'upstream-disconnect']);
    expect(records.filter((r) => r.k === 'result').map((r) => [r.d.rows, r.d.error?.code])).toEqual([[1, undefined], [1, '57P01']]);
  });

  it('session endings: a token expiring during a statement (onTokenExpiry end), a session still open when warden stops', async () => {
    const open: pg.Client[] = [];
    const { out, records } = await same(async (w) => {
      const connect = async (ttlSeconds?: number): Promise<{ c: pg.Client; errors: string[] }> => {
        const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(ttlSeconds ? { ttlSeconds } : {}), database: 'shop', ssl: { ca: w.ca } });
        const errors: string[] = [];
        c.on('error', (e: Error) => errors.push(e.message));
        await c.connect();
        return { c, errors };
      };
      const expiring = await connect(2);
      const status = (await expiring.c.query("SELECT pg_sleep(2.5), 'finished' AS status")).rows[0].status as string;
      for (let i = 0; i < 100 && expiring.errors.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      const staying = await connect();
      await staying.c.query('SELECT 1 AS still_here');
      open.push(staying.c);
      return { status, error: expiring.errors[0] };
    });
    for (const c of open) await c.end().catch(() => undefined);
    expect(out).toEqual({ status: 'finished', error: 'access token expired; reconnect with a fresh token' });
    expect(records.filter((r) => r.k === 'session-end').map((r) => r.d.reason)).toEqual(['terminated', 'terminated']);
  }, 30_000);

  for (const [mode, pipelined] of [['extended', false], ['prepared', false], ['prepared', true]] as const) {
    it.skipIf(missingClient('pgbench'))(`pgbench -M ${mode}${pipelined ? ' in pipeline mode' : ''}, 3 clients: every transaction recorded as in line`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'warden-thread-pgbench-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const script = join(dir, 'tx.sql');
      const body = 'BEGIN;\nSELECT id, full_name FROM customers WHERE id = :id;\nSELECT :id::int * 2 AS twice;\nEND;\n';
      writeFileSync(script, `\\set id 3\n${pipelined ? `\\startpipeline\n${body}\\endpipeline\n` : body}`);
      const { out, records } = await same(async (w) => {
        const r = await run(findClient('pgbench') as string, ['-n', '-M', mode, '-c', '3', '-j', '1', '-t', '40', '-f', script], { env: await libpqEnv(w), timeoutMs: 60_000 });
        return { code: r.code, processed: /number of transactions actually processed: (\S+)/.exec(r.stdout)?.[1] };
      });
      expect(out).toEqual({ code: 0, processed: '120/120' });
      expect(records.filter((r) => r.k === 'statement' && r.d.text.startsWith('SELECT id, full_name')).length).toBe(120);
    });
  }

  it('a statement the server fails at Bind (a parameter it cannot read, 1/0 folded when planned) has its error in its result record', async () => {
    const { out, records } = await same(async (w) => {
      const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
      await c.connect();
      try {
        const codes = [];
        codes.push(await c.query('SELECT id FROM customers WHERE id = $1', ['x']).then(() => 'ran', (e: pg.DatabaseError) => e.code));
        codes.push(await c.query('SELECT 1/0 AS z, $1::int AS p', [1]).then(() => 'ran', (e: pg.DatabaseError) => e.code));
        codes.push((await c.query('SELECT $1::int AS p', [2])).rows[0].p as number);
        return codes;
      } finally {
        await c.end();
      }
    });
    expect(out).toEqual(['22P02', '22012', 2]);
    const texts = new Map(records.filter((r) => r.k === 'statement').map((r) => [r.d.st, r.d.text]));
    const outcome = records.filter((r) => r.k === 'result').map((r) => [texts.get(r.d.st), r.d.error?.code ?? r.d.tag]);
    expect(outcome).toEqual([
      ['SELECT id FROM customers WHERE id = $1', '22P02'],
      ['SELECT 1/0 AS z, $1::int AS p', '22012'],
      ['SELECT $1::int AS p', 'SELECT 1'],
    ]);
  });

  it('a malformed Bind ends the session as in line: nothing after it runs unrecorded', async () => {
    const { out, records } = await same(async (w) => {
      const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
      // Bind of the unnamed portal and statement declaring one parameter, with no parameter after it.
      const bind = Buffer.from([0x42, 0, 0, 0, 10, 0, 0, 0, 0, 0, 1]);
      const sync = Buffer.from([0x53, 0, 0, 0, 4]);
      s.socket.write(Buffer.concat([encodeParse({ name: '', sql: 'SELECT $1::int', paramTypes: [] }), bind, sync]));
      const answer = (await s.reader.until(Backend.readyForQuery, 5000)).map(describeMessage);
      s.socket.write(encodeQuery("SELECT 'after' AS t"));
      const after = (await s.reader.until(Backend.readyForQuery, 5000)).map(describeMessage);
      s.socket.destroy();
      return { answer, after };
    });
    expect(out.answer).toEqual(['E FATAL 08P01 invalid frontend message: message too short for parameter 1 length (at offset 11)']);
    expect(out.after).toEqual([]);
    expect(records.filter((r) => r.k === 'statement').map((r) => r.d.text)).not.toContain("SELECT 'after' AS t");
  });

  it('a session whose records span several segments of the thread chain (1 MiB segments)', async () => {
    let threadSegments = 0;
    const { out } = await same(
      async (w) => {
        const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
        await c.connect();
        let n = 0;
        for (let i = 0; i < 1500; i++) n += (await c.query("SELECT $1::int AS i, repeat('s', 1000) AS pad", [i])).rows[0].i as number;
        await c.end();
        if (w.warden.recordingThread) {
          await new Promise((r) => setTimeout(r, 200));
          threadSegments = readdirSync(join(w.dataDir, 'transcripts')).filter((f) => f.startsWith('w1.rec_')).length;
        }
        return n;
      },
      { segmentMaxBytes: 1024 * 1024 },
    );
    expect(out).toBe((1499 * 1500) / 2);
    expect(threadSegments).toBeGreaterThan(1);
  });

  it('a session whose statement flow stops on the thread (a message it cannot read) is told, and its end is still recorded', async () => {
    // Bytes no real client sends past the relay on the event loop (it refuses them too, see the
    // malformed Bind above): handed to a tap directly, as a divergence between the two would be.
    const w = await recordingWarden(true, cleanups);
    const thread = w.warden.recordingThread as RecordingThread;
    const told: string[] = [];
    const start = {
      sessionId: '5e55f10a-0000-4000-8000-000000000001',
      protocol: 'postgres' as const,
      target: 'shop',
      principal: { name: 'agent', issuerName: 'dev', subject: 'tap', subjectClaim: 'azp', appId: 'tap', tenantId: 't', roles: [], groups: [] },
      client: { address: '127.0.0.1', port: 1, tls: null, database: 'shop' },
    };
    const tap = thread.open({ start: start as never, parameters: [['standard_conforming_strings', 'on']], capture: { mode: 'all', firstRows: 10 }, maxMessageBytes: 1 << 20, transactionStatus: 0x49 }, (e) => told.push(e.message));
    tap.chunk(true, Buffer.from([0x42, 0, 0, 0, 10, 0, 0, 0, 0, 0, 1]));
    for (let i = 0; i < 100 && told.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(told).toEqual(['the recording thread stopped recording this session: message too short for parameter 1 length (at offset 11)']);
    expect(thread.healthy).toBe(true);
    tap.end({ reason: 'protocol-error', detail: 'test' });
    await w.stop();
    const { records } = await transcriptOf(w.dataDir);
    expect(records.map((r: any) => r.k)).toEqual(['session-start', 'session-end']);
  });
});
