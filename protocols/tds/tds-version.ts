// TDS protocol versions and the wire differences between them.
// [MS-TDS] 2.2.6.4 (LOGIN7 TDSVersion values) and 2.2.7.14 (LOGINACK TDSVersion).
// LOGIN7 carries the version as a little-endian DWORD; LOGINACK carries the same number in
// network byte order, so both decode to the values below.

export const TDS_VERSION = {
  V7_0: 0x70000000,
  V7_1: 0x71000000,
  V7_1_REV1: 0x71000001,
  V7_2: 0x72090002,
  V7_3A: 0x730a0003,
  V7_3B: 0x730b0003,
  V7_4: 0x74000004,
  /** TDS 8.0 (strict encryption): same token formats as 7.4. */
  V8_0: 0x08000000,
} as const;

/** What a codec needs to know about the session: the negotiated TDS version. */
export interface TdsContext {
  readonly tdsVersion: number;
}

/** 0x71..0x74 for TDS 7.1..7.4, 0x80 for TDS 8.0, 0 for anything this codec does not speak. */
export function versionLevel(tdsVersion: number): number {
  if (tdsVersion === TDS_VERSION.V8_0) return 0x80;
  const major = tdsVersion >>> 24;
  return major >= 0x71 && major <= 0x74 ? major : 0;
}

/** True for the versions this codec implements (7.1 to 7.4, and 8.0 which shares 7.4's tokens). */
export function isSupportedVersion(tdsVersion: number): boolean {
  return versionLevel(tdsVersion) !== 0;
}

const atLeast = (ctx: TdsContext, level: number): boolean => versionLevel(ctx.tdsVersion) >= level;

/** 7.2+: ALL_HEADERS before SQLBatch/RPC/TransMgr data; 8-byte DONE row counts; ULONG UserType;
 * LONG line numbers in INFO/ERROR; multi-part table names; PLP (MAX) types. */
export const isTds72Plus = (ctx: TdsContext): boolean => atLeast(ctx, 0x72);
/** 7.3+: date/time types and NBCROW. */
export const isTds73Plus = (ctx: TdsContext): boolean => atLeast(ctx, 0x73);
/** 7.4+: FeatureExt in LOGIN7, FEATUREEXTACK, FEDAUTHINFO. */
export const isTds74Plus = (ctx: TdsContext): boolean => atLeast(ctx, 0x74);
