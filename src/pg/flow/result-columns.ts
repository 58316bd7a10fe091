// The columns of a result as the flow sees them (decoded RowDescription) and as a transcript
// records them. A session usually sends the same few statements again and again, and their
// results are described by the same RowDescription bytes each time: decoding them and building
// the transcript's columns once per shape, not once per result, takes that work off every
// statement when transcripts are on.

import { decodeRowDescription, type FieldDescription } from '../../../protocols/postgres/backend-messages.js';
import type { ResultColumn } from '../../audit/types.js';
import type { CopyMaskPlan, RowMaskPlan } from '../../masking/types.js';
import { typeName } from './types.js';

/** Descriptions larger than this are decoded every time (comparing them would cost as much). */
const MAX_CACHED_BYTES = 4096;

/**
 * Decodes RowDescription messages, returning the previous result's fields (the same frozen array)
 * when the message is byte for byte the one before it.
 */
export class RowDescriptions {
  private lastMsg: Buffer | undefined;
  private lastFields: readonly FieldDescription[] = [];

  /** The fields of the RowDescription at buf[start, end). */
  decode(buf: Buffer, start: number, end: number): readonly FieldDescription[] {
    const last = this.lastMsg;
    if (last && end - start === last.length && buf.compare(last, 0, last.length, start, end) === 0) return this.lastFields;
    const msg = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    const fields = freezeFields(decodeRowDescription(msg));
    if (msg.length <= MAX_CACHED_BYTES) {
      this.lastMsg = Buffer.from(msg); // a copy: the read buffer is reused
      this.lastFields = fields;
    }
    return fields;
  }
}

function freezeFields(fields: FieldDescription[]): readonly FieldDescription[] {
  for (const f of fields) Object.freeze(f);
  return Object.freeze(fields);
}

/** Transcript columns of unmasked results, by their (frozen) fields. */
const plainColumns = new WeakMap<readonly FieldDescription[], readonly ResultColumn[]>();

/**
 * The transcript's columns of a result: name, type name, and the masking rule applied to each. A
 * result nothing was masked in, described by frozen fields (RowDescriptions), gets the same
 * frozen array every time, which the recorder serializes once (record-json.ts).
 */
export function resultColumns(fields: readonly FieldDescription[], plan: RowMaskPlan | undefined, copy: CopyMaskPlan | undefined): readonly ResultColumn[] {
  if (plan?.columns.some((c) => c) || copy?.columns.some((c) => c)) {
    return fields.map((f, i) => {
      const applied = plan?.columns[i] ?? copy?.columns[i] ?? null;
      const column: ResultColumn = { name: f.name, type: typeName(f.typeOid), masked: applied?.rule ?? null };
      if (applied?.table !== undefined) column.table = applied.table;
      return column;
    });
  }
  // Only frozen fields are ever kept, so a hit needs no check.
  let columns = plainColumns.get(fields);
  if (columns !== undefined) return columns;
  if (!Object.isFrozen(fields)) return columnsOf(fields, () => null);
  columns = Object.freeze(columnsOf(fields, () => null).map((c) => Object.freeze(c)));
  plainColumns.set(fields, columns);
  return columns;
}

function columnsOf(fields: readonly FieldDescription[], rule: (i: number) => string | null): ResultColumn[] {
  return fields.map((f, i) => ({ name: f.name, type: typeName(f.typeOid), masked: rule(i) }));
}
