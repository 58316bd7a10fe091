// Decodes any typed PostgreSQL message of either direction with the codec's own decoders, and
// encodes the result back, so the codec tests can walk whole captured streams message by message
// and check decode∘encode byte for byte. 'p' messages (password / SASL) depend on what the server
// asked for, so they are decoded as a PasswordMessage here; the SASL forms have their own tests.
import { decodeAuthentication, encodeAuthentication, type Authentication } from '../../protocols/postgres/authentication.js';
import {
  copyDataPayload,
  decodeCommandComplete,
  decodeCopyResponse,
  decodeDataRow,
  decodeNotificationResponse,
  decodeParameterDescription,
  decodeRowDescription,
  encodeCommandComplete,
  encodeCopyData,
  encodeCopyResponse,
  encodeDataRow,
  encodeNotificationResponse,
  encodeParameterDescription,
  encodeRowDescription,
  type CopyResponse,
  type FieldDescription,
  type Notification,
} from '../../protocols/postgres/backend-messages.js';
import { Backend, Frontend } from '../../protocols/postgres/codes.js';
import { decodeErrorFields, encodeErrorFields, type ErrorFields } from '../../protocols/postgres/error-response.js';
import {
  decodeBind,
  decodeClose,
  decodeCopyFail,
  decodeDescribe,
  decodeEmpty,
  decodeExecute,
  decodeParse,
  decodeQuery,
  encodeBind,
  encodeClose,
  encodeCopyFail,
  encodeDescribe,
  encodeEmpty,
  encodeExecute,
  encodeParse,
  encodeQuery,
  type Bind,
  type Execute,
  type Parse,
  type Target,
} from '../../protocols/postgres/frontend-messages.js';
import { decodePasswordMessage, encodePasswordMessage } from '../../protocols/postgres/password-message.js';
import {
  decodeBackendKeyData,
  decodeNegotiateProtocolVersion,
  decodeParameterStatus,
  decodeReadyForQuery,
  encodeBackendKeyData,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeReadyForQuery,
  type BackendKeyData,
  type NegotiateProtocolVersion,
} from '../../protocols/postgres/session-messages.js';
import type { TransactionStatusByte } from '../../protocols/postgres/codes.js';

export type FrontendMessage =
  | { type: 'Query'; sql: string }
  | { type: 'Parse'; value: Parse }
  | { type: 'Bind'; value: Bind }
  | { type: 'Describe'; value: Target }
  | { type: 'Close'; value: Target }
  | { type: 'Execute'; value: Execute }
  | { type: 'Sync' | 'Flush' | 'Terminate' | 'CopyDone' }
  | { type: 'CopyData'; data: Buffer }
  | { type: 'CopyFail'; reason: string }
  | { type: 'PasswordMessage'; password: string };

