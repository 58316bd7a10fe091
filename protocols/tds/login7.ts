// LOGIN7 (packet type 0x10). [MS-TDS] 2.2.6.4; example in 4.2.
//
// Fixed part: Length, TDSVersion, PacketSize, ClientProgVer, ClientPID, ConnectionID (DWORDs),
// OptionFlags1, OptionFlags2, TypeFlags, OptionFlags3 (BYTEs), ClientTimeZone (LONG),
// ClientLCID (DWORD), then the OffsetLength table: (ib, cch) USHORT pairs for HostName,
// UserName, Password, AppName, ServerName, Unused-or-Extension, CltIntName, Language, Database,
// then ClientID (6 bytes), SSPI, AtchDBFile, and from TDS 7.2 ChangePassword and cbSSPILong.
// That makes 86 bytes for TDS 7.1 and 94 bytes from 7.2 on. Offsets count from the start of
// LOGIN7; string lengths are in UTF-16 code units; SSPI's is in bytes.
// With fExtension (OptionFlags3 0x10, TDS 7.4) ibExtension points at a DWORD that holds the
// offset of the FeatureExt list (see feature-ext.ts).
//
// Every offset/length pair is checked against the message: a LOGIN7 that points outside itself,
// into its fixed part, or claims a longer string than the spec allows is a ProtocolError.
// Passwords are obfuscated on the wire (each byte: swap nibbles, XOR 0xA5); this codec
// de-obfuscates on decode and obfuscates on encode.

import { Reader, Writer } from './cursor.js';
import { type FeatureExt, readFeatureList, writeFeatureList } from './feature-ext.js';
import { TDS_VERSION, isSupportedVersion, isTds72Plus } from './tds-version.js';

export const LOGIN7_OPTION_FLAGS_1 = {
  BYTE_ORDER_68000: 0x01,
  CHAR_EBCDIC: 0x02,
  FLOAT_VAX: 0x04,
  FLOAT_ND5000: 0x08,
  DUMP_LOAD_OFF: 0x10,
  USE_DB_NOTIFY: 0x20,
  INIT_DB_FATAL: 0x40,
  SET_LANG_NOTIFY: 0x80,
} as const;

export const LOGIN7_OPTION_FLAGS_2 = {
  INIT_LANG_FATAL: 0x01,
  ODBC: 0x02,
  TRAN_BOUNDARY: 0x04,
  CACHE_CONNECT: 0x08,
  USER_TYPE_MASK: 0x70,
  INTEGRATED_SECURITY: 0x80,
} as const;

export const LOGIN7_TYPE_FLAGS = {
  SQL_TYPE_MASK: 0x0f,
  SQL_TSQL: 0x01,
  OLEDB: 0x10,
  READ_ONLY_INTENT: 0x20,
} as const;

export const LOGIN7_OPTION_FLAGS_3 = {
  CHANGE_PASSWORD: 0x01,
  USER_INSTANCE: 0x02,
  SEND_YUKON_BINARY_XML: 0x04,
  UNKNOWN_COLLATION_HANDLING: 0x08,
  EXTENSION: 0x10,
} as const;

export const LOGIN7_FIXED_LENGTH_71 = 86;
export const LOGIN7_FIXED_LENGTH = 94;
/** [MS-TDS] 2.2.6.4: a LOGIN7 stream must not be longer than 128K - 1 bytes. */
export const LOGIN7_MAX_LENGTH = 128 * 1024 - 1;
const MAX_NAME_CHARS = 128;
/**
 * The spec caps Password at 128 characters (SQL Server's own limit for SQL logins), but drivers
 * send whatever they are given, and an OIDC access token sent as the password (FreeTDS, jTDS,
 * ODBC, tedious with a token as the password) is a few thousand characters, tens of thousands for
 * an identity in hundreds of groups. A relay has to read it, up to what cchPassword (a USHORT) can
 * say; the 128 KiB LOGIN7 bounds it too, and the token verifier refuses anything over 64 KiB.
 */
export const LOGIN7_MAX_PASSWORD_CHARS = 0xffff;
const MAX_ATTACH_DB_FILE_CHARS = 260;
const CB_SSPI_USE_LONG = 0xffff;
const CLIENT_ID_LENGTH = 6;

