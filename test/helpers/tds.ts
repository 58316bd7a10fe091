// TDS test support: the SQL Server stand-in in front of the harness PostgreSQL, warden with a
// TDS target pointing at it, and small promise wrappers around tedious.
import { Connection, Request, TYPES, type ConnectionConfiguration } from 'tedious';
import type { TdsTargetConfig } from '../../src/config/types.js';
import { startSqlServerStandIn, type SqlServerStandIn, type StandInOptions } from '../../fixtures/sqlserver-standin/index.js';
import { testPostgres, TEST_ROLES } from './pg-env.js';
import { pgTarget, startTestWarden, type TestWarden, type TestWardenOptions } from './warden.js';

/** The SQL login warden uses at the stand-in: the credential agents never see. */
export const STANDIN_LOGIN = { user: 'warden_svc', password: 'standin-secret-7' } as const;
/** The access token warden presents through FEDAUTH for the `shop_token` target. */
export const STANDIN_ACCESS_TOKEN = 'upstream-token-for-warden-only';

export async function startStandIn(opts: Partial<StandInOptions> = {}): Promise<SqlServerStandIn> {
  const pg = testPostgres();
  return startSqlServerStandIn({
    postgres: { host: pg.host, port: pg.port, user: TEST_ROLES.scram.user, password: TEST_ROLES.scram.password, database: 'shop' },
    logins: [STANDIN_LOGIN],
    tls: 'self-signed',
    acceptAccessToken: (t) => t === STANDIN_ACCESS_TOKEN,
    ...opts,
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
