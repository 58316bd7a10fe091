// The shared PostgreSQL transcript store: every instance ships its records here (ship.ts), so one
// query finds the sessions of every instance, and the copy verifies on its own
// (store-postgres-verify.ts). Each row holds one record line with its exact bytes, so the hashes
// and signatures check against the rows just as against the files:
//
//   <schema>.transcript_records    (instance, seq) → segment, file, ts, kind, sid, line (bytea)
//   <schema>.transcript_instances  instance → head (its newest shipped checkpoint or seal), shipped_seq
//   <schema>.transcript_keys       (instance, kid) → the instance's public key (SPKI PEM)
//
// `segment`, `file`, `ts`, `kind` and `sid` are copied out of the line for queries; verify checks
// them against it. The shipper creates the tables if absent, under an advisory lock (instances
// starting together do not collide); readers never create anything, so auditors may use a role
// that can only SELECT, and the instances one that can only add records (docs/transcripts.md).
import pg from 'pg';
import { clientConfig } from '../approvals/store-postgres.js';
import { silentLogger, type Logger } from '../log.js';
import { errnoCode, TranscriptReadError } from './errors.js';
import { parseLine } from './frame.js';
import { WireDecoder } from '../pg/recording/wire-decoder.js';
import { readerRecords } from './reader.js';
import type { ReadOptions, RecordSource, StoredRecord } from './reader.js';
import type { TranscriptStoreLocation } from './ship-config.js';

const POOL_SIZE = 2;
/** SQLSTATE of a missing table: nothing was shipped to this schema yet. */
const UNDEFINED_TABLE = '42P01';
/** Rows fetched per query when reading (keyset pagination: memory stays bounded) … */
const PAGE_ROWS = 2000;
/** … and bytes of lines per query (a page always holds at least one row). */
const PAGE_BYTES = 16 * 1024 * 1024;

/** One record as shipped. */
export interface ShippedRow {
  seq: number;
  segment: number;
  file: string;
  /** The record's `ts`; null when it is not a time (the row still keeps the line). */
  ts: string | null;
  kind: string;
  sid: string | null;
  /** The line's exact bytes, without its '\n'. */
  line: Buffer;
}

/** A row read back for verification. */
export interface StoreRow {
  seq: number;
  segment: number;
  ts: Date | null;
  kind: string;
  sid: string | null;
  line: Buffer;
}

/** A batch met rows already in the store with other content under the same (instance, seq). */
export class ShipConflictError extends Error {
  override readonly name = 'ShipConflictError';
  constructor(
    readonly instance: string,
    readonly seq: number,
  ) {
    super(`the store already holds a different record at seq ${seq} of instance ${instance}`);
  }
}

type Row = Record<string, unknown>;

/**
 * One page of `select` (which selects `line`) in `order`: at most PAGE_ROWS rows, and only as many
 * as fit in PAGE_BYTES of lines, but always the first one. An empty page is the end.
 */
function pageOf(select: string, order: string, page: { rows: number; bytes: number }): string {
  return `SELECT * FROM (
    SELECT p.*, sum(octet_length(p.line)) OVER (ORDER BY ${order}) AS upto
    FROM (${select} ORDER BY ${order} LIMIT ${page.rows}) p
  ) q WHERE q.upto - octet_length(q.line) < ${page.bytes} ORDER BY ${order}`;
}

export class PostgresTranscriptStore {
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly log: Logger;
  private readonly t: { records: string; instances: string; keys: string };
  private readonly page: { rows: number; bytes: number };
  private setup: Promise<void> | undefined;
  private closed = false;

