// ALL_HEADERS: the header block in front of SQLBatch, RPC and TransMgr requests in TDS 7.2+.
// [MS-TDS] 2.2.5.3 (ALL_HEADERS: TotalLength DWORD including itself, then headers each with
// HeaderLength DWORD including itself, HeaderType USHORT, HeaderData), 2.2.5.3.1 Query
// Notifications, 2.2.5.3.2 Transaction Descriptor, 2.2.5.3.3 Trace Activity.

import type { Reader, Writer } from './cursor.js';

export const HEADER_TYPE = {
  QUERY_NOTIFICATIONS: 0x0001,
  TRANSACTION_DESCRIPTOR: 0x0002,
  TRACE_ACTIVITY: 0x0003,
} as const;

export interface TransactionDescriptorHeader {
  readonly type: typeof HEADER_TYPE.TRANSACTION_DESCRIPTOR;
  /** 8 bytes: 0 outside a transaction, else the value from ENVCHANGE begin-transaction. */
  readonly transactionDescriptor: Buffer;
  readonly outstandingRequestCount: number;
}

export interface TraceActivityHeader {
  readonly type: typeof HEADER_TYPE.TRACE_ACTIVITY;
  /** GUID_ActivityID, 16 bytes. */
  readonly activityId: Buffer;
  readonly sequence: number;
}

export interface QueryNotificationsHeader {
  readonly type: typeof HEADER_TYPE.QUERY_NOTIFICATIONS;
  readonly notifyId: string;
  readonly ssbDeployment: string;
  readonly notifyTimeout?: number;
}

export interface UnknownHeader {
  readonly type: number;
  readonly data: Buffer;
}

export type Header = TransactionDescriptorHeader | TraceActivityHeader | QueryNotificationsHeader | UnknownHeader;

const TOTAL_LENGTH_SIZE = 4;
const HEADER_PREFIX = 6; // HeaderLength DWORD + HeaderType USHORT
const TRANSACTION_DESCRIPTOR_DATA = 12;
const TRACE_ACTIVITY_DATA = 20;

export function readAllHeaders(r: Reader): Header[] {
  const start = r.pos;
  const total = r.u32le('ALL_HEADERS TotalLength');
  if (total < TOTAL_LENGTH_SIZE || total - TOTAL_LENGTH_SIZE > r.remaining) {
    r.fail(`ALL_HEADERS TotalLength ${total} does not fit the ${r.remaining + TOTAL_LENGTH_SIZE} bytes of the message`, start);
  }
  const end = start + total;
  const headers: Header[] = [];
  while (r.pos < end) {
    const at = r.pos;
    const length = r.u32le('ALL_HEADERS HeaderLength');
    if (length < HEADER_PREFIX || at + length > end) {
      r.fail(`ALL_HEADERS HeaderLength ${length} does not fit in TotalLength ${total}`, at);
    }
    const type = r.u16le('ALL_HEADERS HeaderType');
    const dataLength = length - HEADER_PREFIX;
    switch (type) {
      case HEADER_TYPE.TRANSACTION_DESCRIPTOR:
        if (dataLength !== TRANSACTION_DESCRIPTOR_DATA) r.fail(`transaction descriptor header has ${dataLength} data bytes, expected 12`, at);
        headers.push({
          type,
          transactionDescriptor: r.bytes(8, 'TransactionDescriptor'),
          outstandingRequestCount: r.u32le('OutstandingRequestCount'),
        });
        break;
      case HEADER_TYPE.TRACE_ACTIVITY:
        if (dataLength !== TRACE_ACTIVITY_DATA) r.fail(`trace activity header has ${dataLength} data bytes, expected 20`, at);
        headers.push({ type, activityId: r.bytes(16, 'ActivityId'), sequence: r.u32le('ActivitySequence') });
        break;
      case HEADER_TYPE.QUERY_NOTIFICATIONS: {
        const notifyId = r.usVarbyte('NotifyId');
        const ssbDeployment = r.usVarbyte('SSBDeployment');
        const left = at + length - r.pos;
        if (left !== 0 && left !== 4) r.fail('query notifications header has a malformed NotifyTimeout', r.pos);
        const h: QueryNotificationsHeader = {
          type,
          notifyId: notifyId.toString('utf16le'),
          ssbDeployment: ssbDeployment.toString('utf16le'),
          ...(left === 4 ? { notifyTimeout: r.u32le('NotifyTimeout') } : {}),
        };
        headers.push(h);
        break;
      }
      default:
        headers.push({ type, data: r.bytes(dataLength, 'ALL_HEADERS HeaderData') });
    }
    if (r.pos !== at + length) r.fail(`ALL_HEADERS header of type ${type} does not match its HeaderLength ${length}`, at);
  }
  return headers;
}

export function writeAllHeaders(w: Writer, headers: readonly Header[]): void {
  const start = w.pos;
  w.u32le(0);
  for (const h of headers) {
    const at = w.pos;
    w.u32le(0).u16le(h.type, 'HeaderType');
    if ('transactionDescriptor' in h) {
      if (h.transactionDescriptor.length !== 8) throw new RangeError('TransactionDescriptor must be 8 bytes');
      w.bytes(h.transactionDescriptor).u32le(h.outstandingRequestCount, 'OutstandingRequestCount');
    } else if ('activityId' in h) {
      if (h.activityId.length !== 16) throw new RangeError('ActivityId must be 16 bytes');
      w.bytes(h.activityId).u32le(h.sequence, 'ActivitySequence');
    } else if ('notifyId' in h) {
      w.usVarbyte(Buffer.from(h.notifyId, 'utf16le'), 'NotifyId');
      w.usVarbyte(Buffer.from(h.ssbDeployment, 'utf16le'), 'SSBDeployment');
      if (h.notifyTimeout !== undefined) w.u32le(h.notifyTimeout, 'NotifyTimeout');
    } else {
      w.bytes(h.data);
    }
    w.patchU32le(at, w.pos - at);
  }
  w.patchU32le(start, w.pos - start);
}

/** The usual header set: one transaction descriptor (8 zero bytes outside a transaction). */
export function transactionHeaders(transactionDescriptor: Buffer = Buffer.alloc(8), outstandingRequestCount = 1): Header[] {
  return [{ type: HEADER_TYPE.TRANSACTION_DESCRIPTOR, transactionDescriptor, outstandingRequestCount }];
}
