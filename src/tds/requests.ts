// What a TDS request asks the server to run, read with the codec and classified: the SQL text of
// a SQLBatch; for RPC, the statement of sp_executesql / sp_prepare / sp_prepexec / sp_cursor*
// (or the prepared statement an sp_execute handle stands for) with its parameters decoded to
// display strings, or the procedure called by name; for TransMgr, the transaction command.
import {
  decodeRpcRequest,
  decodeSqlBatch,
  decodeTransMgrRequest,
  PACKET_TYPE,
  PROC_ID,
  TM_REQUEST,
  type RpcCall,
  type RpcParameter,
} from '../../protocols/tds/index.js';
import { ProtocolError } from '../../protocols/errors.js';
import type { StatementParam } from '../audit/types.js';
import type { Classification } from '../sql/types.js';
import { classifyProcedure, classifyTsql } from './classify.js';
import { displayFullBytes, displayValue, sqlTypeName } from './display.js';

/** One statement of a request, as recorded and judged. */
export interface RequestStatement {
  readonly text: string;
  readonly classification: Classification;
  /** batch, rpc, transmgr. */
  readonly via: 'batch' | 'rpc' | 'transmgr';
  /** The procedure (RPC), e.g. sp_executesql or dbo.count_active. */
  readonly name?: string;
  readonly params?: StatementParam[];
  /** sp_prepare and friends: the handle comes back in a RETURNVALUE; remember the statement under it. */
  readonly prepares?: boolean;
  /** sp_unprepare / sp_cursorunprepare: forget this handle. */
  readonly unprepares?: number;
}

/** A statement prepared on this connection, by its handle. */
export interface PreparedStatement {
  readonly text: string;
  readonly classification: Classification;
}

const NAMED_PROCS: ReadonlyMap<string, number> = new Map(
  Object.entries(PROC_ID).map(([k, v]) => [k.toLowerCase(), v] as [string, number]),
);

function procId(call: RpcCall): number | undefined {
  if (call.procId !== undefined) return call.procId;
  const name = call.procName ?? '';
  const last = name.split('.').pop()?.replace(/^\[|\]$/g, '').toLowerCase() ?? '';
  // sp_executesql and friends may be called by name, e.g. sys.sp_executesql.
  return NAMED_PROCS.get(last);
}

const PROC_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(PROC_ID).map(([k, v]) => [v, k.toLowerCase()] as [number, string]));

function text(p: RpcParameter | undefined): string | undefined {
  return typeof p?.value === 'string' ? p.value : undefined;
}

