// pgJDBC sends BEGIN and the first query of a transaction in one extended batch (one Sync), and
// with setFetchSize each further fetch is an Execute of the suspended portal. The transcript must
// number result sets per statement: the query's only result is its set 1 (it was recorded as
// "set 2", counting BEGIN's result in the same batch).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const skip = missingClient('java') || missingClient('pgjdbc');

const SOURCE = `
import java.sql.*; import java.util.*;
public class FetchInTx {
  public static void main(String[] a) throws Exception {
    Properties p = new Properties(); p.setProperty("user", "agent"); p.setProperty("password", a[1]); p.setProperty("sslmode", "require");
    Connection c = DriverManager.getConnection(a[0], p);
    c.setAutoCommit(false);
    PreparedStatement ps = c.prepareStatement("SELECT g FROM generate_series(1, 25) g");
    ps.setFetchSize(10);
    ResultSet rs = ps.executeQuery(); int n = 0; while (rs.next()) n++;
    c.commit(); c.close();
    System.out.println("rows " + n);
  }
}`;

let w: TestWarden;

beforeAll(async () => {
  if (skip) return;
  w = await startTestWarden({ yaml: 'transcripts:\n  capture: digest\n  fsync: each\n' });
});

afterAll(async () => {
  await w?.stop();
});

describe.skipIf(skip)('pgJDBC fetch in a transaction', () => {
  it('each statement numbers its own result sets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-jdbc-sets-'));
    const file = join(dir, 'FetchInTx.java');
    writeFileSync(file, SOURCE);
    const url = `jdbc:postgresql://${w.host}:${w.port}/shop`;
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run(findClient('java') as string, ['-XX:TieredStopAtLevel=1', '-cp', findClient('pgjdbc') as string, file, url, await w.token()], { timeoutMs: 60_000 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(r.stdout.trim()).toBe('rows 25');
    const tdir = join(w.dataDir, 'transcripts');
    const records = readdirSync(tdir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => readFileSync(join(tdir, f), 'utf8').split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as { k: string; d: { st?: number; set?: number; rows?: number; result?: { set?: number; rows?: number } } });
    type Result = { set?: number; rows?: number };
    const results: Result[] = records.flatMap((x): Result[] => (x.k === 'result' ? [x.d] : x.k === 'statement' && x.d.result ? [x.d.result] : []));
    expect(results.length).toBeGreaterThanOrEqual(4); // BEGIN, 3 fetches (10 + 10 + 5), COMMIT
    expect(results.filter((x) => x.set !== undefined)).toEqual([]);
    expect(results.map((x) => x.rows).filter((n) => n && n > 0)).toEqual([10, 10, 5]);
  });
});
