// A result warden refuses while it arrives (a masking rule that cannot mask a binary column and
// says binary: fail) is an error to the client. PostgreSQL sends nothing more after an error until
// ReadyForQuery, and fails a transaction block; warden let the rest of the batch answer after its
// error and left the block open (ReadyForQuery 'T'), so a COMMIT committed what came after it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Backend } from '../../protocols/postgres/codes.js';
import { encodeBind, encodeDescribe, encodeExecute, encodeParse, encodeQuery, SYNC } from '../../protocols/postgres/frontend-messages.js';
import { direct } from '../helpers/pg-env.js';
import { describe as describeMessage, rawLogin, type RawSession } from '../helpers/pg-raw.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const GEO = `refused_geo_${process.pid}`;
const LOG = `refused_log_${process.pid}`;
let w: TestWarden;

beforeAll(async () => {
  await direct(`CREATE TABLE ${GEO} (id int, p point); INSERT INTO ${GEO} VALUES (1, point(1, 2)); CREATE TABLE ${LOG} (a int)`);
  w = await startTestWarden({ yaml: `masking:\n  rules:\n    - { name: geo, columns: [${GEO}.p], strategy: redact, binary: fail }\n` });
});
afterAll(async () => {
  await w?.stop();
  await direct(`DROP TABLE ${GEO}; DROP TABLE ${LOG}`);
});

/** Parse, Bind (result formats), Describe portal, Execute of one statement. */
function step(sql: string, resultFormats: number[] = []): Buffer[] {
  return [
    encodeParse({ name: '', sql, paramTypes: [] }),
    encodeBind({ portal: '', statement: '', paramFormats: [], params: [], resultFormats }),
    encodeDescribe({ kind: 'portal', name: '' }),
    encodeExecute({ portal: '', maxRows: 0 }),
  ];
}

async function send(s: RawSession, ...msgs: Buffer[]): Promise<string[]> {
  s.socket.write(Buffer.concat(msgs));
  const answer = await s.reader.until(Backend.readyForQuery);
  return answer.map((m) => (m[0] === Backend.readyForQuery ? `Z ${String.fromCharCode(m[5] ?? 0)}` : describeMessage(m)));
}

/** A raw session through warden for `body`, closed afterwards. */
async function inSession(body: (s: RawSession) => Promise<void>): Promise<void> {
  const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
  try {
    await body(s);
  } finally {
    s.socket.destroy();
  }
}

it('in a transaction block: nothing after the error, the block fails, and COMMIT rolls back what followed', () =>
  inSession(async (s) => {
    expect(await send(s, encodeQuery('BEGIN'))).toEqual(['C', 'Z T']);
    const batch = await send(s, ...step(`SELECT p FROM ${GEO}`, [1]), ...step(`INSERT INTO ${LOG} VALUES (1)`), SYNC);
    expect(batch.slice(0, 3)).toEqual(['1', '2', 'T']);
    expect(batch[3]).toMatch(/^E ERROR 42501 masking rule "geo": .*binary: fail$/);
    expect(batch.slice(4)).toEqual(['Z E']);
    expect((await send(s, encodeQuery(`SELECT count(*) FROM ${LOG}`))).map((m) => m.slice(0, 13))).toEqual(['E ERROR 25P02', 'Z E']);
    expect(await send(s, encodeQuery('COMMIT'))).toEqual(['C', 'Z I']);
    expect((await direct(`SELECT count(*)::int AS n FROM ${LOG}`)).rows[0].n).toBe(0);
    // The session goes on.
    expect(await send(s, encodeQuery('SELECT 1'))).toEqual(['T', 'D', 'C', 'Z I']);
  }));

it('a simple Query of several statements: nothing of those after the refused one reaches the client', () =>
  inSession(async (s) => {
    // Text format masks; a binary cursor's FETCH is what refuses here.
    await send(s, encodeQuery(`BEGIN; DECLARE g BINARY CURSOR FOR SELECT p FROM ${GEO}`));
    const answer = await send(s, encodeQuery(`FETCH ALL FROM g; SELECT 2`));
    expect(answer[answer.length - 1]).toBe('Z E');
    expect(answer.filter((m) => m.startsWith('E '))).toHaveLength(1);
    expect(answer).not.toContain('D');
    expect(await send(s, encodeQuery('ROLLBACK'))).toEqual(['C', 'Z I']);
  }));

it('a COPY later in the same Query sends none of its data after the refused result', () =>
  inSession(async (s) => {
    await send(s, encodeQuery(`BEGIN; DECLARE g BINARY CURSOR FOR SELECT p FROM ${GEO}`));
    // A COPY warden masks (its data comes in runs of CopyData) and one it does not.
    for (const copy of [`COPY (SELECT p FROM ${GEO}) TO STDOUT`, 'COPY (SELECT generate_series(1, 3)) TO STDOUT']) {
      const answer = await send(s, encodeQuery(`FETCH ALL FROM g; ${copy}`));
      // The error, then ReadyForQuery: no CopyOutResponse ('H'), CopyData ('d') or CopyDone ('c').
      expect(answer.map((m) => m.slice(0, 13))).toEqual(['E ERROR 42501', 'Z E']);
      expect(await send(s, encodeQuery(`ROLLBACK; BEGIN; DECLARE g BINARY CURSOR FOR SELECT p FROM ${GEO}`))).toEqual(['C', 'C', 'C', 'Z T']);
    }
    expect(await send(s, encodeQuery('ROLLBACK'))).toEqual(['C', 'Z I']);
    expect(await send(s, encodeQuery('SELECT 1'))).toEqual(['T', 'D', 'C', 'Z I']);
  }));
