// Backpressure: a client that stops reading a ~300 MB result must not make warden buffer it.
// warden runs in this process, so its memory is this process's: heapUsed + external is sampled
// while the client is paused and while it then reads everything, and the growth must stay far
// below the result size. The full result must still arrive intact afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../protocols/postgres/codes.js';
import { encodeQuery } from '../../protocols/postgres/frontend-messages.js';
import { rawLogin, type RawSession } from '../helpers/pg-raw.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const ROWS = 300_000;
const WIDTH = 1000;
/** DataRow: type (1) + length (4) + column count (2) + value length (4) + value. */
const RESULT_BYTES = ROWS * (1 + 4 + 2 + 4 + WIDTH);
const MB = 1024 * 1024;

let w: TestWarden;
beforeAll(async () => {
  w = await startTestWarden();
});
afterAll(async () => {
  await w?.stop();
});

const used = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

/** Counts messages of a stream without keeping them (this process is warden's too). */
class StreamCounter {
  rows = 0;
  bytes = 0;
  tag = '';
  ready = false;
  private header = Buffer.alloc(5);
  private have = 0;
  private remaining = 0;
  private code = 0;
  private tagParts: Buffer[] = [];

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - i);
        if (this.code === Backend.commandComplete) this.tagParts.push(Buffer.from(chunk.subarray(i, i + take)));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.finish();
        continue;
      }
      const take = Math.min(5 - this.have, chunk.length - i);
      chunk.copy(this.header, this.have, i, i + take);
      this.have += take;
      i += take;
      if (this.have < 5) break;
      this.have = 0;
      this.code = this.header[0] as number;
      this.remaining = this.header.readInt32BE(1) - 4;
      if (this.remaining === 0) this.finish();
    }
  }

  private finish(): void {
    if (this.code === Backend.dataRow) this.rows++;
    if (this.code === Backend.commandComplete) this.tag = Buffer.concat(this.tagParts).toString('utf8').replace(/\0$/, '');
    if (this.code === Backend.readyForQuery) this.ready = true;
    this.tagParts = [];
  }
}

async function sample(ms: number, into: number[]): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    into.push(used());
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('backpressure through warden', () => {
  it(`a paused client of a ${Math.round(RESULT_BYTES / MB)} MB result: warden's memory stays flat, and the whole result arrives later`, async () => {
    const s: RawSession = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
    const socket = s.socket;
    socket.removeAllListeners('data'); // take reading over from the login reader
    socket.pause();
    const counter = new StreamCounter();
    socket.on('data', (chunk: Buffer) => counter.push(chunk));
    socket.pause();

    await new Promise((r) => setTimeout(r, 200));
    const baseline = used();
    socket.write(encodeQuery(`SELECT repeat('x', ${WIDTH}) FROM generate_series(1, ${ROWS})`));

    // Phase 1: the client reads nothing for two seconds. PostgreSQL could send the whole result
    // in that time; warden must stop reading it once the client's socket is full.
    const paused: number[] = [];
    await sample(2000, paused);
    const pausedGrowth = Math.max(...paused) - baseline;
    expect(counter.bytes).toBe(0);

    // Phase 2: read everything, as fast as possible.
    const reading: number[] = [];
    const started = Date.now();
    socket.resume();
    const sampler = (async () => {
      while (!counter.ready && Date.now() - started < 60_000) {
        reading.push(used());
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await sampler;
    const readingGrowth = Math.max(...reading) - baseline;

    expect(counter.ready).toBe(true);
    expect(counter.rows).toBe(ROWS);
    expect(counter.tag).toBe(`SELECT ${ROWS}`);
    expect(counter.bytes).toBeGreaterThan(RESULT_BYTES);
    // Generous bounds (GC timing, TLS buffers, the test's own client), yet far below the result size.
    expect(pausedGrowth).toBeLessThan(48 * MB);
    expect(readingGrowth).toBeLessThan(96 * MB);
    expect(pausedGrowth).toBeLessThan(RESULT_BYTES / 6);
    socket.destroy();
  }, 90_000);
});