export interface Login7 {
  readonly tdsVersion: number;
  readonly packetSize: number;
  readonly clientProgVer: number;
  readonly clientPid: number;
  readonly connectionId: number;
  readonly optionFlags1: number;
  readonly optionFlags2: number;
  readonly typeFlags: number;
  /** EXTENSION is derived from `features` when encoding. */
  readonly optionFlags3: number;
  /** Minutes from UTC (a LONG). */
  readonly clientTimeZone: number;
  readonly clientLcid: number;
  readonly hostName: string;
  readonly userName: string;
  /** De-obfuscated. */
  readonly password: string;
  readonly appName: string;
  readonly serverName: string;
  readonly clientInterfaceName: string;
  readonly language: string;
  readonly database: string;
  /** 6 bytes, usually the client's MAC address. */
  readonly clientId: Buffer;
  readonly sspi: Buffer;
  readonly attachDbFile: string;
  /** De-obfuscated (TDS 7.2+). */
  readonly changePassword: string;
  /** FeatureExt list (TDS 7.4, fExtension); absent when the client sent none. */
  readonly features?: readonly FeatureExt[];
}

/** Password (de)obfuscation: swap the nibbles of each byte and XOR with 0xA5 (an involution's
 * inverse: decode XORs first, then swaps). */
export function obfuscatePassword(password: string): Buffer {
  const b = Buffer.from(password, 'utf16le');
  for (let i = 0; i < b.length; i++) {
    const v = b[i]!;
    b[i] = (((v << 4) & 0xf0) | (v >> 4)) ^ 0xa5;
  }
  return b;
}

export function deobfuscatePassword(bytes: Buffer): string {
  const b = Buffer.from(bytes);
  for (let i = 0; i < b.length; i++) {
    const v = b[i]! ^ 0xa5;
    b[i] = ((v << 4) & 0xf0) | (v >> 4);
  }
  return b.toString('utf16le');
}

interface Slot {
  readonly offset: number;
  readonly length: number;
  readonly at: number;
}

