// A statement whose record cannot be written is not run, under fsync `interval` as under `each`,
// on PostgreSQL and on SQL Server:
// a record over the size limit (here: hundreds of parameters of control characters, each clipped
// to the value limit but six times longer once JSON-escaped) must not let the statement through
// unrecorded. On the recording thread (sessions no rule touches), where the statement has gone
// upstream before its record is made, the record keeps a digest of the parameters instead.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStore } from '../../src/audit/reader.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { directUrl } from '../helpers/pg-env.js';
import { closeTedious, connectTedious, query, startTdsHarness, tediousConfig, TYPES } from '../helpers/tds.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const TABLE = `unrecordable_${process.pid}`;
let w: TestWarden;

async function direct<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: directUrl() });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await direct(`CREATE TABLE ${TABLE} (v text)`);
  await direct(`GRANT ALL ON ${TABLE} TO PUBLIC`);
});

afterAll(async () => {
  await w?.stop();
  await direct(`DROP TABLE IF EXISTS ${TABLE}`);
});

describe.each(['interval', 'each'] as const)('fsync %s', (fsync) => {
  it('a statement whose record is over the size limit does not run', async () => {
    await direct(`TRUNCATE ${TABLE}`);
    w = await startTestWarden({
      mutate: (config) => {
        // As statements in line (a wire record has no statement to refuse: readers clip the text).
        config.transcripts = { ...defaultTranscripts(config.dataDir), fsync, wire: false, recordingThread: false };
      },
    });
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    c.on('error', () => undefined);
    await c.connect();
    const n = 300;
    const values = Array.from({ length: n }, () => '\x01'.repeat(4096));
    const placeholders = values.map((_, i) => `$${i + 1}`).join(', ');
    const outcome = await c.query(`INSERT INTO ${TABLE} SELECT unnest(ARRAY[${placeholders}]::text[])`, values).then(
      () => 'ran',
      (err: Error) => err.message,
    );
    expect(outcome).toBe(`statement refused by warden policy rule "transcripts": the statement's transcript record would exceed the record size limit, so it was not run`);
    expect(await direct<{ n: number }>(`SELECT count(*)::int AS n FROM ${TABLE}`)).toEqual([{ n: 0 }]);
    // Only that statement is refused: the session and the store go on.
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end().catch(() => undefined);
    await w.stop();
  });
});

describe('the recording thread', () => {
  it('records a statement whose parameters would make its record too large with a digest of them instead', async () => {
    await direct(`TRUNCATE ${TABLE}`);
    const dataDir = mkdtempSync(join(tmpdir(), 'warden-unrecordable-'));
    w = await startTestWarden({ dataDir, mutate: (config) => void (config.transcripts = { ...defaultTranscripts(config.dataDir), wire: false }) });
    expect(w.warden.recordingThread).toBeDefined();
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    const values = Array.from({ length: 300 }, (_, i) => `${i}${'\x01'.repeat(4096)}`);
    const placeholders = values.map((_, i) => `$${i + 1}`).join(', ');
    await c.query(`INSERT INTO ${TABLE} SELECT unnest(ARRAY[${placeholders}]::text[])`, values);
    await c.query('SELECT 1');
    await c.end();
    await w.stop();
    expect(await direct<{ n: number }>(`SELECT count(*)::int AS n FROM ${TABLE}`)).toEqual([{ n: 300 }]);
    const statements: Record<string, unknown>[] = [];
    for await (const { record, instance } of readStore(join(dataDir, 'transcripts'))) {
      if (record.k === 'statement') statements.push({ instance, ...(record.d as Record<string, unknown>) });
    }
    rmSync(dataDir, { recursive: true, force: true });
    const insert = statements.find((d) => String(d.text).startsWith('INSERT'));
    expect(insert).toMatchObject({ paramsDropped: 300 });
    expect(insert?.params).toBeUndefined();
    // The digest is of the values as the statement flow read them (each clipped to the 4 KiB value limit).
    const clipped = values.map((v) => v.slice(0, 4096));
    expect(insert?.paramsSha256).toBe(createHash('sha256').update(JSON.stringify(clipped)).digest('hex'));
    expect(String(insert?.instance)).toMatch(/\.rec$/);
    expect(statements.find((d) => d.text === 'SELECT 1')).toBeDefined();
  });
});

describe('SQL Server', () => {
  it.each(['interval', 'each'] as const)('fsync %s: a request whose record is over the size limit does not run', async (fsync) => {
    const h = await startTdsHarness({
      mutate: (config) => {
        config.transcripts = { ...defaultTranscripts(config.dataDir), fsync };
      },
    });
    try {
      const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
      c.on('error', () => undefined);
      const params = Array.from({ length: 300 }, (_, i) => [`p${i}`, TYPES.NVarChar, '\x01'.repeat(4096)] as [string, unknown, unknown]);
      const outcome = await query(c, `SELECT 1 AS ran WHERE @p0 IS NOT NULL`, params).then(
        () => 'ran',
        (err: Error) => err.message,
      );
      expect(outcome).toBe(`the statement's transcript record would exceed the record size limit, so it was not run`);
      expect((await query(c, 'SELECT 1 AS one')).sets[0]?.rows).toEqual([[1]]);
      await closeTedious(c).catch(() => undefined);
    } finally {
      await h.stop();
    }
  });
});
