// A message's declared length costs warden memory only as its bytes actually arrive, and
// messages that have no body must say so: a peer cannot make warden reserve a gigabyte by
// declaring one.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Frontend } from '../../protocols/postgres/codes.js';
import { errorIn, rawLogin } from '../helpers/pg-raw.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
beforeAll(async () => {
  w = await startTestWarden();
});
afterAll(async () => {
  await w?.stop();
});

function header(code: number, declaredLength: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = code;
  b.writeInt32BE(declaredLength, 1);
  return b;
}

describe('declared lengths', () => {
  it('a Terminate, Sync or Flush with a body is a protocol violation, refused at its header', async () => {
    for (const code of [Frontend.terminate, Frontend.sync, Frontend.flush]) {
      const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
      s.socket.write(header(code, 100_000_000)); // declares 100 MB, sends nothing more
      const msgs = await s.reader.untilClosed(5000);
      expect(errorIn(msgs)).toMatchObject({ severity: 'FATAL', code: '08P01' });
      expect(errorIn(msgs)?.message).toMatch(/must be 5 bytes long/);
    }
  });

  it('several sessions declaring 512 MB queries and trickling them cost warden only what arrived', async () => {
    global.gc?.();
    const before = process.memoryUsage();
    const sessions = await Promise.all(
      Array.from({ length: 8 }, async () => rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() })),
    );
    for (const s of sessions) {
      s.socket.write(header(Frontend.query, 512 * 1024 * 1024));
      s.socket.write(Buffer.alloc(100_000, 0x20)); // 100 kB of the declared 512 MB
    }
    await new Promise((r) => setTimeout(r, 500));
    const during = process.memoryUsage();
    const grown = during.arrayBuffers - before.arrayBuffers;
    // 8 × 512 MB would be 4 GB if reserved up front; the bytes that arrived are 800 kB.
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    for (const s of sessions) s.socket.destroy();
    // warden keeps serving
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await c.end();
  });
});
