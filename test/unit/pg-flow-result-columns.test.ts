// Result columns as the PostgreSQL flow records them: a RowDescription repeated byte for byte is
// decoded once, and the transcript columns of an unmasked result are one frozen array per shape.
import { describe, expect, it } from 'vitest';
import { decodeRowDescription, encodeRowDescription, type FieldDescription } from '../../protocols/postgres/backend-messages.js';
import type { AppliedMask, RowMaskPlan } from '../../src/masking/types.js';
import { resultColumns, RowDescriptions } from '../../src/pg/flow/result-columns.js';

const abalance: FieldDescription = { name: 'abalance', tableOid: 16397, columnAttr: 2, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 };
const email: FieldDescription = { name: 'email', tableOid: 16400, columnAttr: 3, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 };

describe('RowDescriptions', () => {
  it('decodes as decodeRowDescription does, and returns the same frozen fields for the same bytes', () => {
    const descs = new RowDescriptions();
    const msg = encodeRowDescription([abalance, email]);
    const first = descs.decode(msg, 0, msg.length);
    expect(first).toEqual(decodeRowDescription(msg));
    expect(Object.isFrozen(first) && first.every((f) => Object.isFrozen(f))).toBe(true);
    // The same bytes at another place of a read (the read buffer is reused): the same array.
    const read = Buffer.concat([Buffer.from('xx'), msg, Buffer.from('yy')]);
    expect(descs.decode(read, 2, 2 + msg.length)).toBe(first);
    msg.fill(0); // the cache holds its own copy
    const same = encodeRowDescription([abalance, email]);
    expect(descs.decode(same, 0, same.length)).toBe(first);
    // A description that differs in one byte (the type) is decoded.
    const int8 = encodeRowDescription([{ ...abalance, typeOid: 20 }, email]);
    expect(descs.decode(int8, 0, int8.length)[0]?.typeOid).toBe(20);
    const one = encodeRowDescription([email]);
    const other = descs.decode(one, 0, one.length);
    expect(other).not.toBe(first);
    expect(other.map((f) => f.name)).toEqual(['email']);
  });
});

describe('resultColumns', () => {
  const desc = encodeRowDescription([abalance, email]);
  const fields = new RowDescriptions().decode(desc, 0, desc.length);

  it('names each column with its type, and gives the same frozen array for unmasked results', () => {
    const cols = resultColumns(fields, undefined, undefined);
    expect(cols).toEqual([
      { name: 'abalance', type: 'int4', masked: null },
      { name: 'email', type: 'text', masked: null },
    ]);
    expect(Object.isFrozen(cols)).toBe(true);
    expect(resultColumns(fields, undefined, undefined)).toBe(cols);
    const inactive = { active: false, columns: [null, null] } as unknown as RowMaskPlan;
    expect(resultColumns(fields, inactive, undefined)).toBe(cols);
  });

  it('carries the masking rule of each masked column, in a fresh array', () => {
    const mask: AppliedMask = { rule: 'email-partial', strategy: 'partial', because: 'customers.email (table column)' };
    const plan = { active: true, columns: [null, mask] } as unknown as RowMaskPlan;
    const cols = resultColumns(fields, plan, undefined);
    expect(cols).toEqual([
      { name: 'abalance', type: 'int4', masked: null },
      { name: 'email', type: 'text', masked: 'email-partial' },
    ]);
    expect(resultColumns(fields, plan, undefined)).not.toBe(cols);
  });

  it('builds the columns of fields that are not frozen each time', () => {
    const plain = [abalance];
    const cols = resultColumns(plain, undefined, undefined);
    expect(cols).toEqual([{ name: 'abalance', type: 'int4', masked: null }]);
    expect(resultColumns(plain, undefined, undefined)).not.toBe(cols);
  });
});
