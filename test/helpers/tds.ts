// TDS test support: the SQL Server stand-in in front of the harness PostgreSQL, warden with a
// TDS target pointing at it, and small promise wrappers around tedious.
import net from 'node:net';
import { Connection, Request, TYPES, type ConnectionConfiguration } from 'tedious';
import {
  decodeTokens,
  DEFAULT_PACKET_SIZE,
  encodeLogin7,
  encodePrelogin,
  encodeSqlBatch,
  ENCRYPTION,
  MAX_PACKET_SIZE,
  MessageAssembler,
  packetize,
  PACKET_TYPE,
  TDS_VERSION,
  transactionHeaders,
  type Login7,
  type Message,
  type Token,
} from '../../protocols/tds/index.js';
import type { TdsTargetConfig } from '../../src/config/types.js';
import { startSqlServerStandIn, type SqlServerStandIn, type StandInOptions } from '../../fixtures/sqlserver-standin/index.js';
import { testPostgres, TEST_ROLES } from './pg-env.js';
import { pgTarget, startTestWarden, type TestWarden, type TestWardenOptions } from './warden.js';

/** The SQL login warden uses at the stand-in: the credential agents never see. */
export const STANDIN_LOGIN = { user: 'warden_svc', password: 'standin-secret-7' } as const;
/** The access token warden presents through FEDAUTH for the `shop_token` target. */
export const STANDIN_ACCESS_TOKEN = 'upstream-token-for-warden-only';

/** The stand-in on the harness PostgreSQL; `noTls` starts it without a certificate (it then answers ENCRYPT_NOT_SUP). */
export async function startStandIn(opts: Partial<StandInOptions> & { noTls?: boolean } = {}): Promise<SqlServerStandIn> {
  const pg = testPostgres();
  const { noTls, ...rest } = opts;
  return startSqlServerStandIn({
    postgres: { host: pg.host, port: pg.port, user: TEST_ROLES.scram.user, password: TEST_ROLES.scram.password, database: 'shop' },
    logins: [STANDIN_LOGIN],
    ...(noTls ? {} : { tls: 'self-signed' as const }),
    acceptAccessToken: (t) => t === STANDIN_ACCESS_TOKEN,
    ...rest,
  });
}

/** A TDS target at the stand-in: its SQL login (or `accessToken` in `extra`), verify-full TLS against its certificate. */
export function tdsTarget(name: string, standin: SqlServerStandIn, extra: Partial<TdsTargetConfig> = {}): TdsTargetConfig {
  const login = extra.accessToken !== undefined ? {} : { user: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password };
  return {
    name,
    protocol: 'tds',
    host: standin.host,
    port: standin.port,
    database: 'shop',
    ...login,
    tls: { mode: 'verify-full', ca: standin.certificate ?? '', serverName: 'localhost' },
    connectTimeout: 5000,
    ...extra,
  };
}

export interface TdsHarness {
  standin: SqlServerStandIn;
  tw: TestWarden;
  /** warden's TDS port. */
  port: number;
  stop(): Promise<void>;
}

/** The stand-in, and warden with TDS targets `shop` (SQL login, verify-full) and `shop_token` (FEDAUTH token). */
export async function startTdsHarness(opts: TestWardenOptions & { standin?: Partial<StandInOptions> } = {}): Promise<TdsHarness> {
  const standin = await startStandIn(opts.standin);
  try {
    const tw = await startTestWarden({
      targets: [pgTarget('pg', TEST_ROLES.scram)],
      tdsTargets: [tdsTarget('shop', standin), tdsTarget('shop_token', standin, { accessToken: STANDIN_ACCESS_TOKEN })],
      ...opts,
    });
    const port = tw.warden.tds?.port;
    if (!port) throw new Error('warden did not open its TDS listener');
    return {
      standin,
      tw,
      port,
      stop: async () => {
        await tw.stop();
        await standin.stop();
      },
    };
  } catch (err) {
    await standin.stop();
    throw err;
  }
}

// ---- tedious -------------------------------------------------------------------------------------

export type Encrypt = boolean | 'strict';

export interface TediousTarget {
  port: number;
  database?: string;
  encrypt: Encrypt;
  /** Token as the password of a SQL login, or through FEDAUTH. */
  auth: { password: string; user?: string } | { fedauthToken: string };
  tdsVersion?: string;
  packetSize?: number;
  /** CA to verify the server with (strict encryption always verifies; tedious ignores trustServerCertificate there). */
  ca?: string;
}

export function tediousConfig(t: TediousTarget): ConnectionConfiguration {
  return {
    server: '127.0.0.1',
    authentication:
      'fedauthToken' in t.auth
        ? { type: 'azure-active-directory-access-token', options: { token: t.auth.fedauthToken } }
        : { type: 'default', options: { userName: t.auth.user ?? 'agent', password: t.auth.password } },
    options: {
      port: t.port,
      database: t.database ?? 'shop',
      encrypt: t.encrypt,
      trustServerCertificate: true,
      serverName: 'localhost',
      connectTimeout: 15_000,
      requestTimeout: 30_000,
      rowCollectionOnRequestCompletion: true,
      useColumnNames: false,
      maxRetriesOnTransientErrors: 0,
      ...(t.ca ? { cryptoCredentialsDetails: { ca: t.ca } } : {}),
      ...(t.tdsVersion ? { tdsVersion: t.tdsVersion } : {}),
      ...(t.packetSize ? { packetSize: t.packetSize } : {}),
    },
  };
}

