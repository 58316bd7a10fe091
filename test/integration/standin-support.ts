// Test support for the SQL Server stand-in: a stand-in over a database of its own (the shop
// schema and rows, loaded fresh), the scenario every TDS client runs, what node-postgres reads
// for the same rows and what each client should show for them, and a raw TDS client.
// standin-tedious-client.ts drives tedious; standin-pcap.ts records sessions for tshark.

import net from 'node:net';
import pg from 'pg';
import { seedShop } from '../../src/embedded/seed.js';
import { MAX_PACKET_SIZE, type Message, MessageAssembler } from '../../protocols/tds/index.js';
import { type SqlServerStandIn, type StandInOptions, startSqlServerStandIn } from '../../fixtures/sqlserver-standin/index.js';
import { testPostgres } from '../helpers/pg-env.js';

export const LOGIN = { user: 'standin_tester', password: 'Standin-pw-1' } as const;

export interface StandInHarness {
  readonly standin: SqlServerStandIn;
  readonly port: number;
  /** The PostgreSQL database behind the stand-in (superuser URL). */
  readonly pgUrl: string;
  stop(): Promise<void>;
}

export function superuserUrl(database = 'postgres'): string {
  const p = testPostgres();
  return `postgres://postgres:${encodeURIComponent(p.superuserPassword)}@${p.host}:${p.port}/${database}`;
}

/**
 * A stand-in over database `standin_<name>`, freshly loaded with the shop schema and rows; with
 * a self-signed certificate unless `withTls` is false (then it answers ENCRYPT_NOT_SUP).
 */
export async function startStandIn(name: string, extra: Partial<StandInOptions> = {}, withTls = true): Promise<StandInHarness> {
  const p = testPostgres();
  const database = `standin_${name}`;
  await seedShop(superuserUrl(), database);
  const standin = await startSqlServerStandIn({
    postgres: { host: p.host, port: p.port, user: 'postgres', password: p.superuserPassword, database },
    logins: [LOGIN],
    ...(withTls ? { tls: 'self-signed' as const } : {}),
    ...extra,
  });
  return {
    standin,
    port: standin.port,
    pgUrl: superuserUrl(database),
    stop: () => standin.stop(),
  };
}