export function decodeLogin7(payload: Buffer): Login7 {
  const r = new Reader(payload, 0, payload.length);
  const length = r.u32le('LOGIN7 Length');
  if (length !== payload.length) r.fail(`LOGIN7 Length ${length} does not match the ${payload.length}-byte message`, 0);
  if (length > LOGIN7_MAX_LENGTH) r.fail(`LOGIN7 Length ${length} exceeds ${LOGIN7_MAX_LENGTH}`, 0);
  const tdsVersion = r.u32le('LOGIN7 TDSVersion');
  if (!isSupportedVersion(tdsVersion)) {
    r.fail(`LOGIN7 asks for TDS version 0x${tdsVersion.toString(16)}; supported are 7.1 to 7.4`, 4);
  }
  const ctx = { tdsVersion };
  const fixedLength = isTds72Plus(ctx) ? LOGIN7_FIXED_LENGTH : LOGIN7_FIXED_LENGTH_71;
  r.need(fixedLength - 8, 'LOGIN7 fixed part');
  const packetSize = r.u32le('PacketSize');
  const clientProgVer = r.u32le('ClientProgVer');
  const clientPid = r.u32le('ClientPID');
  const connectionId = r.u32le('ConnectionID');
  const optionFlags1 = r.u8('OptionFlags1');
  const optionFlags2 = r.u8('OptionFlags2');
  const typeFlags = r.u8('TypeFlags');
  const optionFlags3 = r.u8('OptionFlags3');
  const clientTimeZone = r.i32le('ClientTimeZone');
  const clientLcid = r.u32le('ClientLCID');
  const slot = (): Slot => {
    const at = r.pos;
    return { at, offset: r.u16le('LOGIN7 offset'), length: r.u16le('LOGIN7 length') };
  };
  const host = slot();
  const user = slot();
  const pass = slot();
  const app = slot();
  const server = slot();
  const extension = slot();
  const cltInt = slot();
  const lang = slot();
  const db = slot();
  const clientId = r.bytes(CLIENT_ID_LENGTH, 'ClientID');
  const sspiSlot = slot();
  const attach = slot();
  let changePass: Slot = { at: r.pos, offset: 0, length: 0 };
  let sspiLong = 0;
  if (isTds72Plus(ctx)) {
    changePass = slot();
    sspiLong = r.u32le('cbSSPILong');
  }

  const text = (s: Slot, what: string, maxChars: number): Buffer => {
    if (s.length > maxChars) r.fail(`LOGIN7 ${what} is ${s.length} characters; the limit is ${maxChars}`, s.at + 2);
    return region(r, s.offset, s.length * 2, fixedLength, length, what, s.at);
  };
  const hostName = text(host, 'HostName', MAX_NAME_CHARS).toString('utf16le');
  const userName = text(user, 'UserName', MAX_NAME_CHARS).toString('utf16le');
  const password = deobfuscatePassword(text(pass, 'Password', LOGIN7_MAX_PASSWORD_CHARS));
  const appName = text(app, 'AppName', MAX_NAME_CHARS).toString('utf16le');
  const serverName = text(server, 'ServerName', MAX_NAME_CHARS).toString('utf16le');
  const clientInterfaceName = text(cltInt, 'CltIntName', MAX_NAME_CHARS).toString('utf16le');
  const language = text(lang, 'Language', MAX_NAME_CHARS).toString('utf16le');
  const database = text(db, 'Database', MAX_NAME_CHARS).toString('utf16le');
  const attachDbFile = text(attach, 'AtchDBFile', MAX_ATTACH_DB_FILE_CHARS).toString('utf16le');
  const changePassword = deobfuscatePassword(text(changePass, 'ChangePassword', MAX_NAME_CHARS));
  let sspiLength = sspiSlot.length;
  if (sspiLength === CB_SSPI_USE_LONG && isTds72Plus(ctx)) sspiLength = sspiLong;
  const sspi = region(r, sspiSlot.offset, sspiLength, fixedLength, length, 'SSPI', sspiSlot.at);

  let features: FeatureExt[] | undefined;
  if (optionFlags3 & LOGIN7_OPTION_FLAGS_3.EXTENSION) {
    if (extension.length !== 4) r.fail(`LOGIN7 cbExtension is ${extension.length}, expected 4`, extension.at + 2);
    const pointer = region(r, extension.offset, 4, fixedLength, length, 'Extension', extension.at).readUInt32LE(0);
    if (pointer < fixedLength || pointer >= length) {
      r.fail(`LOGIN7 FeatureExt offset ${pointer} is outside ${fixedLength}..${length - 1}`, extension.offset);
    }
    features = readFeatureList(new Reader(payload, pointer, length), 'LOGIN7 FeatureExt');
  } else if (extension.length !== 0) {
    r.fail(`LOGIN7 cbUnused is ${extension.length}, expected 0`, extension.at + 2);
  }

  return {
    tdsVersion,
    packetSize,
    clientProgVer,
    clientPid,
    connectionId,
    optionFlags1,
    optionFlags2,
    typeFlags,
    optionFlags3,
    clientTimeZone,
    clientLcid,
    hostName,
    userName,
    password,
    appName,
    serverName,
    clientInterfaceName,
    language,
    database,
    clientId,
    sspi,
    attachDbFile,
    changePassword,
    ...(features ? { features } : {}),
  };
}

function region(r: Reader, offset: number, bytes: number, fixedLength: number, length: number, what: string, at: number): Buffer {
  if (bytes === 0) {
    if (offset > length) r.fail(`LOGIN7 ${what} offset ${offset} is past the end (${length})`, at);
    return Buffer.alloc(0);
  }
  if (offset < fixedLength || offset + bytes > length) {
    r.fail(`LOGIN7 ${what} at ${offset}+${bytes} lies outside the data area ${fixedLength}..${length}`, at);
  }
  return Buffer.from(r.buf.subarray(offset, offset + bytes));
}

/**
 * Encodes a LOGIN7 with its data in field order (host, user, password, app, server, extension
 * pointer, client interface, language, database, SSPI, attach file, change password) and the
 * FeatureExt list at the end; empty fields point at the current data offset. This is the layout
 * tedious and the spec's example use.
 */