export function connectTedious(config: ConnectionConfiguration): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const c = new Connection(config);
    c.on('error', () => undefined);
    c.connect((err) => (err ? reject(err) : resolve(c)));
  });
}

export interface QueryResult {
  /** One entry per result set: column names and rows of values as tedious gives them. */
  sets: { columns: string[]; rows: unknown[][] }[];
  rowCount: number | undefined;
  infos: string[];
}

/** Runs a batch (or an sp_executesql when `params` are given) and collects every result set. */
export function query(c: Connection, sql: string, params: [string, unknown, unknown][] = []): Promise<QueryResult> {
  return new Promise((resolve, reject) => {
    const sets: QueryResult['sets'] = [];
    const infos: string[] = [];
    const onInfo = (info: { message: string }): void => {
      infos.push(info.message);
    };
    c.on('infoMessage', onInfo);
    const req = new Request(sql, (err, rowCount) => {
      c.off('infoMessage', onInfo);
      if (err) reject(err);
      else resolve({ sets, rowCount, infos });
    });
    for (const [name, type, value] of params) req.addParameter(name, type as (typeof TYPES)[keyof typeof TYPES], value);
    // useColumnNames is false: columns and rows come as arrays.
    req.on('columnMetadata', (cols) => sets.push({ columns: (cols as { colName: string }[]).map((x) => x.colName), rows: [] }));
    req.on('row', (cols) => sets[sets.length - 1]?.rows.push((cols as unknown as { value: unknown }[]).map((x) => x.value)));
    if (params.length > 0) c.execSql(req);
    else c.execSqlBatch(req);
  });
}

export function closeTedious(c: Connection): Promise<void> {
  return new Promise((resolve) => {
    if ((c as unknown as { closed?: boolean }).closed) return resolve();
    c.once('end', () => resolve());
    c.close();
  });
}

export { TYPES };

// ---- a raw TDS client (malformed input, ATTENTION) ----------------------------------------------

export interface RawTds {
  socket: net.Socket;
  /** The next whole message from the server (rejects when the connection closes first). */
  next(timeoutMs?: number): Promise<Message>;
  /** Resolves once the server has closed the connection. */
  closed: Promise<void>;
  send(type: number, payload: Buffer, packetSize?: number): void;
}

export async function rawConnect(port: number): Promise<RawTds> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return rawConnectOn(socket);
}

/** A raw TDS client on a connected socket (e.g. back in plaintext after login-only TLS). */
export async function rawConnectOn(socket: net.Socket): Promise<RawTds> {
  socket.on('error', () => undefined);
  socket.resume();
  const assembler = new MessageAssembler({ packetSize: MAX_PACKET_SIZE });
  const queue: Message[] = [];
  const waiters: ((m: Message | undefined) => void)[] = [];
  let ended = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    ended = true;
    for (const w of waiters.splice(0)) w(undefined);
    resolve();
  }));
  socket.on('data', (chunk: Buffer) => {
    assembler.push(chunk);
    for (let m = assembler.nextMessage(); m; m = assembler.nextMessage()) {
      const w = waiters.shift();
      if (w) w(m);
      else queue.push(m);
    }
  });
  return {
    socket,
    closed,
    send: (type, payload, packetSize = DEFAULT_PACKET_SIZE) => socket.write(packetize(type, payload, packetSize)),
    next: (timeoutMs = 10_000) => {
      const q = queue.shift();
      if (q) return Promise.resolve(q);
      if (ended) return Promise.reject(new Error('connection closed'));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message in time')), timeoutMs);
        waiters.push((m) => {
          clearTimeout(timer);
          if (m) resolve(m);
          else reject(new Error('connection closed'));
        });
      });
    },
  };
}

/** A LOGIN7 as tedious would send it, for `database`, with `password` (the token). */
export function login7(password: string, database = 'shop', extra: Partial<Login7> = {}): Login7 {
  return {
    tdsVersion: TDS_VERSION.V7_4,
    packetSize: 4096,
    clientProgVer: 0,
    clientPid: process.pid,
    connectionId: 0,
    optionFlags1: 0xe0,
    optionFlags2: 0x03,
    typeFlags: 0,
    optionFlags3: 0,
    clientTimeZone: 0,
    clientLcid: 0x0409,
    hostName: 'raw-test',
    userName: 'agent',
    password,
    appName: 'warden-raw-test',
    serverName: 'localhost',
    clientInterfaceName: 'raw',
    language: '',
    database,
    clientId: Buffer.alloc(6),
    sspi: Buffer.alloc(0),
    attachDbFile: '',
    changePassword: '',
    ...extra,
  };
}

/** PRELOGIN without encryption, then LOGIN7 with `password`; returns the login response's tokens. */
export async function rawLogin(raw: RawTds, password: string, database = 'shop'): Promise<Token[]> {
  raw.send(PACKET_TYPE.PRELOGIN, encodePrelogin({ version: { major: 1, minor: 0, build: 0, subBuild: 0 }, encryption: ENCRYPTION.ENCRYPT_NOT_SUP }));
  await raw.next();
  raw.send(PACKET_TYPE.LOGIN7, encodeLogin7(login7(password, database)));
  return decodeTokens((await raw.next()).payload, { tdsVersion: TDS_VERSION.V7_4 });
}

export function batch(sql: string): Buffer {
  return encodeSqlBatch({ headers: transactionHeaders(), sql }, { tdsVersion: TDS_VERSION.V7_4 });
}
