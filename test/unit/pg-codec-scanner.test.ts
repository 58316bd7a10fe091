// MessageScanner, the relay's framer, fed the captured streams cut at every offset, byte by byte,
// at random multi-cut points (fast-check) and as TCP cut them, with every mix of whole/streamed
// decisions. Whatever the cuts, the bytes that come out must be the bytes that went in, in order,
// with the same message boundaries; whole messages must be views (no copy) unless they span
// chunks; and no byte of a message may be forwarded before its header was seen.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allCapturedConnections } from '../../fixtures/pg/captures.js';
import { MessageScanner, RUN, splitMessages, type ScanHandler } from '../../protocols/postgres/scanner.js';
import { Backend, Frontend } from '../../protocols/postgres/codes.js';
import { ProtocolError } from '../../protocols/errors.js';

interface Ref {
  offset: number;
  code: number;
  total: number;
}

/** Message boundaries read straight from the length fields (independent of the scanner). */
function boundaries(stream: Buffer): Ref[] {
  const refs: Ref[] = [];
  for (let at = 0; at < stream.length; ) {
    const total = 1 + stream.readInt32BE(at + 1);
    refs.push({ offset: at, code: stream[at] as number, total });
    at += total;
  }
  return refs;
}

type Decision = boolean | typeof RUN;
type Decide = (code: number, index: number) => Decision;

const MODES: Record<string, Decide> = {
  'all whole': () => true,
  'all streamed': () => false,
  'relay, client side (whole Terminate)': (code) => code === Frontend.terminate,
  'relay, upstream side (whole ReadyForQuery)': (code) => code === Backend.readyForQuery,
  alternating: (_c, i) => i % 2 === 0,
  'pseudo-random': (_c, i) => ((i * 2654435761) >>> 0) % 3 === 0,
  'runs of rows (masked results)': (code) => (code === Backend.dataRow || code === Backend.copyData ? RUN : code === Backend.readyForQuery),
  'pseudo-random runs': (_c, i) => ([true, false, RUN] as const)[((i * 2654435761) >>> 0) % 3] as Decision,
};
const MODE_NAMES = Object.keys(MODES);

/**
 * A ScanHandler that checks every callback against the reference as it happens (no copies).
 * The scanner asks whole() for a header before it flushes the streamed bytes that preceded it in
 * the chunk, so streamed bytes are checked against the messages they cover, not the newest header.
 */
class Checker implements ScanHandler {
  pos = 0;
  headers = 0;
  /** Index of the message that contains `pos`. */
  private at = 0;
  private readonly decisions: Decision[] = [];
  chunk: Buffer | undefined;
  chunkStart = 0;
  bytesCalls = 0;
  suspensions = 0;
  runs = 0;

  constructor(
    private readonly stream: Buffer,
    private readonly refs: readonly Ref[],
    private readonly decide: Decide,
    /** Whole messages for which onMessage suspends the scanner (as the relay's statement flow does). */
    private readonly suspendAt: (index: number) => boolean = () => false,
  ) {}

  private fail(what: string): never {
    throw new Error(`${what} (stream pos ${this.pos}, message ${this.at}, headers seen ${this.headers})`);
  }

  private advance(n: number): void {
    this.pos += n;
    while (this.at < this.refs.length && this.pos >= (this.refs[this.at] as Ref).offset + (this.refs[this.at] as Ref).total) this.at++;
  }

  whole(code: number, length: number): Decision {
    const ref = this.refs[this.headers];
    if (!ref || ref.code !== code || ref.total !== length) this.fail(`header ${this.headers} is ${code}/${length}, expected ${ref?.code}/${ref?.total}`);
    const decision = this.decide(code, this.headers++);
    this.decisions.push(decision);
    return decision;
  }

  onMessage(code: number, buf: Buffer, start: number, end: number): void | Promise<unknown> {
    const ref = this.refs[this.at];
    if (!ref) this.fail('onMessage past the end');
    if (this.at !== this.headers - 1) this.fail('whole message delivered out of order with its header');
    if (!this.decisions[this.at]) this.fail('onMessage for a streamed message');
    if (code !== ref.code || end - start !== ref.total) this.fail('onMessage with the wrong frame');
    if (this.pos !== ref.offset) this.fail(`whole message delivered at ${this.pos}, not at its boundary ${ref.offset}`);
    if (buf.compare(this.stream, ref.offset, ref.offset + ref.total, start, end) !== 0) this.fail('whole message bytes differ');
    const chunk = this.chunk as Buffer;
    const inOneChunk = ref.offset >= this.chunkStart && ref.offset + ref.total <= this.chunkStart + chunk.length;
    // A view into the chunk's memory (after a suspension the scanner works on a subarray of it).
    const view = buf.buffer === chunk.buffer && buf.byteOffset + start >= chunk.byteOffset && buf.byteOffset + end <= chunk.byteOffset + chunk.length;
    if (inOneChunk && !view) this.fail('a whole message inside one chunk was copied');
    if (!inOneChunk && (start !== 0 || buf.length !== ref.total)) this.fail('a spanning message was not collected into a buffer of its size');
    this.advance(ref.total);
    if (this.suspendAt(this.at - 1)) {
      this.suspensions++;
      return Promise.resolve();
    }
  }

