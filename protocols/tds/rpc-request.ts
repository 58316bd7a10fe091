// RPC request (packet type 0x03). [MS-TDS] 2.2.6.6; example in 4.8.
//
//   RPCRequest   = [ALL_HEADERS (7.2+)] RPCReqBatch *((BatchFlag / NoExecFlag) RPCReqBatch)
//                  [BatchFlag / NoExecFlag]
//   RPCReqBatch  = NameLenProcID OptionFlags *ParameterData
//   NameLenProcID = US_VARCHAR proc name, or 0xFFFF then a USHORT ProcID (sp_executesql = 10 ...)
//   ParameterData = B_VARCHAR name, StatusFlags BYTE, TYPE_INFO, TYPE_VARBYTE value
//
// BatchFlag is 0xFF from TDS 7.2 on and 0x80 before; NoExecFlag is 0xFE. Encrypted parameters
// (Always Encrypted) and table-valued parameters are refused with a ProtocolError.

import { ProtocolError } from '../errors.js';
import { type Header, readAllHeaders, writeAllHeaders } from './all-headers.js';
import { Reader, Writer } from './cursor.js';
import { type TdsContext, isTds72Plus } from './tds-version.js';
import { type TypeInfo, readTypeInfo, writeTypeInfo } from './type-info.js';
import { type Value, type ValueOptions, readValue, writeValue } from './values.js';

/** Well-known procedure ids. [MS-TDS] 2.2.6.6 */
export const PROC_ID = {
  SP_CURSOR: 1,
  SP_CURSOROPEN: 2,
  SP_CURSORPREPARE: 3,
  SP_CURSOREXECUTE: 4,
  SP_CURSORPREPEXEC: 5,
  SP_CURSORUNPREPARE: 6,
  SP_CURSORFETCH: 7,
  SP_CURSOROPTION: 8,
  SP_CURSORCLOSE: 9,
  SP_EXECUTESQL: 10,
  SP_PREPARE: 11,
  SP_EXECUTE: 12,
  SP_PREPEXEC: 13,
  SP_PREPEXECRPC: 14,
  SP_UNPREPARE: 15,
} as const;

export const RPC_OPTION = {
  WITH_RECOMPILE: 0x0001,
  NO_METADATA: 0x0002,
  REUSE_METADATA: 0x0004,
} as const;

export const RPC_PARAM_STATUS = {
  /** fByRefValue: an OUTPUT parameter. */
  BY_REF_VALUE: 0x01,
  DEFAULT_VALUE: 0x02,
  ENCRYPTED: 0x08,
} as const;

export const RPC_BATCH_FLAG = {
  /** BatchFlag before TDS 7.2. */
  BATCH_TDS71: 0x80,
  /** BatchFlag in TDS 7.2+. */
  BATCH: 0xff,
  NO_EXEC: 0xfe,
} as const;

const PROC_ID_SWITCH = 0xffff;

export interface RpcParameter {
  /** Parameter name including '@', or '' for a positional parameter. */
  readonly name: string;
  readonly status: number;
  readonly typeInfo: TypeInfo;
  readonly value: Value;
}

export interface RpcCall {
  /** Set when the call names a well-known procedure by id (see PROC_ID). */
  readonly procId?: number;
  /** Set when the call names the procedure. */
  readonly procName?: string;
  readonly options: number;
  readonly parameters: readonly RpcParameter[];
}

export interface RpcRequest {
  readonly headers?: readonly Header[];
  readonly calls: readonly RpcCall[];
  /** The flag byte before each call after the first (BatchFlag or NoExecFlag). */
  readonly separators?: readonly number[];
  /** A flag byte after the last call, when the client sent one. */
  readonly trailingSeparator?: number;
}

export interface RpcDecodeOptions {
  /** Cap on any one parameter value (bytes). */
  readonly maxValueLength?: number;
}

