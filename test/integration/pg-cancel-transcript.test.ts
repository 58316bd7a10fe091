// A CancelRequest comes on a connection of its own, so nothing of it is in the session's bytes:
// warden records it as a `cancel` event of the session it cancels, between the statement it
// stopped and that statement's result (57014), in line and on the recording thread alike.
import net from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeCancelRequest } from '../../protocols/postgres/startup-message.js';
import { readStore } from '../../src/audit/reader.js';
import { recordingWarden } from '../helpers/recording-thread.js';
import type { TestWarden } from '../helpers/warden.js';
import { verifyStore } from '../unit/audit-support.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Keyed = pg.Client & { processID: number; secretKey: number };

async function client(w: TestWarden): Promise<Keyed> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  c.on('error', () => undefined);
  await c.connect();
  return c as Keyed;
}

/** Sends a CancelRequest on a new plaintext connection, as libpq does, and waits for warden to close it. */
function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(encodeCancelRequest(processId, secretKey)));
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}

describe('a CancelRequest in the transcript', () => {
  for (const thread of [false, true]) {
    it(`is a cancel event between the statement it stopped and its result (${thread ? 'recording thread' : 'in line'})`, async () => {
      const w = await recordingWarden(thread, cleanups);
      const c = await client(w);
      const outcome = c.query("SELECT pg_sleep(30) AS slept").then(
        () => undefined,
        (e: pg.DatabaseError) => e,
      );
      await new Promise((r) => setTimeout(r, 300));
      await sendCancel(w.port, c.processID, c.secretKey);
      expect((await outcome)?.code).toBe('57014');
      expect((await c.query('SELECT 1 AS after')).rows).toEqual([{ after: 1 }]);
      await c.end();
      await w.stop();

      const kinds: string[] = [];
      const events: Record<string, unknown>[] = [];
      for await (const { record } of readStore(join(w.dataDir, 'transcripts'))) {
        if (record.sid === undefined) continue;
        const d = record.d as Record<string, unknown>;
        if (record.k === 'event') events.push(d);
        kinds.push(record.k === 'statement' ? `statement ${String(d.text)}` : record.k === 'result' ? `result ${String((d.error as { code?: string } | undefined)?.code ?? d.tag)}` : record.k);
      }
      expect(events).toEqual([{ kind: 'cancel', message: 'CancelRequest' }]);
      // (The last statement's result joins its record or follows it, as the writes fall.)
      expect(kinds.filter((k) => k !== 'result SELECT 1')).toEqual(['session-start', 'statement SELECT pg_sleep(30) AS slept', 'event', 'result 57014', 'statement SELECT 1 AS after', 'session-end']);
      const report = await verifyStore(w.dataDir);
      expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    });
  }
});
