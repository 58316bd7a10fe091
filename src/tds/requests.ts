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
import { cutForApprovers } from '../approvals/fingerprint.js';
import type { StatementParam } from '../audit/types.js';
import type { Classification } from '../sql/types.js';
import { classifyProcedure, classifyTsql, procedureNameParts } from './classify.js';
import { foldedLastPart } from './tsql-scan.js';
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
  /** The parameters as approvers see them, when one was cut for display (marked, with its whole size and SHA-256). */
  readonly heldParams?: (string | null)[];
  /** sp_prepare and friends: the handle comes back in the RETURNVALUE of parameter 0; remember the statement under it. */
  readonly prepares?: HandleKind;
  /** sp_unprepare / sp_cursorunprepare: forget this handle. */
  readonly unprepares?: string;
  /** sp_prepare / sp_cursorprepare: the statement is only prepared, not run (each execution of its handle is judged). */
  readonly preparesOnly?: true;
}

/**
 * sp_prepare/sp_prepexec handles (run by sp_execute) and sp_cursorprepare/sp_cursorprepexec
 * handles (run by sp_cursorexecute) are kept apart: a handle of one kind never stands for a
 * statement prepared as the other.
 */
export type HandleKind = 'statement' | 'cursor';

/** The key of a prepared handle in the session's map. */
export function handleKey(kind: HandleKind, handle: number): string {
  return `${kind}:${handle}`;
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
  // sp_executesql and friends may be called by name, e.g. sys.sp_executesql or [sp_executesql ].
  const parts = procedureNameParts(call.procName ?? '');
  const last = parts?.[parts.length - 1];
  return last === undefined ? undefined : NAMED_PROCS.get(foldedLastPart(last).toLowerCase());
}

/**
 * The statement (or handle) parameter of a special procedure, at `index` by position: refused when
 * the client named its parameters so that the server may bind another one to it.
 */
function boundAt(list: readonly RpcParameter[], index: number, names: readonly string[]): RpcParameter | undefined {
  const named = list.findIndex((x) => names.includes(x.name.toLowerCase()));
  const at = list[index];
  if (named === index || (named < 0 && at !== undefined && at.name === '')) return at;
  return undefined;
}

const STATEMENT_NAMES = ['@stmt', '@statement'];
const HANDLE_NAMES = ['@handle', '@prepared_handle'];

const PROC_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(PROC_ID).map(([k, v]) => [v, k.toLowerCase()] as [number, string]));

function text(p: RpcParameter | undefined): string | undefined {
  return typeof p?.value === 'string' ? p.value : undefined;
}

function handle(p: RpcParameter | undefined): number | undefined {
  const v = p?.value;
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

/** The parameters for the transcript and, when one was cut for display, as approvers see them (cutForApprovers). */
function paramsOf(list: readonly RpcParameter[]): { params: StatementParam[]; heldParams?: (string | null)[] } {
  let cut = false;
  const params = list.map((p): StatementParam => {
    const full = displayFullBytes(p.value);
    if (full !== undefined) cut = true;
    return { type: sqlTypeName(p.typeInfo), value: displayValue(p.value, p.typeInfo), ...(p.name ? { name: p.name } : {}), ...(full === undefined ? {} : { fullBytes: full }) };
  });
  if (!cut) return { params };
  const heldParams = params.map((sp, i) => {
    const v = list[i]?.value;
    return sp.fullBytes === undefined || sp.value === null || (typeof v !== 'string' && !Buffer.isBuffer(v)) ? sp.value : cutForApprovers(sp.value, v, sp.fullBytes);
  });
  return { params, heldParams };
}

const notUnderstood = (error: string): Classification => ({ ok: false, error });

export interface DescribeOptions {
  readonly tdsVersion: number;
  readonly maxValueLength: number;
  readonly prepared: ReadonlyMap<string, PreparedStatement>;
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

function describeCall(call: RpcCall, prepared: ReadonlyMap<string, PreparedStatement>): RequestStatement {
  const id = procId(call);
  const p = call.parameters;
  const name = call.procName ?? PROC_NAMES.get(id ?? -1) ?? `procedure ${call.procId}`;
  const statement = (index: number, rest: number, prepares?: HandleKind, only?: true): RequestStatement => {
    const sql = text(boundAt(p, index, STATEMENT_NAMES));
    if (sql === undefined) return { text: name, classification: notUnderstood(`${name} without a statement text`), via: 'rpc', name, ...paramsOf(p) };
    return { text: sql, classification: classifyTsql(sql), via: 'rpc', name, ...paramsOf(p.slice(rest)), ...(prepares ? { prepares } : {}), ...(only ? { preparesOnly: only } : {}) };
  };
  const execute = (kind: HandleKind, rest: number): RequestStatement => {
    const h = handle(boundAt(p, 0, HANDLE_NAMES));
    const known = h === undefined ? undefined : prepared.get(handleKey(kind, h));
    if (!known) return { text: name, classification: notUnderstood(`${name} of a handle warden did not see prepared`), via: 'rpc', name, ...paramsOf(p) };
    return { text: known.text, classification: known.classification, via: 'rpc', name, ...paramsOf(p.slice(rest)) };
  };
  switch (id) {
    case PROC_ID.SP_EXECUTESQL:
      return statement(0, 2);
    case PROC_ID.SP_PREPARE:
      return statement(2, 4, 'statement', true);
    case PROC_ID.SP_PREPEXEC:
      return statement(2, 3, 'statement');
    case PROC_ID.SP_EXECUTE:
      return execute('statement', 1);
    case PROC_ID.SP_CURSOROPEN:
      return statement(1, 5);
    case PROC_ID.SP_CURSORPREPARE:
      return statement(2, 6, 'cursor', true);
    case PROC_ID.SP_CURSORPREPEXEC:
      return statement(3, 8, 'cursor');
    case PROC_ID.SP_CURSOREXECUTE:
      return execute('cursor', 5);
    case PROC_ID.SP_UNPREPARE:
    case PROC_ID.SP_CURSORUNPREPARE: {
      const h = handle(p[0]);
      const kind: HandleKind = id === PROC_ID.SP_UNPREPARE ? 'statement' : 'cursor';
      return { text: name, classification: classifyProcedure(name), via: 'rpc', name, ...paramsOf(p), ...(h !== undefined ? { unprepares: handleKey(kind, h) } : {}) };
    }
    case PROC_ID.SP_CURSOR:
      return { text: name, classification: notUnderstood('sp_cursor (a positioned change through a server cursor) is not understood'), via: 'rpc', name, ...paramsOf(p) };
    case PROC_ID.SP_PREPEXECRPC:
      return { text: name, classification: notUnderstood('sp_prepexecrpc is not understood'), via: 'rpc', name, ...paramsOf(p) };
    default:
      if (call.procId !== undefined && !PROC_NAMES.has(call.procId)) {
        return { text: name, classification: notUnderstood(`RPC procedure id ${call.procId} is not one warden knows`), via: 'rpc', name, ...paramsOf(p) };
      }
      // sp_cursorfetch/option/close and procedures called by name.
      return { text: `EXEC ${name}`, classification: classifyProcedure(name), via: 'rpc', name, ...paramsOf(p) };
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