  /**
   * A run starts at the message whose header was framed last, holds only complete messages of its
   * type inside the chunk (views, no copy), and stops only where the next message is of another
   * type or not complete in the chunk.
   */
  onRun(code: number, buf: Buffer, start: number, end: number): void {
    const first = this.refs[this.at];
    if (!first) this.fail('onRun past the end');
    if (this.at !== this.headers - 1) this.fail('run delivered out of order with its header');
    if (this.decisions[this.at] !== RUN) this.fail('onRun for a message whole() did not answer RUN for');
    if (code !== first.code || this.pos !== first.offset) this.fail('run does not start at its first message');
    const chunk = this.chunk as Buffer;
    if (buf.buffer !== chunk.buffer || buf.byteOffset + start < chunk.byteOffset || buf.byteOffset + end > chunk.byteOffset + chunk.length) this.fail('a run is not a view into its chunk');
    if (buf.compare(this.stream, this.pos, this.pos + end - start, start, end) !== 0) this.fail('run bytes differ');
    let k = this.at;
    let p = this.pos;
    for (; p < this.pos + end - start; k++) {
      const ref = this.refs[k];
      if (!ref || ref.offset !== p || ref.code !== code) this.fail('a run holds a message of another type or is not cut at message boundaries');
      p += ref.total;
    }
    if (p !== this.pos + end - start) this.fail('a run ends inside a message');
    const next = this.refs[k];
    const chunkEnd = this.chunkStart + chunk.length;
    if (next && next.code === code && next.offset + next.total <= chunkEnd) this.fail('a run stopped before a complete message of its type');
    // The messages after the first are framed by the run: whole() never sees their headers.
    for (let j = this.at + 1; j < k; j++) {
      this.headers++;
      this.decisions.push(RUN);
    }
    this.runs++;
    this.advance(end - start);
  }

  onBytes(buf: Buffer, start: number, end: number): void {
    this.bytesCalls++;
    const n = end - start;
    if (n <= 0) this.fail('empty onBytes range');
    if (buf.compare(this.stream, this.pos, this.pos + n, start, end) !== 0) this.fail('streamed bytes differ');
    // Every message these bytes touch must have been framed already and be a streamed one.
    for (let k = this.at; k < this.refs.length && (this.refs[k] as Ref).offset < this.pos + n; k++) {
      if (k >= this.headers) this.fail('bytes forwarded before their header was framed');
      if (this.decisions[k]) this.fail('bytes of a whole message delivered as streamed bytes');
    }
    this.advance(n);
  }
}

/** Runs the scanner over `chunks` and checks everything; returns the checker for extra asserts. */
const starts = new WeakMap<readonly Ref[], Set<number>>();

function scan(
  stream: Buffer,
  chunks: readonly Buffer[],
  decide: Decide,
  refs = boundaries(stream),
  suspendAt?: (index: number) => boolean,
): Checker {
  const checker = new Checker(stream, refs, decide, suspendAt);
  let boundary = starts.get(refs);
  if (!boundary) {
    boundary = new Set([...refs.map((r) => r.offset), stream.length]);
    starts.set(refs, boundary);
  }
  const scanner = new MessageScanner(checker, 1 << 20);
  let at = 0;
  for (const chunk of chunks) {
    checker.chunk = chunk;
    checker.chunkStart = at;
    scanner.push(chunk);
    // A suspended scanner keeps the rest of the chunk; resuming processes it (the relay resumes
    // when the handler's promise settles, and must not push meanwhile).
    while (scanner.suspended) scanner.resume();
    at += chunk.length;
    if (scanner.atBoundary !== boundary.has(at)) throw new Error(`atBoundary is ${scanner.atBoundary} at ${at}`);
  }
  if (checker.pos !== stream.length) throw new Error(`only ${checker.pos} of ${stream.length} bytes came out`);
  if (checker.headers !== refs.length) throw new Error(`${checker.headers} of ${refs.length} headers framed`);
  return checker;
}

function cutAt(stream: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts)].filter((c) => c > 0 && c < stream.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(stream.subarray(prev, p));
    prev = p;
  }
  out.push(stream.subarray(prev));
  return out;
}

