// The writer's batch of encoded lines: every line must be byte for byte the line encodeRecordJson
// builds (the format's definition), whatever the data holds and however the buffer grows.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRecordJson, GENESIS_HASH, parseLine, RECORD_KIND, type RecordKind } from '../../src/audit/frame.js';
import { LineBatch } from '../../src/audit/line-batch.js';

const kinds = Object.values(RECORD_KIND) as RecordKind[];
const record = fc.record({
  kind: fc.constantFrom(...kinds),
  sid: fc.option(fc.string({ unit: 'binary', maxLength: 20 }), { nil: undefined }),
  // Any text, lone surrogates included: JSON.stringify escapes those, so what is written is UTF-8.
  value: fc.string({ unit: 'binary', maxLength: 300 }),
});

describe('LineBatch', () => {
  it('writes the lines encodeRecordJson builds, chained, for any data', () => {
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 12 }), (records) => {
        const batch = new LineBatch();
        const expected: string[] = [];
        let prev = GENESIS_HASH;
        let prevOfBatch = GENESIS_HASH;
        records.forEach((r, i) => {
          const sidJson = r.sid === undefined ? undefined : JSON.stringify(r.sid);
          const dJson = JSON.stringify({ v: r.value });
          const { line, hash } = encodeRecordJson(i + 1, '2026-11-29T12:00:00.000Z', prev, r.kind, sidJson, dJson);
          expected.push(line);
          prev = hash;
          prevOfBatch = batch.append(i + 1, '2026-11-29T12:00:00.000Z', prevOfBatch, r.kind, sidJson, dJson);
          expect(prevOfBatch).toBe(hash);
        });
        expect(batch.bytes().equals(Buffer.from(expected.join('')))).toBe(true);
        expect(batch.length).toBe(Buffer.byteLength(expected.join('')));
      }),
      { numRuns: 300 },
    );
  });

  it('grows for a large record and keeps what it holds; each line verifies', () => {
    const batch = new LineBatch();
    const small = JSON.stringify({ text: 'é'.repeat(1000) });
    const large = JSON.stringify({ text: '€'.repeat(200_000) }); // 600 000 bytes, past the initial buffer
    let prev = GENESIS_HASH;
    for (let i = 0; i < 30; i++) prev = batch.append(i + 1, '2026-11-29T12:00:00.000Z', prev, RECORD_KIND.statement, '"s"', small);
    prev = batch.append(31, '2026-11-29T12:00:00.000Z', prev, RECORD_KIND.statement, '"s"', large);
    prev = batch.append(32, '2026-11-29T12:00:00.000Z', prev, RECORD_KIND.statement, '"s"', small);
    const lines = batch.bytes().toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(32);
    let chain = GENESIS_HASH;
    for (const l of lines) {
      const p = parseLine(Buffer.from(l));
      expect(p.ok && p.hashOk).toBe(true);
      if (!p.ok) return;
      expect(p.record.prev).toBe(chain);
      chain = p.record.hash;
    }
    expect(chain).toBe(prev);
    // The hash is over the line without its hash member, followed by '}'.
    const last = lines[31] as string;
    expect(createHash('sha256').update(`${last.slice(0, last.indexOf(',"hash":"'))}}`).digest('hex')).toBe(prev);
  });

  it('starts empty again after clear', () => {
    const batch = new LineBatch();
    batch.append(1, '2026-11-29T12:00:00.000Z', GENESIS_HASH, RECORD_KIND.event, undefined, JSON.stringify({ x: 'y'.repeat(2_000_000) }));
    batch.clear();
    expect(batch.length).toBe(0);
    const hash = batch.append(2, '2026-11-29T12:00:00.000Z', GENESIS_HASH, RECORD_KIND.event, undefined, '{}');
    expect(batch.bytes().toString()).toBe(encodeRecordJson(2, '2026-11-29T12:00:00.000Z', GENESIS_HASH, RECORD_KIND.event, undefined, '{}').line);
    expect(hash).toHaveLength(64);
  });
});