export function decodeRpcRequest(payload: Buffer, ctx: TdsContext, opts: RpcDecodeOptions = {}): RpcRequest {
  const r = new Reader(payload, 0, payload.length);
  const headers = isTds72Plus(ctx) ? readAllHeaders(r) : undefined;
  const separatorSet: ReadonlySet<number> = isTds72Plus(ctx)
    ? new Set([RPC_BATCH_FLAG.BATCH, RPC_BATCH_FLAG.NO_EXEC])
    : new Set([RPC_BATCH_FLAG.BATCH_TDS71, RPC_BATCH_FLAG.NO_EXEC, RPC_BATCH_FLAG.BATCH]);
  const valueOpts: ValueOptions = { textPointers: false, ...(opts.maxValueLength ? { maxValueLength: opts.maxValueLength } : {}) };
  const calls: RpcCall[] = [];
  const separators: number[] = [];
  let trailingSeparator: number | undefined;
  for (;;) {
    calls.push(readCall(r, separatorSet, valueOpts));
    if (r.remaining === 0) break;
    const flag = r.u8('RPC batch flag');
    if (r.remaining === 0) {
      trailingSeparator = flag;
      break;
    }
    separators.push(flag);
  }
  return {
    ...(headers ? { headers } : {}),
    calls,
    ...(separators.length > 0 ? { separators } : {}),
    ...(trailingSeparator !== undefined ? { trailingSeparator } : {}),
  };
}

function readCall(r: Reader, separators: ReadonlySet<number>, valueOpts: ValueOptions): RpcCall {
  const nameLength = r.u16le('RPC NameLenProcID');
  let procId: number | undefined;
  let procName: string | undefined;
  if (nameLength === PROC_ID_SWITCH) procId = r.u16le('RPC ProcID');
  else procName = r.utf16(nameLength, 'RPC ProcName');
  const options = r.u16le('RPC OptionFlags');
  const parameters: RpcParameter[] = [];
  while (r.remaining > 0 && !separators.has(r.buf[r.pos]!)) {
    const at = r.pos;
    const name = r.bVarchar('RPC parameter name');
    const status = r.u8('RPC parameter StatusFlags');
    if (status & RPC_PARAM_STATUS.ENCRYPTED) {
      r.fail(`RPC parameter "${name}" is encrypted (Always Encrypted is not supported)`, at);
    }
    const typeInfo = readTypeInfo(r);
    const value = readValue(r, typeInfo, valueOpts);
    parameters.push({ name, status, typeInfo, value });
  }
  return procId !== undefined ? { procId, options, parameters } : { procName: procName!, options, parameters };
}

export interface RpcEncodeOptions extends ValueOptions {}

export function encodeRpcRequest(req: RpcRequest, ctx: TdsContext, opts: RpcEncodeOptions = {}): Buffer {
  const w = new Writer(256);
  if (isTds72Plus(ctx)) writeAllHeaders(w, req.headers ?? []);
  else if (req.headers && req.headers.length > 0) throw new RangeError('ALL_HEADERS does not exist before TDS 7.2');
  const defaultFlag = isTds72Plus(ctx) ? RPC_BATCH_FLAG.BATCH : RPC_BATCH_FLAG.BATCH_TDS71;
  const valueOpts: ValueOptions = { ...opts, textPointers: false };
  req.calls.forEach((call, i) => {
    if (i > 0) w.u8(req.separators?.[i - 1] ?? defaultFlag, 'RPC batch flag');
    if (call.procId !== undefined) {
      w.u16le(PROC_ID_SWITCH).u16le(call.procId, 'RPC ProcID');
    } else {
      if (call.procName === undefined) throw new RangeError('an RPC call needs a procId or a procName');
      if (call.procName.length >= PROC_ID_SWITCH) throw new RangeError('RPC procedure name is too long');
      w.usVarchar(call.procName, 'RPC ProcName');
    }
    w.u16le(call.options, 'RPC OptionFlags');
    for (const p of call.parameters) {
      if (p.status & RPC_PARAM_STATUS.ENCRYPTED) throw new RangeError(`RPC parameter "${p.name}": encryption is not supported`);
      w.bVarchar(p.name, 'RPC parameter name').u8(p.status, 'RPC parameter StatusFlags');
      writeTypeInfo(w, p.typeInfo);
      writeValue(w, p.typeInfo, p.value, valueOpts);
    }
  });
  if (req.trailingSeparator !== undefined) w.u8(req.trailingSeparator, 'RPC batch flag');
  return w.finish();
}

/** The SQL text of an sp_executesql/sp_prepare/sp_prepexec call (its first NVARCHAR-ish argument). */
export function rpcStatementText(call: RpcCall): string | undefined {
  const index =
    call.procId === PROC_ID.SP_EXECUTESQL ? 0 : call.procId === PROC_ID.SP_PREPARE || call.procId === PROC_ID.SP_PREPEXEC ? 2 : -1;
  if (index < 0) return undefined;
  const v = call.parameters[index]?.value;
  if (typeof v !== 'string') throw new ProtocolError(`statement parameter ${index} of procedure ${call.procId} is not text`);
  return v;
}
