// tedious 19 for the stand-in tests: connect (plaintext, TLS in PRELOGIN, TDS 8.0 strict, SQL
// login or access token) and run batches, sp_executesql and procedures, collecting result sets,
// INFO messages, OUTPUT values, the return status and the row count.

import { Connection, Request, TYPES } from 'tedious';
import { LOGIN } from './standin-support.js';

export interface TediousConnectOptions {
  readonly port: number;
  readonly encrypt: boolean | 'strict';
  /** The stand-in's certificate: verified for 'strict' (tedious checks it there). */
  readonly ca?: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly database?: string;
  readonly tdsVersion?: string;
}

export interface TediousSet {
  readonly columns: string[];
  /** tedious's name for each column's TDS type (IntN, NVarChar, DateTime2, ...). */
  readonly types: string[];
  readonly rows: unknown[][];
}

export interface TediousResult {
  readonly sets: TediousSet[];
  readonly error?: { readonly number: number; readonly message: string };
  readonly infos: { readonly number: number; readonly message: string }[];
  readonly outputs: Record<string, unknown>;
  readonly returnStatus?: number;
  /** The row count tedious reports for the request (undefined under SET NOCOUNT ON). */
  readonly rowCount?: number;
}

export interface TediousSession {
  readonly connection: Connection;
  batch(sql: string): Promise<TediousResult>;
  execSql(sql: string, params: readonly TediousParam[]): Promise<TediousResult>;
  procedure(name: string, params: readonly TediousParam[]): Promise<TediousResult>;
  close(): Promise<void>;
}

export interface TediousParam {
  readonly name: string;
  readonly type: keyof typeof TYPES;
  readonly value: unknown;
  readonly output?: boolean;
  readonly options?: Record<string, unknown>;
}

export async function tedious(o: TediousConnectOptions): Promise<TediousSession> {
  const authentication = o.token
    ? { type: 'azure-active-directory-access-token' as const, options: { token: o.token } }
    : { type: 'default' as const, options: { userName: o.user ?? LOGIN.user, password: o.password ?? LOGIN.password } };
  const connection = new Connection({
    server: '127.0.0.1',
    authentication,
    options: {
      port: o.port,
      database: o.database ?? 'shop',
      encrypt: o.encrypt,
      trustServerCertificate: true,
      ...(o.ca ? { cryptoCredentialsDetails: { ca: o.ca } } : {}),
      ...(o.tdsVersion ? { tdsVersion: o.tdsVersion } : {}),
      connectTimeout: 15_000,
      requestTimeout: 60_000,
    },
  } as ConstructorParameters<typeof Connection>[0]);
  await new Promise<void>((resolve, reject) => {
    connection.once('connect', (err) => (err ? reject(err) : resolve()));
    connection.connect();
  });
  let infos: { number: number; message: string }[] = [];
  connection.on('infoMessage', (i: { number: number; message: string }) => infos.push({ number: i.number, message: i.message }));
  const run = (request: Request, start: (r: Request) => void): Promise<TediousResult> =>
    new Promise((resolve) => {
      infos = [];
      const sets: TediousSet[] = [];
      const outputs: Record<string, unknown> = {};
      let returnStatus: number | undefined;
      type Column = { colName: string; type: { name: string } };
      request.on('columnMetadata', (cols: Column[] | Record<string, Column>) => {
        const list = Array.isArray(cols) ? cols : Object.values(cols);
        sets.push({ columns: list.map((c) => c.colName), types: list.map((c) => c.type.name), rows: [] });
      });
      request.on('row', (cols: { value: unknown }[]) => sets[sets.length - 1]!.rows.push(cols.map((c) => c.value)));
      request.on('returnValue', (name: string, value: unknown) => (outputs[name] = value));
      request.on('doneProc', (_rc: number | undefined, _more: boolean, status: number) => (returnStatus = status));
      (request as unknown as { callback: (err?: Error & { number?: number }, rowCount?: number) => void }).callback = (err, rowCount) => {
        resolve({
          sets,
          ...(rowCount !== undefined ? { rowCount } : {}),
          infos,
          outputs,
          ...(returnStatus !== undefined ? { returnStatus } : {}),
          ...(err ? { error: { number: err.number ?? -1, message: err.message } } : {}),
        });
      };
      start(request);
    });
  const addParams = (r: Request, params: readonly TediousParam[]): void => {
    for (const p of params) {
      const type = TYPES[p.type] as Parameters<Request['addParameter']>[1];
      if (p.output) r.addOutputParameter(p.name, type, p.value, p.options);
      else r.addParameter(p.name, type, p.value, p.options);
    }
  };
  return {
    connection,
    batch: (sql) => run(new Request(sql, () => undefined), (r) => connection.execSqlBatch(r)),
    execSql: (sql, params) =>
      run(new Request(sql, () => undefined), (r) => {
        addParams(r, params);
        connection.execSql(r);
      }),
    procedure: (name, params) =>
      run(new Request(name, () => undefined), (r) => {
        addParams(r, params);
        connection.callProcedure(r);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        connection.once('end', () => resolve());
        connection.close();
      }),
  };
}