/** Rows as PostgreSQL's text (no type parsing), the way the stand-in reads them too. */
export async function pgRows(url: string, sql: string, values: unknown[] = []): Promise<(string | null)[][]> {
  const c = new pg.Client({ connectionString: url, options: '-c TimeZone=UTC -c DateStyle=ISO,YMD' });
  await c.connect();
  try {
    const r = await c.query({ text: sql, values, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
    return r.rows as (string | null)[][];
  } finally {
    await c.end();
  }
}

/** The first column of the first row, as text. */
export async function pgScalar(url: string, sql: string, values: unknown[] = []): Promise<string | null> {
  return (await pgRows(url, sql, values))[0]?.[0] ?? null;
}

/** The queries every client runs, with how to read the expected answer from PostgreSQL. */
export const SCENARIO = {
  selectAll: 'SELECT * FROM customers ORDER BY id',
  twoResults:
    'SELECT id, full_name, email FROM customers WHERE id <= 3 ORDER BY id; ' +
    'SELECT COUNT(*) AS n, SUM(salary) AS total_salary, MAX(balance) AS max_balance FROM customers',
  twoResultsPg: [
    'SELECT id, full_name, email FROM customers WHERE id <= 3 ORDER BY id',
    'SELECT count(*), sum(salary), max(balance) FROM customers',
  ],
  divideByZero: 'SELECT 1/0 AS boom',
  invalidObject: 'SELECT * FROM no_such_table',
  print: "PRINT 'hello from print'",
  rollbackEmail: 'rolled-back@example.com',
  executeSqlOutput: {
    statement: "SET @cnt = (SELECT COUNT(*) FROM customers WHERE salary > @min); SET @label = N'over ' + CAST(@min AS nvarchar(20))",
    params: '@min decimal(12, 2), @cnt int OUTPUT, @label nvarchar(4000) OUTPUT',
    min: '100000.50',
    pg: 'SELECT count(*) FROM customers WHERE salary > 100000.50',
  },
  executeSqlRows: {
    statement: 'SELECT id, full_name, ssn, salary FROM customers WHERE id = @id OR full_name = @name ORDER BY id',
    params: '@id int, @name nvarchar(40)',
    id: 2,
    name: 'Hana 花子 Dummy',
    pg: "SELECT id, full_name, ssn, salary FROM customers WHERE id = 2 OR full_name = 'Hana 花子 Dummy' ORDER BY id",
  },
  procedure: { minRank: 1000, status: 7, pg: 'SELECT count(*) FROM customers WHERE is_active AND rank >= 1000' },
  prepared: {
    pg: (n: number) => `SELECT id, full_name, email FROM customers WHERE id <= ${n} ORDER BY id`,
  },
  large: "SELECT REPLICATE(CAST(N'ab' AS nvarchar(max)), 50000) AS long_text, notes FROM customers WHERE id = 2",
  largePg: "SELECT repeat('ab', 50000), notes FROM customers WHERE id = 2",
  sleep: 'SELECT 1 AS slept FROM (SELECT pg_sleep(30) AS x) s',
} as const;

/** PostgreSQL queries still running on the stand-in's connections to `database` (besides ours). */
export async function runningStandInQueries(database: string): Promise<string[]> {
  const rows = await pgRows(
    superuserUrl(),
    `SELECT query FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND application_name LIKE 'sqlserver-standin%'`,
    [database],
  );
  return rows.map((r) => r[0] ?? '');
}

export async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

// ---------------------------------------------------------------------------------------------
// what each client should show for PostgreSQL's values

export type ValueKind = 'int' | 'bigint' | 'text' | 'numeric' | 'float' | 'date' | 'timestamp' | 'timestamptz' | 'bool' | 'bytea' | 'uuid';

/** The shop's customers columns, in order. */
export const CUSTOMER_KINDS: readonly ValueKind[] = [
  'int', 'text', 'text', 'text', 'text', 'numeric', 'numeric', 'date', 'timestamp', 'timestamptz', 'bool', 'text',
  'bytea', 'uuid', 'float', 'int', 'bigint',
];

export const CUSTOMER_COLUMNS = [
  'id', 'full_name', 'email', 'ssn', 'card_number', 'salary', 'balance', 'birth_date', 'created_at', 'last_login',
  'is_active', 'notes', 'avatar', 'external_id', 'score', 'rank', 'big',
];

export type ClientKind = 'tedious' | 'jtds' | 'tsql';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** FreeTDS's default date format: "Sep  7 1953 12:00AM" (minutes, truncated). */
function freetdsDate(text: string): string {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?: (\d\d):(\d\d))?/.exec(text)!;
  const hour = Number(m[4] ?? 0);
  const h12 = hour % 12 === 0 ? 12 : hour % 12;
  return `${MONTHS[Number(m[2]) - 1]} ${String(Number(m[3])).padStart(2, ' ')} ${m[1]} ${String(h12).padStart(2, '0')}:${m[5] ?? '00'}${hour < 12 ? 'AM' : 'PM'}`;
}

/** 'YYYY-MM-DD hh:mm:ss[.ffffff]' with the fraction as 7 digits (SQL Server's datetime2(7) text). */
function sevenDigits(text: string): string {
  const m = /^(\S+ \d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(text)!;
  return `${m[1]}.${(m[2] ?? '').padEnd(7, '0')}${m[3]}`;
}

/** What `client` returns for PostgreSQL's text `v` of kind `k`, in comparable form (see comparable()). */
export function expectedValue(client: ClientKind, k: ValueKind, v: string | null): unknown {
  if (v === null) return client === 'tsql' ? 'NULL' : null;
  switch (k) {
    case 'int':
      return client === 'tedious' ? Number(v) : v;
    case 'bigint':
    case 'text':
      return v;
    case 'numeric':
    case 'float':
      return Number(v);
    case 'bool':
      return client === 'tsql' ? (v === 't' ? '1' : '0') : v === 't';
    case 'bytea':
      return v.slice(2);
    case 'uuid':
      return v.toUpperCase();
    case 'date':
      if (client === 'tedious') return `${v}T00:00:00.000Z`;
      return client === 'tsql' ? freetdsDate(v) : v;
    case 'timestamp':
    case 'timestamptz': {
      if (client === 'tsql') return freetdsDate(v);
      if (client === 'jtds') {
        const t = sevenDigits(v.replace(/\+00$/, ''));
        return k === 'timestamptz' ? `${t} +00:00` : t;
      }
      const m = /^(\S+) (\d\d:\d\d:\d\d)(?:\.(\d+))?/.exec(v)!;
      return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(3, '0').slice(0, 3)}Z`;
    }
  }
}

/** A client's value in the form expectedValue() produces. */
export function comparable(k: ValueKind, v: unknown): unknown {
  if (v === null || v === undefined || v === 'NULL') return v ?? null;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if ((k === 'numeric' || k === 'float') && typeof v === 'string' && v !== 'NULL') return Number(v);
  if (k === 'bytea' && typeof v === 'string') return v.replace(/^0x/i, '').toLowerCase();
  if (k === 'uuid' && typeof v === 'string') return v.toUpperCase();
  return v;
}

export function expectedRows(client: ClientKind, kinds: readonly ValueKind[], rows: readonly (readonly (string | null)[])[]): unknown[][] {
  return rows.map((r) => r.map((v, i) => expectedValue(client, kinds[i]!, v)));
}

export function comparableRows(kinds: readonly ValueKind[], rows: readonly (readonly unknown[])[]): unknown[][] {
  return rows.map((r) => r.map((v, i) => comparable(kinds[i]!, v)));
}

// ---------------------------------------------------------------------------------------------
// a raw TDS client: bytes in, whole server messages out

export class RawTds {
  private readonly assembler = new MessageAssembler({ packetSize: MAX_PACKET_SIZE });
  private readonly messages: Message[] = [];
  private waiting: (() => void) | undefined;
  private ended = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.assembler.push(d);
      for (let m = this.assembler.nextMessage(); m; m = this.assembler.nextMessage()) this.messages.push(m);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiting?.();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawTds> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawTds(s)));
      s.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next whole message from the server (rejects on timeout or when the server hangs up). */
  async next(timeoutMs = 15_000): Promise<Message> {
    const until = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      if (this.ended) throw new Error('the server closed the connection');
      const left = until - Date.now();
      if (left <= 0) throw new Error('no message from the server in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = undefined;
    }
    return this.messages.shift()!;
  }

  /** True once the server has closed the connection. */
  async closedByServer(timeoutMs = 5000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    return this.ended;
  }

  close(): void {
    this.socket.destroy();
  }
}
