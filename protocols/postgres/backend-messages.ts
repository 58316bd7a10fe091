// Backend messages of the query cycle: RowDescription ('T'), DataRow ('D'), CommandComplete ('C'),
// ParameterDescription ('t'), NotificationResponse ('A'), CopyIn/Out/BothResponse ('G'/'H'/'W'),
// CopyData ('d'), and the bodiless ones. https://www.postgresql.org/docs/current/protocol-message-formats.html
import { ProtocolError } from '../errors.js';
import { Reader } from './buffer-reader.js';
import { Writer } from './buffer-writer.js';
import { Backend } from './codes.js';

function open(msg: Buffer, code: number, what: string): Reader {
  const r = new Reader(msg);
  if (r.byte() !== code) throw new ProtocolError(`not a ${what} message`, 0);
  const len = r.int32('length');
  if (len + 1 !== msg.length) throw new ProtocolError(`${what} length ${len} does not match the frame`, 1);
  return r;
}

// RowDescription ------------------------------------------------------------------------------
export interface FieldDescription {
  name: string;
  /** OID of the source table, 0 when the column is not a simple table column. */
  tableOid: number;
  /** Attribute number of the source column, 0 when none. */
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  /** 0 text, 1 binary. */
  format: number;
}

export function decodeRowDescription(msg: Buffer): FieldDescription[] {
  const r = open(msg, Backend.rowDescription, 'RowDescription');
  const n = r.int16('field count');
  if (n < 0) throw new ProtocolError(`negative field count ${n}`, 5);
  const fields: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    fields.push({
      name: r.cstring('field name'),
      tableOid: r.uint32('table oid'),
      columnAttr: r.int16('column attribute number'),
      typeOid: r.uint32('type oid'),
      typeSize: r.int16('type size'),
      typeModifier: r.int32('type modifier'),
      format: r.int16('format code'),
    });
  }
  r.done('RowDescription');
  return fields;
}

export function encodeRowDescription(fields: readonly FieldDescription[]): Buffer {
  const w = new Writer().begin(Backend.rowDescription).int16(fields.length);
  for (const f of fields) {
    w.cstring(f.name).uint32(f.tableOid).int16(f.columnAttr).uint32(f.typeOid).int16(f.typeSize).int32(f.typeModifier).int16(f.format);
  }
  return w.end().toBuffer();
}

// DataRow -------------------------------------------------------------------------------------
/** Column values as views into the message (null = SQL NULL). */
export function decodeDataRow(msg: Buffer): (Buffer | null)[] {
  const r = open(msg, Backend.dataRow, 'DataRow');
  const n = r.int16('column count');
  if (n < 0) throw new ProtocolError(`negative column count ${n}`, 5);
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) values.push(r.lengthPrefixed(`column ${i + 1}`));
  r.done('DataRow');
  return values;
}

export function encodeDataRow(values: readonly (Uint8Array | null)[]): Buffer {
  let size = 7;
  for (const v of values) size += 4 + (v ? v.length : 0);
  const w = new Writer(size).begin(Backend.dataRow).int16(values.length);
  for (const v of values) w.lengthPrefixed(v);
  return w.end().toBuffer();
}

// CommandComplete -----------------------------------------------------------------------------
export function decodeCommandComplete(msg: Buffer): string {
  const r = open(msg, Backend.commandComplete, 'CommandComplete');
  const tag = r.cstring('command tag');
  r.done('CommandComplete');
  return tag;
}

export function encodeCommandComplete(tag: string): Buffer {
  return new Writer().begin(Backend.commandComplete).cstring(tag).end().toBuffer();
}

/** Rows affected or returned, from a command tag such as "SELECT 5", "INSERT 0 3", "COPY 20". */
export function commandTagRows(tag: string): number | undefined {
  const m = /(\d+)$/.exec(tag);
  return m ? Number(m[1]) : undefined;
}

// ParameterDescription ------------------------------------------------------------------------
export function decodeParameterDescription(msg: Buffer): number[] {
  const r = open(msg, Backend.parameterDescription, 'ParameterDescription');
  const n = r.int16('parameter count');
  if (n < 0) throw new ProtocolError(`negative parameter count ${n}`, 5);
  const types: number[] = [];
  for (let i = 0; i < n; i++) types.push(r.uint32('parameter type'));
  r.done('ParameterDescription');
  return types;
}

export function encodeParameterDescription(types: readonly number[]): Buffer {
  const w = new Writer().begin(Backend.parameterDescription).int16(types.length);
  for (const t of types) w.uint32(t);
  return w.end().toBuffer();
}

// NotificationResponse ------------------------------------------------------------------------
export interface Notification {
  processId: number;
  channel: string;
  payload: string;
}

export function decodeNotificationResponse(msg: Buffer): Notification {
  const r = open(msg, Backend.notificationResponse, 'NotificationResponse');
  const processId = r.int32('process id');
  const channel = r.cstring('channel');
  const payload = r.cstring('payload');
  r.done('NotificationResponse');
  return { processId, channel, payload };
}

export function encodeNotificationResponse(n: Notification): Buffer {
  return new Writer().begin(Backend.notificationResponse).int32(n.processId).cstring(n.channel).cstring(n.payload).end().toBuffer();
}

// CopyInResponse / CopyOutResponse / CopyBothResponse -----------------------------------------
export interface CopyResponse {
  /** 0 text (CSV or text format), 1 binary. */
  format: number;
  columnFormats: number[];
}

const copyCodes = new Set<number>([Backend.copyInResponse, Backend.copyOutResponse, Backend.copyBothResponse]);

export function decodeCopyResponse(msg: Buffer): CopyResponse {
  const code = msg[0] as number;
  if (!copyCodes.has(code)) throw new ProtocolError('not a Copy*Response message', 0);
  const r = open(msg, code, 'Copy*Response');
  const format = r.byte('overall format');
  const n = r.int16('column count');
  if (n < 0) throw new ProtocolError(`negative column count ${n}`, 6);
  const columnFormats: number[] = [];
  for (let i = 0; i < n; i++) columnFormats.push(r.int16('column format'));
  r.done('Copy*Response');
  return { format, columnFormats };
}

export function encodeCopyResponse(code: number, c: CopyResponse): Buffer {
  const w = new Writer().begin(code).byte(c.format).int16(c.columnFormats.length);
  for (const f of c.columnFormats) w.int16(f);
  return w.end().toBuffer();
}

// CopyData (both directions use 'd') ----------------------------------------------------------
export function encodeCopyData(data: Uint8Array): Buffer {
  return new Writer(data.length + 5).begin(Backend.copyData).bytes(data).end().toBuffer();
}

/** The payload of a CopyData message, as a view. */
export function copyDataPayload(msg: Buffer): Buffer {
  return open(msg, Backend.copyData, 'CopyData').rest();
}