export type BackendMessage =
  | { type: 'Authentication'; value: Exclude<Authentication, { type: 'unsupported' }> }
  | { type: 'ParameterStatus'; name: string; value: string }
  | { type: 'BackendKeyData'; value: BackendKeyData }
  | { type: 'ReadyForQuery'; status: TransactionStatusByte }
  | { type: 'NegotiateProtocolVersion'; value: NegotiateProtocolVersion }
  | { type: 'RowDescription'; fields: FieldDescription[] }
  | { type: 'DataRow'; values: (Buffer | null)[] }
  | { type: 'CommandComplete'; tag: string }
  | { type: 'ParameterDescription'; types: number[] }
  | { type: 'NotificationResponse'; value: Notification }
  | { type: 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse'; value: CopyResponse }
  | { type: 'CopyData'; data: Buffer }
  | { type: 'ErrorResponse' | 'NoticeResponse'; fields: ErrorFields }
  | {
      type: 'ParseComplete' | 'BindComplete' | 'CloseComplete' | 'NoData' | 'EmptyQueryResponse' | 'PortalSuspended' | 'CopyDone';
    };

/** Thrown for a type byte the direction does not define (not a ProtocolError: the test helper's own refusal). */
export class UnknownMessageType extends Error {}

const frontendEmpty = {
  [Frontend.sync]: 'Sync',
  [Frontend.flush]: 'Flush',
  [Frontend.terminate]: 'Terminate',
  [Frontend.copyDone]: 'CopyDone',
} as const;

const backendEmpty = {
  [Backend.parseComplete]: 'ParseComplete',
  [Backend.bindComplete]: 'BindComplete',
  [Backend.closeComplete]: 'CloseComplete',
  [Backend.noData]: 'NoData',
  [Backend.emptyQueryResponse]: 'EmptyQueryResponse',
  [Backend.portalSuspended]: 'PortalSuspended',
  [Backend.copyDone]: 'CopyDone',
} as const;

const copyResponses = {
  [Backend.copyInResponse]: 'CopyInResponse',
  [Backend.copyOutResponse]: 'CopyOutResponse',
  [Backend.copyBothResponse]: 'CopyBothResponse',
} as const;

const typeByte = (msg: Buffer): number => msg[0] ?? -1;

export function decodeFrontend(msg: Buffer): FrontendMessage {
  const code = typeByte(msg);
  switch (code) {
    case Frontend.query:
      return { type: 'Query', sql: decodeQuery(msg) };
    case Frontend.parse:
      return { type: 'Parse', value: decodeParse(msg) };
    case Frontend.bind:
      return { type: 'Bind', value: decodeBind(msg) };
    case Frontend.describe:
      return { type: 'Describe', value: decodeDescribe(msg) };
    case Frontend.close:
      return { type: 'Close', value: decodeClose(msg) };
    case Frontend.execute:
      return { type: 'Execute', value: decodeExecute(msg) };
    case Frontend.sync:
    case Frontend.flush:
    case Frontend.terminate:
    case Frontend.copyDone: {
      const type = frontendEmpty[code];
      decodeEmpty(msg, code, type);
      return { type };
    }
    case Frontend.copyData:
      return { type: 'CopyData', data: copyDataPayload(msg) };
    case Frontend.copyFail:
      return { type: 'CopyFail', reason: decodeCopyFail(msg) };
    case Frontend.password:
      return { type: 'PasswordMessage', password: decodePasswordMessage(msg) };
    default:
      throw new UnknownMessageType(`no frontend message has type 0x${code.toString(16)}`);
  }
}

export function encodeFrontend(m: FrontendMessage): Buffer {
  switch (m.type) {
    case 'Query':
      return encodeQuery(m.sql);
    case 'Parse':
      return encodeParse(m.value);
    case 'Bind':
      return encodeBind(m.value);
    case 'Describe':
      return encodeDescribe(m.value);
    case 'Close':
      return encodeClose(m.value);
    case 'Execute':
      return encodeExecute(m.value);
    case 'Sync':
      return encodeEmpty(Frontend.sync);
    case 'Flush':
      return encodeEmpty(Frontend.flush);
    case 'Terminate':
      return encodeEmpty(Frontend.terminate);
    case 'CopyDone':
      return encodeEmpty(Frontend.copyDone);
    case 'CopyData':
      return encodeCopyData(m.data);
    case 'CopyFail':
      return encodeCopyFail(m.reason);
    case 'PasswordMessage':
      return encodePasswordMessage(m.password);
  }
}

export function decodeBackend(msg: Buffer): BackendMessage {
  const code = typeByte(msg);
  switch (code) {
    case Backend.authentication: {
      const value = decodeAuthentication(msg);
      if (value.type === 'unsupported') throw new UnknownMessageType(`unsupported authentication code ${value.code}`);
      return { type: 'Authentication', value };
    }
    case Backend.parameterStatus:
      return { type: 'ParameterStatus', ...decodeParameterStatus(msg) };
    case Backend.backendKeyData:
      return { type: 'BackendKeyData', value: decodeBackendKeyData(msg) };
    case Backend.readyForQuery:
      return { type: 'ReadyForQuery', status: decodeReadyForQuery(msg) };
    case Backend.negotiateProtocolVersion:
      return { type: 'NegotiateProtocolVersion', value: decodeNegotiateProtocolVersion(msg) };
    case Backend.rowDescription:
      return { type: 'RowDescription', fields: decodeRowDescription(msg) };
    case Backend.dataRow:
      return { type: 'DataRow', values: decodeDataRow(msg) };
    case Backend.commandComplete:
      return { type: 'CommandComplete', tag: decodeCommandComplete(msg) };
    case Backend.parameterDescription:
      return { type: 'ParameterDescription', types: decodeParameterDescription(msg) };
    case Backend.notificationResponse:
      return { type: 'NotificationResponse', value: decodeNotificationResponse(msg) };
    case Backend.copyInResponse:
    case Backend.copyOutResponse:
    case Backend.copyBothResponse:
      return { type: copyResponses[code], value: decodeCopyResponse(msg) };
    case Backend.copyData:
      return { type: 'CopyData', data: copyDataPayload(msg) };
    case Backend.errorResponse:
      return { type: 'ErrorResponse', fields: decodeErrorFields(msg, Backend.errorResponse) };
    case Backend.noticeResponse:
      return { type: 'NoticeResponse', fields: decodeErrorFields(msg, Backend.noticeResponse) };
    case Backend.parseComplete:
    case Backend.bindComplete:
    case Backend.closeComplete:
    case Backend.noData:
    case Backend.emptyQueryResponse:
    case Backend.portalSuspended:
    case Backend.copyDone: {
      const type = backendEmpty[code];
      decodeEmpty(msg, code, type);
      return { type };
    }
    default:
      throw new UnknownMessageType(`no backend message has type 0x${code.toString(16)}`);
  }
}

const backendEmptyCodes: Record<string, number> = {
  ParseComplete: Backend.parseComplete,
  BindComplete: Backend.bindComplete,
  CloseComplete: Backend.closeComplete,
  NoData: Backend.noData,
  EmptyQueryResponse: Backend.emptyQueryResponse,
  PortalSuspended: Backend.portalSuspended,
  CopyDone: Backend.copyDone,
};

export function encodeBackend(m: BackendMessage): Buffer {
  switch (m.type) {
    case 'Authentication':
      return encodeAuthentication(m.value);
    case 'ParameterStatus':
      return encodeParameterStatus(m.name, m.value);
    case 'BackendKeyData':
      return encodeBackendKeyData(m.value);
    case 'ReadyForQuery':
      return encodeReadyForQuery(m.status);
    case 'NegotiateProtocolVersion':
      return encodeNegotiateProtocolVersion(m.value);
    case 'RowDescription':
      return encodeRowDescription(m.fields);
    case 'DataRow':
      return encodeDataRow(m.values);
    case 'CommandComplete':
      return encodeCommandComplete(m.tag);
    case 'ParameterDescription':
      return encodeParameterDescription(m.types);
    case 'NotificationResponse':
      return encodeNotificationResponse(m.value);
    case 'CopyInResponse':
      return encodeCopyResponse(Backend.copyInResponse, m.value);
    case 'CopyOutResponse':
      return encodeCopyResponse(Backend.copyOutResponse, m.value);
    case 'CopyBothResponse':
      return encodeCopyResponse(Backend.copyBothResponse, m.value);
    case 'CopyData':
      return encodeCopyData(m.data);
    case 'ErrorResponse':
      return encodeErrorFields(Backend.errorResponse, m.fields);
    case 'NoticeResponse':
      return encodeErrorFields(Backend.noticeResponse, m.fields);
    default:
      return encodeEmpty(backendEmptyCodes[m.type] as number);
  }
}

/** The one-letter type of a message, for compact sequence assertions ("RSSK Z T D C Z"). */
export const letters = (msgs: readonly Buffer[]): string => msgs.map((m) => String.fromCharCode(m[0] ?? 0x3f)).join('');
