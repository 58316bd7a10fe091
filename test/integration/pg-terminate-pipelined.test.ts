// A client may send its last statements and Terminate in one write (scripts that fire and quit).
// PostgreSQL runs them and sends their results before it closes; through warden the client must
// get the same, with the plain relay and with the statement flow (transcripts on).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeQuery, TERMINATE } from '../../protocols/postgres/frontend-messages.js';
import { rawLogin, type RawSession } from '../helpers/pg-raw.js';
import { TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const SQL = 'SELECT 1 AS one; SELECT 2 AS two';

/** Sends SQL and Terminate in one write; returns the types of the messages received before the close. */
async function queryAndTerminate(s: RawSession): Promise<string> {
  s.socket.write(Buffer.concat([encodeQuery(SQL), TERMINATE]));
  const msgs = await s.reader.untilClosed(5000);
  expect(s.reader.closed).toBe(true);
  return msgs.map((m) => String.fromCharCode(m[0] as number)).join('');
}

let plain: TestWarden;
let flow: TestWarden;
beforeAll(async () => {
  plain = await startTestWarden();
  flow = await startTestWarden({ yaml: 'transcripts: { enabled: true, capture: all }' });
});
afterAll(async () => {
  await plain?.stop();
  await flow?.stop();
});

describe('Query and Terminate in one write', () => {
  it('gets the results, as a direct connection does, then the close', async () => {
    const pg = testPostgres();
    const direct = await queryAndTerminate(await rawLogin({ host: pg.host, port: pg.port, user: TEST_ROLES.password.user, database: 'shop', password: TEST_ROLES.password.password }));
    expect(direct).toBe('TDCTDCZ');
    for (const w of [plain, flow]) {
      const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
      expect(await queryAndTerminate(s)).toBe(direct);
    }
  });
});