function handle(p: RpcParameter | undefined): number | undefined {
  const v = p?.value;
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

function params(list: readonly RpcParameter[]): StatementParam[] {
  return list.map((p) => {
    const full = displayFullBytes(p.value);
    return { type: sqlTypeName(p.typeInfo), value: displayValue(p.value, p.typeInfo), ...(p.name ? { name: p.name } : {}), ...(full === undefined ? {} : { fullBytes: full }) };
  });
}

const notUnderstood = (error: string): Classification => ({ ok: false, error });

export interface DescribeOptions {
  readonly tdsVersion: number;
  readonly maxValueLength: number;
  readonly prepared: ReadonlyMap<number, PreparedStatement>;
}

/** The statements of one request. Malformed requests throw ProtocolError. */
export function describeRequest(type: number, payload: Buffer, opts: DescribeOptions): RequestStatement[] {
  const ctx = { tdsVersion: opts.tdsVersion };
  switch (type) {
    case PACKET_TYPE.SQL_BATCH: {
      const sql = decodeSqlBatch(payload, ctx).sql;
      return [{ text: sql, classification: classifyTsql(sql), via: 'batch' }];
    }
    case PACKET_TYPE.RPC:
      return decodeRpcRequest(payload, ctx, { maxValueLength: opts.maxValueLength }).calls.map((c) => describeCall(c, opts.prepared));
    case PACKET_TYPE.TRANSACTION_MANAGER:
      return [describeTransMgr(payload, ctx)];
    default:
      throw new ProtocolError(`packet type 0x${type.toString(16)} is not a request`);
  }
}

/** Decodes a request without classifying it (pass-through sessions still refuse malformed requests). */
export function validateRequest(type: number, payload: Buffer, opts: Pick<DescribeOptions, 'tdsVersion' | 'maxValueLength'>): void {
  const ctx = { tdsVersion: opts.tdsVersion };
  if (type === PACKET_TYPE.SQL_BATCH) decodeSqlBatch(payload, ctx);
  else if (type === PACKET_TYPE.RPC) decodeRpcRequest(payload, ctx, { maxValueLength: opts.maxValueLength });
  else if (type === PACKET_TYPE.TRANSACTION_MANAGER) decodeTransMgrRequest(payload, ctx);
  else throw new ProtocolError(`packet type 0x${type.toString(16)} is not a request`);
}

function describeCall(call: RpcCall, prepared: ReadonlyMap<number, PreparedStatement>): RequestStatement {
  const id = procId(call);
  const p = call.parameters;
  const name = call.procName ?? PROC_NAMES.get(id ?? -1) ?? `procedure ${call.procId}`;
  const statement = (index: number, rest: number, prepares = false): RequestStatement => {
    const sql = text(p[index]);
    if (sql === undefined) return { text: name, classification: notUnderstood(`${name} without a statement text`), via: 'rpc', name, params: params(p) };
    return { text: sql, classification: classifyTsql(sql), via: 'rpc', name, params: params(p.slice(rest)), ...(prepares ? { prepares } : {}) };
  };
  const execute = (rest: number): RequestStatement => {
    const h = handle(p[0]);
    const known = h === undefined ? undefined : prepared.get(h);
    if (!known) return { text: name, classification: notUnderstood(`${name} of a handle warden did not see prepared`), via: 'rpc', name, params: params(p) };
    return { text: known.text, classification: known.classification, via: 'rpc', name, params: params(p.slice(rest)) };
  };
  switch (id) {
    case PROC_ID.SP_EXECUTESQL:
      return statement(0, 2);
    case PROC_ID.SP_PREPARE:
      return statement(2, 4, true);
    case PROC_ID.SP_PREPEXEC:
      return statement(2, 3, true);
    case PROC_ID.SP_EXECUTE:
      return execute(1);
    case PROC_ID.SP_CURSOROPEN:
      return statement(1, 5);
    case PROC_ID.SP_CURSORPREPARE:
      return statement(2, 6, true);
    case PROC_ID.SP_CURSORPREPEXEC:
      return statement(3, 8, true);
    case PROC_ID.SP_CURSOREXECUTE:
      return execute(5);
    case PROC_ID.SP_UNPREPARE:
    case PROC_ID.SP_CURSORUNPREPARE: {
      const h = handle(p[0]);
      return { text: name, classification: classifyProcedure(name), via: 'rpc', name, params: params(p), ...(h !== undefined ? { unprepares: h } : {}) };
    }
    case PROC_ID.SP_CURSOR:
      return { text: name, classification: notUnderstood('sp_cursor (a positioned change through a server cursor) is not understood'), via: 'rpc', name, params: params(p) };
    case PROC_ID.SP_PREPEXECRPC:
      return { text: name, classification: notUnderstood('sp_prepexecrpc is not understood'), via: 'rpc', name, params: params(p) };
    default:
      // sp_cursorfetch/option/close and procedures called by name.
      return { text: `EXEC ${name}`, classification: classifyProcedure(name), via: 'rpc', name, params: params(p) };
  }
}

function describeTransMgr(payload: Buffer, ctx: { tdsVersion: number }): RequestStatement {
  const req = decodeTransMgrRequest(payload, ctx);
  const named = (verb: string): RequestStatement => {
    const sql = req.name ? `${verb} [${req.name.replace(/]/g, ']]')}]` : verb;
    return { text: sql, classification: classifyTsql(sql), via: 'transmgr' };
  };
  switch (req.requestType) {
    case TM_REQUEST.BEGIN_XACT:
      return named('BEGIN TRANSACTION');
    case TM_REQUEST.COMMIT_XACT:
      return named('COMMIT TRANSACTION');
    case TM_REQUEST.ROLLBACK_XACT:
      return named('ROLLBACK TRANSACTION');
    case TM_REQUEST.SAVE_XACT:
      return named('SAVE TRANSACTION');
    default:
      return { text: `TransMgr request ${req.requestType}`, classification: notUnderstood('distributed transaction requests are not understood'), via: 'transmgr' };
  }
}
