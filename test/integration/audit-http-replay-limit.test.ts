// GET /sessions/:id runs inside warden, next to the agents' sessions: a replay is built in memory,
// so one too large for that (a session of hundreds of thousands of records) is refused with 413
// and pointed at the CLI, instead of growing the proxy by gigabytes or failing with a 500.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer, httpBase } from '../../src/admin/server.js';
import { Metrics } from '../../src/admin/metrics.js';
import { transcriptsHttp } from '../../src/audit/http.js';
import { silentLogger } from '../../src/log.js';
import type { VerifiedIdentity } from '../../src/identity/types.js';
import { openStore, recordSession, tempDataDir, transcriptsDir } from '../unit/audit-support.js';

let data: { dir: string; cleanup: () => void };
let admin: AdminServer;
let base: string;
const auditor: VerifiedIdentity = { issuerName: 'dev', issuer: 'https://dev.example/', subject: 'auditor', subjectClaim: 'azp', roles: ['Auditor'], groups: [], groupsOverage: false, audience: 'api://warden' };

beforeAll(async () => {
  data = tempDataDir();
  const store = await openStore(data.dir);
  await (await recordSession(store, 'sess-small-1', 3)).sessionEnd('client closed');
  await (await recordSession(store, 'sess-large-1', 60)).sessionEnd('client closed'); // 122 records
  await store.close();
  admin = new AdminServer({ metrics: new Metrics(), logger: silentLogger, health: () => ({}) });
  admin.use(
    transcriptsHttp({
      dir: transcriptsDir(data.dir),
      publicKeyFile: '',
      auditors: [{ name: 'auditors', match: { roles: ['Auditor'] } }],
      verifier: { verify: async () => auditor },
      principals: [],
      targets: [],
      health: () => undefined,
      logger: silentLogger,
      maxReplayRecords: 100,
    }),
  );
  base = httpBase(await admin.listen({ host: '127.0.0.1', port: 0 }));
});
afterAll(async () => {
  await admin?.close();
  data?.cleanup();
});

const get = async (path: string): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${base}${path}`, { headers: { authorization: 'Bearer x' } });
  return { status: res.status, body: await res.json() };
};

describe('GET /sessions/:id', () => {
  it('replays a session within the limit', async () => {
    const r = await get('/sessions/sess-small-1');
    expect(r.status).toBe(200);
    expect(r.body.entries.length).toBeGreaterThan(5);
  });

  it('refuses a session over the limit with 413, naming the CLI', async () => {
    expect(await get('/sessions/sess-large-1')).toEqual({
      status: 413,
      body: { error: "session sess-large-1 has more than 100 records, too many to replay inside warden; use warden replay sess-large-1 --format json on the transcript files" },
    });
  });
});
