// What a wire record keeps of a session's bytes (src/pg/recording/wire-encoder.ts): the same
// whatever the reads were (a stream cut anywhere, or into single bytes), rows only as the capture
// keeps them, their summary where their result ends, and COPY data never.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { CapturePolicy } from '../../src/audit/config.js';
import { decodeRowsSummary, ROWS_SUMMARY, WireBuffer, WireSessionEncoder } from '../../src/pg/recording/wire-encoder.js';

const msg = (code: string, body: Buffer | string): Buffer => {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const m = Buffer.alloc(5 + b.length);
  m[0] = code.charCodeAt(0);
  m.writeUInt32BE(4 + b.length, 1);
  b.copy(m, 5);
  return m;
};
const row = (v: string): Buffer => {
  const b = Buffer.alloc(6 + v.length);
  b.writeInt16BE(1, 0);
  b.writeInt32BE(v.length, 2);
  b.write(v, 6);
  return msg('D', b);
};
const rows = [row('alice'), row('bob'), row('carol'), row('dave')];
const server = Buffer.concat([msg('T', 'desc'), ...rows, msg('C', 'SELECT 4\0'), msg('N', 'notice'), msg('d', 'copy out'), msg('C', 'COPY 1\0'), msg('Z', 'I')]);
const client = Buffer.concat([msg('Q', 'SELECT 1\0'), msg('d', 'copy in data'), msg('c', ''), msg('X', '')]);

/** Runs `stream` through a fresh encoder cut at `cuts`; returns the kept bytes. */
function encode(capture: CapturePolicy, stream: Buffer, cuts: number[], fromClient = false): Buffer {
  const enc = new WireSessionEncoder(capture);
  const sink = new WireBuffer(16); // grown as it goes
  let at = 0;
  for (const cut of [...cuts, stream.length]) {
    const chunk = Buffer.from(stream.subarray(at, cut)); // a read of its own
    if (fromClient) enc.fromClient(chunk, sink);
    else enc.fromServer(chunk, sink);
    at = cut;
  }
  enc.finish(sink);
  return Buffer.from(sink.bytes());
}

/** Every way of cutting `stream` in two, and into single bytes. */
function cuttings(stream: Buffer): number[][] {
  const all: number[][] = [[]];
  for (let i = 1; i < stream.length; i++) all.push([i]);
  all.push(Array.from({ length: stream.length - 1 }, (_, i) => i + 1));
  return all;
}

/** The messages of a kept stream: [code, body]. */
function messages(b: Buffer): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (let i = 0; i < b.length; ) {
    const len = b.readUInt32BE(i + 1);
    out.push([b[i] === ROWS_SUMMARY ? 'summary' : String.fromCharCode(b[i] as number), b.subarray(i, i + 1 + len)]);
    i += 1 + len;
  }
  return out;
}

describe('the wire encoder', () => {
  it('keeps no row under digest: one summary with the rows, their bytes and the digest of the DataRows as sent, however the stream was read', () => {
    const capture: CapturePolicy = { mode: 'digest', firstRows: 10 };
    const whole = encode(capture, server, []);
    for (const cuts of cuttings(server)) expect(encode(capture, server, cuts)).toEqual(whole);
    const kept = messages(whole);
    expect(kept.map(([c]) => c)).toEqual(['T', 'summary', 'C', 'N', 'C', 'Z']);
    const summary = decodeRowsSummary(kept[1]?.[1] as Buffer);
    expect(summary).toEqual({ rows: 4, bytes: Buffer.concat(rows).length, sha256: createHash('sha256').update(Buffer.concat(rows)).digest('hex') });
    for (const v of ['alice', 'bob', 'carol', 'dave', 'copy out']) expect(whole.includes(v)).toBe(false);
  });

  it('keeps the first N rows of each result under first, and counts the rest', () => {
    const capture: CapturePolicy = { mode: 'first', firstRows: 2 };
    const whole = encode(capture, server, []);
    for (const cuts of cuttings(server)) expect(encode(capture, server, cuts)).toEqual(whole);
    const kept = messages(whole);
    expect(kept.map(([c]) => c)).toEqual(['T', 'D', 'D', 'summary', 'C', 'N', 'C', 'Z']);
    expect(decodeRowsSummary(kept[3]?.[1] as Buffer)).toEqual({ rows: 2, bytes: (rows[2] as Buffer).length + (rows[3] as Buffer).length });
    expect(whole.includes('bob')).toBe(true);
    expect(whole.includes('carol')).toBe(false);
  });

  it("drops the client's COPY data and keeps the rest", () => {
    const capture: CapturePolicy = { mode: 'none', firstRows: 10 };
    const whole = encode(capture, client, [], true);
    for (const cuts of cuttings(client)) expect(encode(capture, client, cuts, true)).toEqual(whole);
    expect(messages(whole).map(([c]) => c)).toEqual(['Q', 'c', 'X']);
  });

  it('digests rows a notice came between, and rows too many to hold, as sent', () => {
    const capture: CapturePolicy = { mode: 'digest', firstRows: 10 };
    const between = Buffer.concat([msg('T', 'desc'), rows[0] as Buffer, msg('N', 'notice'), rows[1] as Buffer, rows[2] as Buffer, msg('C', 'SELECT 3\0'), msg('Z', 'I')]);
    const whole = encode(capture, between, []);
    for (const cuts of cuttings(between)) expect(encode(capture, between, cuts)).toEqual(whole);
    const kept = messages(whole);
    expect(kept.map(([c]) => c)).toEqual(['T', 'N', 'summary', 'C', 'Z']);
    expect(decodeRowsSummary(kept[2]?.[1] as Buffer)?.sha256).toBe(createHash('sha256').update(Buffer.concat(rows.slice(0, 3))).digest('hex'));
    // 40 rows of 1 KiB: past what is held before a running hash takes over.
    const big = Array.from({ length: 40 }, (_, i) => row(String(i).padEnd(1024, 'x')));
    const large = Buffer.concat([msg('T', 'desc'), ...big, msg('C', 'SELECT 40\0'), msg('Z', 'I')]);
    const expected = { rows: 40, bytes: Buffer.concat(big).length, sha256: createHash('sha256').update(Buffer.concat(big)).digest('hex') };
    for (const cuts of [[], [3], [5000, 5001, 20_000], Array.from({ length: 40 }, (_, i) => 100 + i * 997)]) {
      const out = messages(encode(capture, large, cuts));
      expect(out.map(([c]) => c)).toEqual(['T', 'summary', 'C', 'Z']);
      expect(decodeRowsSummary(out[1]?.[1] as Buffer)).toEqual(expected);
    }
  });

  it('summarizes rows of a result the connection cut short at the end', () => {
    const capture: CapturePolicy = { mode: 'none', firstRows: 10 };
    const cut = Buffer.concat([msg('T', 'desc'), ...rows.slice(0, 3)]);
    const kept = messages(encode(capture, cut, [7]));
    expect(kept.map(([c]) => c)).toEqual(['T', 'summary']);
    expect(decodeRowsSummary(kept[1]?.[1] as Buffer)).toEqual({ rows: 3, bytes: Buffer.concat(rows.slice(0, 3)).length });
  });
});
