// TDS types and values as people read them, for transcripts: a TYPE_INFO as its T-SQL type name
// (`nvarchar(50)`, `decimal(12,2)`, `varbinary(max)`) and a decoded value as display text.
import {
  DATA_TYPE,
  MAX_LENGTH_PLP,
  formatDateTime2,
  formatDateTimeOffset,
  formatTime,
  type TypeInfo,
  type Value,
} from '../../protocols/tds/index.js';

const FIXED: Readonly<Record<number, string>> = {
  [DATA_TYPE.NULL]: 'null',
  [DATA_TYPE.INT1]: 'tinyint',
  [DATA_TYPE.BIT]: 'bit',
  [DATA_TYPE.INT2]: 'smallint',
  [DATA_TYPE.INT4]: 'int',
  [DATA_TYPE.DATETIM4]: 'smalldatetime',
  [DATA_TYPE.FLT4]: 'real',
  [DATA_TYPE.MONEY]: 'money',
  [DATA_TYPE.DATETIME]: 'datetime',
  [DATA_TYPE.FLT8]: 'float',
  [DATA_TYPE.MONEY4]: 'smallmoney',
  [DATA_TYPE.INT8]: 'bigint',
  [DATA_TYPE.GUID]: 'uniqueidentifier',
  [DATA_TYPE.DATEN]: 'date',
  [DATA_TYPE.TEXT]: 'text',
  [DATA_TYPE.NTEXT]: 'ntext',
  [DATA_TYPE.IMAGE]: 'image',
  [DATA_TYPE.SSVARIANT]: 'sql_variant',
  [DATA_TYPE.XML]: 'xml',
};

const BY_LENGTH: Readonly<Record<number, Readonly<Record<number, string>>>> = {
  [DATA_TYPE.INTN]: { 1: 'tinyint', 2: 'smallint', 4: 'int', 8: 'bigint' },
  [DATA_TYPE.FLTN]: { 4: 'real', 8: 'float' },
  [DATA_TYPE.MONEYN]: { 4: 'smallmoney', 8: 'money' },
  [DATA_TYPE.DATETIMN]: { 4: 'smalldatetime', 8: 'datetime' },
};

const SIZED: Readonly<Record<number, { name: string; unit: number }>> = {
  [DATA_TYPE.BIGVARCHR]: { name: 'varchar', unit: 1 },
  [DATA_TYPE.VARCHAR]: { name: 'varchar', unit: 1 },
  [DATA_TYPE.BIGCHAR]: { name: 'char', unit: 1 },
  [DATA_TYPE.CHAR]: { name: 'char', unit: 1 },
  [DATA_TYPE.NVARCHAR]: { name: 'nvarchar', unit: 2 },
  [DATA_TYPE.NCHAR]: { name: 'nchar', unit: 2 },
  [DATA_TYPE.BIGVARBIN]: { name: 'varbinary', unit: 1 },
  [DATA_TYPE.VARBINARY]: { name: 'varbinary', unit: 1 },
  [DATA_TYPE.BIGBINARY]: { name: 'binary', unit: 1 },
  [DATA_TYPE.BINARY]: { name: 'binary', unit: 1 },
};

/** The T-SQL name of a TYPE_INFO. */
export function sqlTypeName(ti: TypeInfo): string {
  const t = ti.type;
  const fixed = FIXED[t];
  if (fixed) return fixed;
  const byLength = BY_LENGTH[t];
  if (byLength) return byLength[ti.length ?? 0] ?? 'unknown';
  if (t === DATA_TYPE.BITN) return 'bit';
  if (t === DATA_TYPE.DECIMALN || t === DATA_TYPE.DECIMAL) return `decimal(${ti.precision},${ti.scale})`;
  if (t === DATA_TYPE.NUMERICN || t === DATA_TYPE.NUMERIC) return `numeric(${ti.precision},${ti.scale})`;
  if (t === DATA_TYPE.TIMEN) return `time(${ti.scale})`;
  if (t === DATA_TYPE.DATETIME2N) return `datetime2(${ti.scale})`;
  if (t === DATA_TYPE.DATETIMEOFFSETN) return `datetimeoffset(${ti.scale})`;
  const sized = SIZED[t];
  if (sized) return ti.length === MAX_LENGTH_PLP ? `${sized.name}(max)` : `${sized.name}(${(ti.length ?? 0) / sized.unit})`;
  if (t === DATA_TYPE.UDT) return ti.udt ? ti.udt.typeName : 'udt';
  return 'unknown';
}

const MAX_DISPLAY_CHARS = 4096;

/**
 * The UTF-8 size of a value's whole display text when displayValue() cuts it (the transcript's
 * fullBytes), else undefined.
 */
export function displayFullBytes(v: Value): number | undefined {
  if (typeof v === 'string') return v.length > MAX_DISPLAY_CHARS ? Buffer.byteLength(v) : undefined;
  if (Buffer.isBuffer(v)) return v.length > MAX_DISPLAY_CHARS / 2 ? 2 + 2 * v.length : undefined;
  return undefined;
}

/** A value as display text (null stays null); long values are cut (the recorder clips again to its limit). */
export function displayValue(v: Value, ti?: TypeInfo): string | null {
  if (v === null) return null;
  if (typeof v === 'string') {
    if (v.length <= MAX_DISPLAY_CHARS) return v;
    // Not between the halves of a surrogate pair.
    const hi = v.charCodeAt(MAX_DISPLAY_CHARS - 1);
    return v.slice(0, hi >= 0xd800 && hi <= 0xdbff ? MAX_DISPLAY_CHARS - 1 : MAX_DISPLAY_CHARS);
  }
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex', 0, Math.min(v.length, MAX_DISPLAY_CHARS / 2))}`;
  if (v instanceof Date) {
    if (ti && (ti.type === DATA_TYPE.DATEN)) return v.toISOString().slice(0, 10);
    return v.toISOString().replace('Z', '');
  }
  switch (v.kind) {
    case 'time':
      return formatTime(v.ticks, ti?.scale ?? 7);
    case 'datetime2':
      return formatDateTime2(v, ti?.scale ?? 7);
    case 'datetimeoffset':
      return formatDateTimeOffset(v, ti?.scale ?? 7);
  }
}
