// The record line format and the bounded line reader.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodedRecordBytes, encodeRecord, encodeRecordJson, GENESIS_HASH, HASH_SUFFIX_BYTES, parseLine, sha256Hex } from '../../src/audit/frame.js';
import { readLines, type RawLine } from '../../src/audit/line-reader.js';
import { tempDataDir } from './audit-support.js';

describe('encodeRecord / parseLine', () => {
  it('round-trips any JSON data, including lone surrogates and control characters, with a valid hash', () => {
    const value = fc.jsonValue({ maxDepth: 3 });
    fc.assert(
      fc.property(fc.nat(), fc.string({ unit: 'binary' }), value, (seq, sid, data) => {
        const { line, hash } = encodeRecord(seq, '2026-01-01T00:00:00.000Z', GENESIS_HASH, 'event', sid, { v: data });
        expect(line.endsWith('\n')).toBe(true);
        expect(line.slice(0, -1)).not.toContain('\n');
        const parsed = parseLine(Buffer.from(line.slice(0, -1), 'utf8'));
        expect(parsed.ok && parsed.hashOk).toBe(true);
        if (!parsed.ok) return;
        expect(parsed.record).toMatchObject({ seq, sid, hash, k: 'event', prev: GENESIS_HASH });
        expect(parsed.record.d).toEqual(JSON.parse(JSON.stringify({ v: data })));
      }),
      { numRuns: 300 },
    );
  });

  it('hashes exactly the bytes before the hash member, followed by "}", even for lone surrogates', () => {
    const { line, hash } = encodeRecord(7, '2026-01-01T00:00:00.000Z', GENESIS_HASH, 'session-end', 's\ud800', { reason: 'x\udfff\u0000', statements: 0 });
    expect(line).toContain('\\ud800');
    const bytes = Buffer.from(line.slice(0, -1));
    expect(sha256Hex(Buffer.concat([bytes.subarray(0, bytes.length - HASH_SUFFIX_BYTES), Buffer.from('}')]))).toBe(hash);
  });

  it('counts the bytes of a line from the sizes of its serialized parts', () => {
    const seqs = fc.oneof(fc.nat(), fc.constantFrom(0, 9, 10, 99, 100, 999_999, 1_000_000, Number.MAX_SAFE_INTEGER));
    // ts in milliseconds (format 2) or ISO 8601 (format 1, and clocks off the whole millisecond)
    const times = fc.oneof(fc.constantFrom(0, 9, 1_767_225_600_000, '2026-01-01T00:00:00.000Z'), fc.nat(), fc.integer({ min: 0, max: 8.64e15 }));
    fc.assert(
      fc.property(seqs, times, fc.option(fc.string({ unit: 'binary' }), { nil: undefined }), fc.string({ unit: 'binary' }), (seq, ts, sid, text) => {
        const sidJson = sid === undefined ? undefined : JSON.stringify(sid);
        const dJson = JSON.stringify({ text });
        const { line } = encodeRecordJson(seq, ts, GENESIS_HASH, 'statement', sidJson, dJson);
        const counted = encodedRecordBytes(seq, ts, 'statement', sidJson === undefined ? undefined : Buffer.byteLength(sidJson), Buffer.byteLength(dJson));
        expect(counted).toBe(Buffer.byteLength(line));
        const parsed = parseLine(Buffer.from(line.slice(0, -1)));
        expect(parsed.ok && parsed.hashOk).toBe(true);
        // Readers get ISO 8601 either way.
        expect(parsed.ok && parsed.record.ts).toBe(typeof ts === 'number' ? new Date(ts).toISOString() : ts);
      }),
      { numRuns: 500 },
    );
  });

  it('tells an edit, a cut record and a foreign line apart', () => {
    const { line } = encodeRecord(3, '2026-01-01T00:00:00.000Z', GENESIS_HASH, 'event', 's', { kind: 'notice', message: 'hello' });
    const body = line.slice(0, -1);
    const edited = parseLine(Buffer.from(body.replace('hello', 'jello')));
    expect(edited).toMatchObject({ ok: true, hashOk: false });
    const brokenJson = parseLine(Buffer.from(body.replace('"kind"', '"kind')));
    expect(brokenJson).toMatchObject({ ok: false, problem: 'edited', seq: 3 });
    expect(parseLine(Buffer.from(body.slice(0, 50)))).toMatchObject({ ok: false, problem: 'damaged', seq: 3 });
    expect(parseLine(Buffer.from('hello world'))).toMatchObject({ ok: false, problem: 'not-a-record' });
    expect(parseLine(Buffer.from(''))).toMatchObject({ ok: false, problem: 'not-a-record' });
  });
});

describe('readLines', () => {
  let data: { dir: string; cleanup: () => void };
  beforeEach(() => {
    data = tempDataDir('warden-audit-lines-');
  });
  afterEach(() => data.cleanup());

  async function collect(path: string, maxLineBytes: number): Promise<RawLine[]> {
    const out: RawLine[] = [];
    for await (const l of readLines(path, { maxLineBytes })) out.push(l);
    return out;
  }

  it('joins lines across chunk boundaries, reports oversized lines without buffering them, and marks a torn tail', async () => {
    const path = join(data.dir, 'f');
    const long = 'a'.repeat(1_500_000); // crosses the 1 MiB read chunk
    const huge = 'b'.repeat(2_200_000);
    writeFileSync(path, `first\n${long}\n${huge}\nlast\npartial`);
    const lines = await collect(path, 2_000_000);
    expect(lines.map((l) => [l.lineNo, l.length, l.complete, l.oversized])).toEqual([
      [1, 5, true, false],
      [2, 1_500_000, true, false],
      [3, 2_200_000, true, true],
      [4, 4, true, false],
      [5, 7, false, false],
    ]);
    expect(lines[1]?.bytes.equals(Buffer.from(long))).toBe(true);
    expect(lines[2]?.bytes.length).toBe(0);
    expect(lines[3]?.offset).toBe(6 + 1_500_001 + 2_200_001);
    expect(lines[4]?.bytes.toString()).toBe('partial');
  });

  it('starts at an offset', async () => {
    const path = join(data.dir, 'g');
    writeFileSync(path, 'one\ntwo\nthree\n');
    const lines: RawLine[] = [];
    for await (const l of readLines(path, { start: 4, firstLineNo: 2, maxLineBytes: 100 })) lines.push(l);
    expect(lines.map((l) => [l.lineNo, l.bytes.toString(), l.offset])).toEqual([
      [2, 'two', 4],
      [3, 'three', 8],
    ]);
  });
});