  /** `page` bounds what one reading query fetches (tests make it small). */
  constructor(config: TranscriptStoreLocation, options: { logger?: Logger; page?: { rows: number; bytes: number } } = {}) {
    this.schema = config.schema;
    this.page = options.page ?? { rows: PAGE_ROWS, bytes: PAGE_BYTES };
    if (!(Number.isSafeInteger(this.page.rows) && this.page.rows > 0 && Number.isSafeInteger(this.page.bytes) && this.page.bytes > 0)) {
      throw new RangeError('a page holds at least one row and one byte');
    }
    this.log = (options.logger ?? silentLogger).child({ component: 'transcript-store' });
    this.t = {
      records: `"${config.schema}".transcript_records`,
      instances: `"${config.schema}".transcript_instances`,
      keys: `"${config.schema}".transcript_keys`,
    };
    // The approvals store's connection settings, the same TLS modes; only the name differs.
    const conn = clientConfig({ ...config, type: 'postgres', pollInterval: 0 });
    this.pool = new pg.Pool({ ...conn, application_name: 'warden-transcripts', max: POOL_SIZE, idleTimeoutMillis: 30_000 });
    // An idle connection that breaks must not crash the process; the next query reconnects.
    this.pool.on('error', (err) => this.log.warn({ err: err.message }, 'transcript store connection lost'));
  }

  /** Names the store in messages (no host, no credentials). */
  get name(): string {
    return `the shared transcript store (schema ${this.schema})`;
  }

  /** Creates the tables if absent; rejects while the server cannot be reached (then retries on the next call). */
  ready(): Promise<void> {
    this.usable();
    this.setup ??= this.createTables().catch((err: unknown) => {
      this.setup = undefined;
      throw err;
    });
    return this.setup;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }

  // ---- shipping ---------------------------------------------------------------------------------

  /** Records the instance's public key (kept per key id, so a rotated key adds a row). */
  async registerKey(instance: string, kid: string, publicKeyPem: string): Promise<void> {
    await this.ready();
    await this.query(`INSERT INTO ${this.t.keys} (instance, kid, public_key) VALUES ($1, $2, $3) ON CONFLICT (instance, kid) DO NOTHING`, [instance, kid, publicKeyPem]);
  }

  /** The instance's highest shipped record, or undefined when none is. */
  async shippedEnd(instance: string): Promise<{ seq: number; line: Buffer } | undefined> {
    await this.ready();
    const rows = await this.query(`SELECT seq, line FROM ${this.t.records} WHERE instance = $1 ORDER BY seq DESC LIMIT 1`, [instance]);
    const row = rows[0];
    return row ? { seq: Number(row.seq), line: row.line as Buffer } : undefined;
  }

