// A connection reset (the RESETCONNECTION bit a pooled driver sets, tedious's reset()) drops the
// connection's prepared handles in SQL Server. warden forgets them too: an sp_execute of a handle
// prepared before the reset is recorded and judged as a handle warden did not see prepared, not
// as the statement it used to stand for.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Request } from 'tedious';
import { readStore } from '../../src/audit/reader.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { closeTedious, connectTedious, startTdsHarness, tediousConfig, TYPES, type TdsHarness } from '../helpers/tds.js';

let h: TdsHarness;
const TEXT = 'SELECT id FROM customers WHERE id = @n';

function run(send: (cb: (err?: Error | null) => void) => void): Promise<Error | undefined> {
  return new Promise((resolve) => send((err) => resolve(err ?? undefined)));
}

beforeAll(async () => {
  h = await startTdsHarness({
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'none', instanceId: 'tds-reset' };
    },
  });
});

afterAll(async () => {
  await h?.stop();
});

describe('a TDS connection reset', () => {
  it('makes warden forget the prepared handles the reset dropped', async () => {
    const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
    const request = new Request(TEXT, () => undefined);
    request.addParameter('n', TYPES.Int);
    try {
      await new Promise<void>((resolve, reject) => {
        request.once('prepared', () => resolve());
        request.once('error', reject);
        c.prepare(request);
      });
      const exec = (): Promise<Error | undefined> =>
        run((cb) => {
          (request as unknown as { callback: (err?: Error | null) => void }).callback = cb;
          c.execute(request, { n: 1 });
        });
      expect(await exec()).toBeUndefined();
      expect(await run((cb) => c.reset(cb))).toBeUndefined();
      // The server no longer knows the handle: the execute fails, as it would without warden.
      const failed = await exec();
      expect(failed?.message).toMatch(/prepared|handle/i);
    } finally {
      await closeTedious(c);
    }
    await h.tw.warden.close(500);
    const statements: { text: string; name?: string; cls?: { ok?: boolean } }[] = [];
    for await (const r of readStore(join(h.tw.dataDir, 'transcripts'))) {
      if (r.record.k === 'statement') statements.push(r.record.d as (typeof statements)[number]);
    }
    const executes = statements.filter((s) => s.name === 'sp_execute');
    expect(executes).toHaveLength(2);
    // Before the reset the handle stands for the prepared text; after it, for nothing warden saw.
    expect(executes[0]!.text).toBe(TEXT);
    expect(executes[1]!.text).toBe('sp_execute');
  });
});