const streams = allCapturedConnections().flatMap((c) => [
  { name: `${c.file}#${c.index} client→server`, bytes: c.client, chunks: c.clientChunks },
  { name: `${c.file}#${c.index} server→client`, bytes: c.server, chunks: c.serverChunks },
]).filter((s) => s.bytes.length > 0);

describe('MessageScanner over the captured streams', () => {
  it('has every captured stream to work with', () => {
    expect(streams).toHaveLength(12);
    for (const s of streams) expect(Buffer.concat(splitMessages(s.bytes)).equals(s.bytes)).toBe(true);
  });

  for (const s of streams) {
    it(`${s.name}: cut into two at every offset, mixing whole and streamed`, () => {
      const refs = boundaries(s.bytes);
      for (let i = 1; i < s.bytes.length; i++) {
        const decide = MODES[MODE_NAMES[i % MODE_NAMES.length] as string] as Decide;
        scan(s.bytes, [s.bytes.subarray(0, i), s.bytes.subarray(i)], decide, refs);
      }
      // Quadratic in the stream's length (the pgbench capture takes ~10 s on a busy 2-core machine).
    }, 180_000);

    it(`${s.name}: one byte at a time, and as TCP delivered it, in every mode`, () => {
      const refs = boundaries(s.bytes);
      const bytes = Array.from({ length: s.bytes.length }, (_, i) => s.bytes.subarray(i, i + 1));
      for (const mode of MODE_NAMES) {
        scan(s.bytes, bytes, MODES[mode] as Decide, refs);
        scan(s.bytes, s.chunks, MODES[mode] as Decide, refs);
      }
      expect(Buffer.concat(s.chunks).equals(s.bytes)).toBe(true);
    });
  }

  it('random multi-cut points with random whole/streamed decisions and suspensions (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: streams.length - 1 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }),
        fc.array(fc.constantFrom<Decision>(true, false, RUN), { minLength: 1, maxLength: 64 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
        (which, fractions, decisions, suspensions) => {
          const s = streams[which] as (typeof streams)[number];
          const cuts = fractions.map((f) => Math.floor(f * s.bytes.length));
          scan(
            s.bytes,
            cutAt(s.bytes, cuts),
            (_c, i) => decisions[i % decisions.length] as Decision,
            boundaries(s.bytes),
            (i) => suspensions[i % suspensions.length] as boolean,
          );
        },
      ),
      { numRuns: 400, seed: 0x5eed },
    );
  });

  it('suspending after every whole message, cut at every offset, changes nothing in the output', () => {
    for (const s of streams.filter((x) => x.bytes.length < 2000)) {
      const refs = boundaries(s.bytes);
      for (let i = 1; i < s.bytes.length; i++) {
        const checker = scan(s.bytes, [s.bytes.subarray(0, i), s.bytes.subarray(i)], MODES['all whole'] as Decide, refs, () => true);
        expect(checker.suspensions).toBe(refs.length);
      }
    }
  });

  it('streamed messages of one chunk come out as one range: a pass-through relay writes each chunk once', () => {
    for (const s of streams) {
      const checker = scan(s.bytes, [s.bytes], MODES['all streamed'] as Decide);
      expect(checker.bytesCalls).toBe(1);
      const tcp = scan(s.bytes, s.chunks, MODES['all streamed'] as Decide);
      // One range per chunk, plus the copied header of a message whose header TCP split.
      expect(tcp.bytesCalls).toBeLessThanOrEqual(2 * s.chunks.length);
    }
  });
});

/** A typed message with `body` (type byte, int32 length, body). */
function message(code: number, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const m = Buffer.alloc(5 + b.length);
  m[0] = code;
  m.writeInt32BE(4 + b.length, 1);
  b.copy(m, 5);
  return m;
}