  /**
   * Inserts a batch in one transaction, and moves the instance's head to the newest mark in it.
   * Rows already present with the same bytes (a batch whose commit was not acknowledged, sent again)
   * are accepted; a different record under a shipped (instance, seq) rejects with ShipConflictError.
   */
  async ship(instance: string, rows: readonly ShippedRow[], head: { seq: number; jws: string } | undefined): Promise<void> {
    if (rows.length === 0) return;
    await this.ready();
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const inserted = await client.query(
        `INSERT INTO ${this.t.records} (instance, seq, segment, file, ts, kind, sid, line)
         SELECT $1, r.seq, r.segment, r.file, r.ts, r.kind, r.sid, r.line
         FROM unnest($2::bigint[], $3::integer[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::bytea[]) AS r(seq, segment, file, ts, kind, sid, line)
         ON CONFLICT (instance, seq) DO NOTHING
         RETURNING seq`,
        [instance, rows.map((r) => r.seq), rows.map((r) => r.segment), rows.map((r) => r.file), rows.map((r) => r.ts), rows.map((r) => r.kind), rows.map((r) => r.sid), rows.map((r) => r.line)],
      );
      if ((inserted.rowCount ?? 0) < rows.length) {
        const fresh = new Set(inserted.rows.map((r: Row) => Number(r.seq)));
        const again = rows.filter((r) => !fresh.has(r.seq));
        const existing = await client.query(`SELECT seq, line FROM ${this.t.records} WHERE instance = $1 AND seq = ANY($2::bigint[])`, [instance, again.map((r) => r.seq)]);
        const stored = new Map(existing.rows.map((r: Row) => [Number(r.seq), r.line as Buffer]));
        const differs = again.find((r) => !(stored.get(r.seq)?.equals(r.line) ?? false));
        if (differs) throw new ShipConflictError(instance, differs.seq);
      }
      const last = rows[rows.length - 1] as ShippedRow;
      await client.query(
        `INSERT INTO ${this.t.instances} AS i (instance, shipped_seq, head_seq, head_jws, updated_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (instance) DO UPDATE SET
           shipped_seq = GREATEST(i.shipped_seq, EXCLUDED.shipped_seq),
           head_jws = CASE WHEN EXCLUDED.head_seq IS NOT NULL AND (i.head_seq IS NULL OR EXCLUDED.head_seq > i.head_seq) THEN EXCLUDED.head_jws ELSE i.head_jws END,
           head_seq = CASE WHEN EXCLUDED.head_seq IS NOT NULL AND (i.head_seq IS NULL OR EXCLUDED.head_seq > i.head_seq) THEN EXCLUDED.head_seq ELSE i.head_seq END,
           updated_at = now()`,
        [instance, last.seq, head?.seq ?? null, head?.jws ?? null],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  // ---- reading ----------------------------------------------------------------------------------

  /** The store as a record source for listing, replay and review (every instance). */
  source(): RecordSource {
    return { name: this.name, records: (options) => this.records(options) };
  }

  /** Every shipped record, instance by instance in seq order, parsed without checking hashes. */
  async *records(options: ReadOptions = {}): AsyncGenerator<StoredRecord> {
    const prefix = options.sessionPrefix ?? null;
    let after: { instance: string; seq: number } = { instance: '', seq: -1 };
    const wire = new WireDecoder();
    for (;;) {
      const rows = await this.read(
        pageOf(
          `SELECT instance, seq, file, line FROM ${this.t.records}
           WHERE ($1::text IS NULL OR instance = $1)
             AND ($2::boolean IS NOT TRUE OR sid IS NOT NULL OR kind = 'open')
             AND ($3::text IS NULL OR left(sid, length($3)) = $3 OR ($7::boolean AND kind = 'open'))
             AND ($4::integer IS NULL OR segment >= $4)
             AND (instance, seq) > ($5, $6)`,
          'instance, seq',
          this.page,
        ),
        [options.instance ?? null, options.sessionsOnly === true || prefix !== null, prefix, options.fromSegment ?? null, after.instance, after.seq, options.withOpens === true],
      );
      for (const row of rows) {
        const instance = row.instance as string;
        const parsed = parseLine(row.line as Buffer, false);
        if (!parsed.ok) continue;
        // A statement written with its first result is read as the two records it stands for; a
        // wire record as the records its bytes stand for.
        for (const record of await readerRecords(parsed.record, instance, wire)) yield { record, instance, file: row.file as string, line: 0 };
      }
      const last = rows[rows.length - 1];
      if (!last) return;
      after = { instance: last.instance as string, seq: Number(last.seq) };
    }
  }

  // ---- verification -----------------------------------------------------------------------------

  /** Instances with shipped records or a shipped head. */
  async instances(): Promise<string[]> {
    const rows = await this.read(`SELECT instance FROM ${this.t.instances} UNION SELECT DISTINCT instance FROM ${this.t.records} ORDER BY 1`, []);
    return rows.map((r) => r.instance as string);
  }

  /** The segments an instance's rows name, with their row counts. */
  async segmentsOf(instance: string): Promise<Array<{ file: string; rows: number; bytes: number }>> {
    const rows = await this.read(
      `SELECT file, count(*) AS n, sum(octet_length(line)) AS bytes FROM ${this.t.records} WHERE instance = $1 GROUP BY file ORDER BY min(seq), file`,
      [instance],
    );
    return rows.map((r) => ({ file: r.file as string, rows: Number(r.n), bytes: Number(r.bytes) }));
  }

  /** The rows of one segment of an instance, in seq order. */
  async *rowsOf(instance: string, file: string): AsyncGenerator<StoreRow> {
    let after = -1;
    for (;;) {
      const rows = await this.read(pageOf(`SELECT seq, segment, ts, kind, sid, line FROM ${this.t.records} WHERE instance = $1 AND file = $2 AND seq > $3`, 'seq', this.page), [
        instance,
        file,
        after,
      ]);
      for (const r of rows) {
        yield { seq: Number(r.seq), segment: Number(r.segment), ts: (r.ts as Date | null) ?? null, kind: r.kind as string, sid: (r.sid as string | null) ?? null, line: r.line as Buffer };
      }
      const last = rows[rows.length - 1];
      if (!last) return;
      after = Number(last.seq);
    }
  }

  /** The instance's shipped head (its newest checkpoint or seal, as a compact JWS). */
  async headOf(instance: string): Promise<string | undefined> {
    const rows = await this.read(`SELECT head_jws FROM ${this.t.instances} WHERE instance = $1`, [instance]);
    return (rows[0]?.head_jws as string | null | undefined) ?? undefined;
  }

  /** The public keys the instance registered (PEM by key id). */
  async keysOf(instance: string): Promise<Array<{ kid: string; pem: string }>> {
    const rows = await this.read(`SELECT kid, public_key FROM ${this.t.keys} WHERE instance = $1 ORDER BY first_seen, kid`, [instance]);
    return rows.map((r) => ({ kid: r.kid as string, pem: r.public_key as string }));
  }

  // ---- internals --------------------------------------------------------------------------------

  private async createTables(): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Tables created beforehand (by their owner) need no DDL, so the instances may use a role that
      // can only INSERT records: CREATE … IF NOT EXISTS checks the CREATE privilege first.
      const found = await client.query('SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL AS ok', [this.t.records, this.t.instances, this.t.keys]);
      if ((found.rows[0] as Row | undefined)?.ok === true) return;
      await client.query('BEGIN');
      // Instances starting together would otherwise race on CREATE … IF NOT EXISTS.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`warden transcripts schema ${this.schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.t.records} (
        instance text NOT NULL,
        seq bigint NOT NULL,
        segment integer NOT NULL,
        file text NOT NULL,
        ts timestamptz,
        kind text NOT NULL,
        sid text,
        line bytea NOT NULL,
        shipped_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (instance, seq)
      )`);
      await client.query(`CREATE INDEX IF NOT EXISTS transcript_records_sid ON ${this.t.records} (sid) WHERE sid IS NOT NULL`);
      await client.query(`CREATE INDEX IF NOT EXISTS transcript_records_ts ON ${this.t.records} (ts)`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.t.instances} (
        instance text PRIMARY KEY,
        shipped_seq bigint NOT NULL,
        head_seq bigint,
        head_jws text,
        updated_at timestamptz NOT NULL
      )`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.t.keys} (
        instance text NOT NULL,
        kid text NOT NULL,
        public_key text NOT NULL,
        first_seen timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (instance, kid)
      )`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private async query(text: string, values: unknown[]): Promise<Row[]> {
    this.usable();
    const result = await this.pool.query(text, values);
    return result.rows as Row[];
  }

  /** A reader's query: failures become TranscriptReadError (exit 1 in the CLI, 404 over HTTP). */
  private async read(text: string, values: unknown[]): Promise<Row[]> {
    try {
      return await this.query(text, values);
    } catch (err) {
      if (errnoCode(err) === UNDEFINED_TABLE) throw new TranscriptReadError(`nothing was shipped to ${this.name} yet: its tables do not exist`);
      throw new TranscriptReadError(`cannot read ${this.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private usable(): void {
    if (this.closed) throw new Error('the transcript store is closed');
  }
}
