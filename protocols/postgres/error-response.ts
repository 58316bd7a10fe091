// ErrorResponse ('E') and NoticeResponse ('N'): a list of (field code, string) pairs.
// https://www.postgresql.org/docs/current/protocol-error-fields.html
import { ProtocolError } from '../errors.js';
import { Reader } from './buffer-reader.js';
import { Writer } from './buffer-writer.js';
import { Backend, ErrorField } from './codes.js';

/** Fields keyed by their one-byte code, in wire order. */
export type ErrorFields = Map<number, string>;

export interface Notice {
  severity: string;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  fields: ErrorFields;
}

export function decodeErrorFields(msg: Buffer, expected: number = Backend.errorResponse): ErrorFields {
  const r = new Reader(msg);
  const code = r.byte();
  if (code !== expected) throw new ProtocolError(`expected message 0x${expected.toString(16)}, got 0x${code.toString(16)}`, 0);
  const len = r.int32('length');
  if (len + 1 !== msg.length) throw new ProtocolError(`length ${len} does not match the frame`, 1);
  const fields: ErrorFields = new Map();
  for (;;) {
    const f = r.byte('field code');
    if (f === 0) break;
    fields.set(f, r.cstring('field value'));
  }
  r.done('ErrorResponse');
  return fields;
}

/** Decodes an ErrorResponse or NoticeResponse (by its type byte). */
export function decodeNotice(msg: Buffer): Notice {
  const type = msg[0];
  if (type !== Backend.errorResponse && type !== Backend.noticeResponse) {
    throw new ProtocolError('not an ErrorResponse or NoticeResponse', 0);
  }
  const fields = decodeErrorFields(msg, type);
  const n: Notice = {
    severity: fields.get(ErrorField.severityNonLocalized) ?? fields.get(ErrorField.severity) ?? '',
    code: fields.get(ErrorField.code) ?? '',
    message: fields.get(ErrorField.message) ?? '',
    fields,
  };
  const detail = fields.get(ErrorField.detail);
  if (detail !== undefined) n.detail = detail;
  const hint = fields.get(ErrorField.hint);
  if (hint !== undefined) n.hint = hint;
  return n;
}

export function encodeErrorFields(type: number, fields: Iterable<[number, string]>): Buffer {
  const w = new Writer().begin(type);
  for (const [f, v] of fields) w.byte(f).cstring(v);
  return w.byte(0).end().toBuffer();
}

export interface ErrorSpec {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function specFields(e: ErrorSpec): [number, string][] {
  const f: [number, string][] = [
    [ErrorField.severity, e.severity],
    [ErrorField.severityNonLocalized, e.severity],
    [ErrorField.code, e.code],
    [ErrorField.message, e.message],
  ];
  if (e.detail !== undefined) f.push([ErrorField.detail, e.detail]);
  if (e.hint !== undefined) f.push([ErrorField.hint, e.hint]);
  return f;
}

export function encodeErrorResponse(e: ErrorSpec): Buffer {
  return encodeErrorFields(Backend.errorResponse, specFields(e));
}

export function encodeNoticeResponse(e: ErrorSpec): Buffer {
  return encodeErrorFields(Backend.noticeResponse, specFields(e));
}
