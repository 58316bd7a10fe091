// tedious's cancel() of a request it has not sent whole ends the request with the IGNORE bit and
// reads the server's answer to it as the request's response. Neither warden (which judges every
// request before it goes on, and so answers an abandoned one itself) nor the SQL Server stand-in
// may leave that answer out: the driver would wait for it forever.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Request, type Connection } from 'tedious';
import { closeTedious, connectTedious, query, startTdsHarness, STANDIN_LOGIN, tediousConfig, type TdsHarness } from '../helpers/tds.js';

let h: TdsHarness;

beforeAll(async () => {
  h = await startTdsHarness();
});

afterAll(async () => {
  await h?.stop();
});

/** A request cancelled in the same turn it was started (its packets are not all written yet). */
function cancelledAtOnce(c: Connection, sql: string): Promise<{ code: string | undefined; message: string } | undefined> {
  return new Promise((resolve) => {
    const req = new Request(sql, (err) => resolve(err ? { code: (err as { code?: string }).code, message: err.message } : undefined));
    c.execSql(req);
    c.cancel();
  });
}

describe('a request the client abandons before sending it whole (IGNORE)', () => {
  for (const via of ['warden', 'the stand-in directly'] as const) {
    it(`is answered, and the session goes on (${via})`, async () => {
      const auth = via === 'warden' ? { password: await h.tw.token() } : { user: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password };
      // A request of several packets, so the cancel comes before its last one.
      const c = await connectTedious(tediousConfig({ port: via === 'warden' ? h.port : h.standin.port, encrypt: true, auth, packetSize: 512 }));
      try {
        const long = `SELECT COUNT(*) AS n FROM customers WHERE full_name <> '${'x'.repeat(20_000)}'`;
        expect(await cancelledAtOnce(c, long)).toEqual({ code: 'ECANCEL', message: 'Canceled.' });
        const after = await query(c, 'SELECT 7 AS seven');
        expect(after.sets[0]!.rows).toEqual([[7]]);
      } finally {
        await closeTedious(c);
      }
    }, 30_000);
  }
});