describe('MessageScanner runs (whole() answers RUN)', () => {
  // A COPY TO STDOUT response and a result of DataRows, as a masked session sees them.
  const rows = Array.from({ length: 40 }, (_, i) => message(Backend.copyData, `${i}\tname ${i}\t${'x'.repeat(i % 7)}\n`));
  const stream = Buffer.concat([
    message(Backend.copyOutResponse, Buffer.from([0, 0, 2, 0, 0, 0, 0])),
    ...rows,
    message(Backend.copyDone, ''),
    message(Backend.commandComplete, 'COPY 40\0'),
    ...rows.slice(0, 5).map((r) => message(Backend.dataRow, r.subarray(5))),
    message(Backend.readyForQuery, 'I'),
  ]);
  const runs = MODES['runs of rows (masked results)'] as Decide;

  it('consecutive complete messages of a chunk come in one call', () => {
    const checker = scan(stream, [stream], runs);
    expect(checker.runs).toBe(2);
  });

  it('cut at every offset, and one byte at a time, every message comes out once and in order', () => {
    const refs = boundaries(stream);
    for (let i = 1; i < stream.length; i++) {
      scan(stream, [stream.subarray(0, i), stream.subarray(i)], runs, refs);
      scan(stream, [stream.subarray(0, i), stream.subarray(i)], MODES['pseudo-random runs'] as Decide, refs, (k) => k % 3 === 0);
    }
    scan(stream, Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1)), runs, refs);
  });

  it('random cuts with random decisions and suspensions (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(stream.length), { maxLength: 20 }),
        fc.array(fc.constantFrom<Decision>(true, false, RUN), { minLength: 1, maxLength: 32 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        (cuts, decisions, suspensions) => {
          scan(stream, cutAt(stream, cuts), (_c, i) => decisions[i % decisions.length] as Decision, boundaries(stream), (i) => suspensions[i % suspensions.length] as boolean);
        },
      ),
      { numRuns: 300, seed: 0x5eed },
    );
  });

  it('a message of a run over the length limit, or with an impossible length, ends the run and is refused at its header', () => {
    for (const bad of [message(Backend.copyData, 'y'.repeat(100)), Buffer.from([Backend.copyData, 0, 0, 0, 2, 0x79])]) {
      const s2 = Buffer.concat([rows[0] as Buffer, rows[1] as Buffer, bad, rows[2] as Buffer]);
      const delivered: number[] = [];
      const scanner = new MessageScanner(
        { whole: () => RUN, onMessage: () => undefined, onBytes: () => undefined, onRun: (_c, _b, st, e) => void delivered.push(e - st) },
        64,
      );
      expect(() => scanner.push(s2)).toThrow(ProtocolError);
      expect(delivered).toEqual([(rows[0] as Buffer).length + (rows[1] as Buffer).length]);
    }
  });
});

describe('MessageScanner refuses impossible lengths with a ProtocolError at the header', () => {
  const good = Buffer.concat([Buffer.from('5a0000000549', 'hex'), Buffer.from('5a0000000549', 'hex')]); // two ReadyForQuery

  function framedAt(stream: Buffer, max: number, chunks: readonly Buffer[]): ProtocolError {
    const scanner = new MessageScanner({ whole: () => true, onMessage: () => undefined, onBytes: () => undefined }, max);
    try {
      for (const c of chunks) scanner.push(c);
    } catch (err) {
      if (err instanceof ProtocolError) return err;
      throw err;
    }
    throw new Error('no ProtocolError');
  }

  for (const len of [0, 1, 2, 3, -1, -2147483648]) {
    it(`declared length ${len}`, () => {
      const bad = Buffer.alloc(5);
      bad[0] = Frontend.query;
      bad.writeInt32BE(len, 1);
      const stream = Buffer.concat([good, bad, Buffer.from('garbage')]);
      for (let cut = 1; cut < stream.length; cut++) {
        const err = framedAt(stream, 1 << 20, [stream.subarray(0, cut), stream.subarray(cut)]);
        expect(err.offset).toBe(good.length);
        expect(err.message).toContain(`invalid message length ${len}`);
      }
    });
  }

  it('the offset is right after the scanner was suspended and resumed mid-chunk', () => {
    const bad = Buffer.from([Frontend.query, 0, 0, 0, 2]);
    const stream = Buffer.concat([good, good, bad]);
    for (let cut = 1; cut < stream.length; cut++) {
      const scanner = new MessageScanner({ whole: () => true, onMessage: () => Promise.resolve(), onBytes: () => undefined }, 1 << 20);
      let caught: unknown;
      try {
        for (const c of [stream.subarray(0, cut), stream.subarray(cut)]) {
          scanner.push(c);
          while (scanner.suspended) scanner.resume();
        }
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ProtocolError);
      expect((caught as ProtocolError).offset).toBe(2 * good.length);
    }
  });

  it('a 2 GB declared length is refused before anything is buffered', () => {
    const bad = Buffer.from([Frontend.query, 0x7f, 0xff, 0xff, 0xff, 0x53]);
    const err = framedAt(Buffer.concat([good, bad]), 1 << 30, [good, bad]);
    expect(err.offset).toBe(good.length);
    expect(err.message).toMatch(/exceeds the limit of 1073741824/);
  });

  it('a message of exactly the limit passes; one byte more is refused', () => {
    const msg = Buffer.from('510000000d73656c656374203100', 'hex'); // Query "select 1": 1 + 4 + 9 bytes
    const total = msg.length;
    expect(() => framedAt(msg, total, [msg])).toThrow('no ProtocolError');
    expect(framedAt(msg, total - 1, [msg]).message).toMatch(/exceeds the limit/);
  });

  it('splitMessages refuses a truncated final message', () => {
    expect(() => splitMessages(good.subarray(0, good.length - 1))).toThrow(ProtocolError);
  });
});