export function encodeLogin7(login: Login7): Buffer {
  if (!isSupportedVersion(login.tdsVersion)) {
    throw new RangeError(`TDS version 0x${login.tdsVersion.toString(16)} is not supported (7.1 to 7.4)`);
  }
  const v72 = isTds72Plus({ tdsVersion: login.tdsVersion });
  const fixedLength = v72 ? LOGIN7_FIXED_LENGTH : LOGIN7_FIXED_LENGTH_71;
  if (login.features && login.tdsVersion < TDS_VERSION.V7_4 && login.tdsVersion !== TDS_VERSION.V8_0) {
    throw new RangeError('FeatureExt needs TDS 7.4');
  }
  if (login.clientId.length !== CLIENT_ID_LENGTH) throw new RangeError('ClientID must be 6 bytes');
  if (!v72 && login.changePassword !== '') throw new RangeError('ChangePassword needs TDS 7.2');
  const data = new Writer(256);
  let dataOffset = fixedLength;
  const slots: [number, number][] = [];
  const addText = (s: string, what: string, maxChars: number, bytes?: Buffer): void => {
    if (s.length > maxChars) throw new RangeError(`LOGIN7 ${what} is ${s.length} characters; the limit is ${maxChars}`);
    const b = bytes ?? Buffer.from(s, 'utf16le');
    slots.push([dataOffset, s.length]);
    data.bytes(b);
    dataOffset += b.length;
  };
  addText(login.hostName, 'HostName', MAX_NAME_CHARS);
  addText(login.userName, 'UserName', MAX_NAME_CHARS);
  addText(login.password, 'Password', LOGIN7_MAX_PASSWORD_CHARS, obfuscatePassword(login.password));
  addText(login.appName, 'AppName', MAX_NAME_CHARS);
  addText(login.serverName, 'ServerName', MAX_NAME_CHARS);
  let extensionPointerAt = -1;
  if (login.features) {
    slots.push([dataOffset, 4]);
    extensionPointerAt = data.pos;
    data.u32le(0);
    dataOffset += 4;
  } else {
    slots.push([dataOffset, 0]);
  }
  addText(login.clientInterfaceName, 'CltIntName', MAX_NAME_CHARS);
  addText(login.language, 'Language', MAX_NAME_CHARS);
  addText(login.database, 'Database', MAX_NAME_CHARS);
  const sspiOffset = dataOffset;
  data.bytes(login.sspi);
  dataOffset += login.sspi.length;
  addText(login.attachDbFile, 'AtchDBFile', MAX_ATTACH_DB_FILE_CHARS);
  if (v72) addText(login.changePassword, 'ChangePassword', MAX_NAME_CHARS, obfuscatePassword(login.changePassword));
  if (login.features) {
    data.patchU32le(extensionPointerAt, dataOffset);
    const before = data.pos;
    writeFeatureList(data, login.features);
    dataOffset += data.pos - before;
  }
  const total = dataOffset;
  if (total > LOGIN7_MAX_LENGTH) throw new RangeError(`LOGIN7 would be ${total} bytes; the limit is ${LOGIN7_MAX_LENGTH}`);
  if (total > 0xffff && slots.some(([o]) => o > 0xffff)) throw new RangeError('LOGIN7 offsets do not fit in a USHORT');

  const w = new Writer(total);
  const flags3 = (login.optionFlags3 & ~LOGIN7_OPTION_FLAGS_3.EXTENSION) | (login.features ? LOGIN7_OPTION_FLAGS_3.EXTENSION : 0);
  w.u32le(total).u32le(login.tdsVersion, 'TDSVersion').u32le(login.packetSize, 'PacketSize');
  w.u32le(login.clientProgVer, 'ClientProgVer').u32le(login.clientPid, 'ClientPID').u32le(login.connectionId, 'ConnectionID');
  w.u8(login.optionFlags1, 'OptionFlags1').u8(login.optionFlags2, 'OptionFlags2').u8(login.typeFlags, 'TypeFlags').u8(flags3);
  w.i32le(login.clientTimeZone, 'ClientTimeZone').u32le(login.clientLcid, 'ClientLCID');
  const put = (i: number): void => {
    const s = slots[i]!;
    w.u16le(s[0], 'LOGIN7 offset').u16le(s[1], 'LOGIN7 length');
  };
  for (let i = 0; i < 9; i++) put(i);
  w.bytes(login.clientId);
  const sspiLong = login.sspi.length >= CB_SSPI_USE_LONG;
  if (sspiLong && !v72) throw new RangeError('SSPI data of 65535 bytes or more needs TDS 7.2');
  w.u16le(sspiOffset, 'ibSSPI').u16le(sspiLong ? CB_SSPI_USE_LONG : login.sspi.length);
  put(9); // AtchDBFile
  if (v72) {
    put(10); // ChangePassword
    w.u32le(sspiLong ? login.sspi.length : 0);
  }
  w.bytes(data.finish());
  if (w.pos !== total) throw new Error(`internal: LOGIN7 encoder wrote ${w.pos} bytes, expected ${total}`);
  return w.finish();
}
