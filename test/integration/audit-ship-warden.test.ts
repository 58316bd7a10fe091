// Two whole warden instances, configured by YAML (transcripts.ship with the URL from ${env:…}),
// each with its own data directory, shipping to one PostgreSQL store (a fresh database for this
// file). Real node-postgres sessions through each; instance A's auditors' API then lists, replays and
// verifies instance B's session from the shared store; /healthz and /metrics report the lag; closing
// an instance ships its seal.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresTranscriptStore } from '../../src/audit/store-postgres.js';
import { verifyStore } from '../../src/audit/store-postgres-verify.js';
import { testPostgres } from '../helpers/pg-env.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';
import { eventually } from '../unit/approvals-support.js';

const DATABASE = `warden_shipw_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const ENV_URL = 'WARDEN_TEST_SHIP_URL';

function url(database: string): string {
  const p = testPostgres();
  return `postgres://postgres:${encodeURIComponent(p.superuserPassword)}@${p.host}:${p.port}/${database}`;
}

async function sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = [], database = DATABASE): Promise<T[]> {
  const c = new pg.Client({ connectionString: url(database) });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

function yaml(instanceId: string): string {
  return `
transcripts:
  instance_id: ${instanceId}
  capture: first
  auditors:
    - { name: auditors, match: { issuer: dev, roles: [Warden.Auditor] } }
  ship:
    url: "\${env:${ENV_URL}}"
    batch: 50
    interval: 50ms
    timeout: 2s
`;
}

let a: TestWarden;
let b: TestWarden;

beforeAll(async () => {
  await sql(`CREATE DATABASE ${DATABASE}`, [], 'postgres');
  process.env[ENV_URL] = url(DATABASE);
  a = await startTestWarden({ yaml: yaml('warden-a') });
  b = await startTestWarden({ yaml: yaml('warden-b') });
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await sql(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`, [], 'postgres');
});

async function session(w: TestWarden, text: string): Promise<void> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  await c.connect();
  await c.query(text);
  await c.end();
}

async function get(w: TestWarden, path: string, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${w.warden.adminUrl}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, body: await res.json() };
}

describe('two wardens, one transcript store', () => {
  it('an auditor on A lists, replays and verifies B\'s session; health and metrics report the lag', async () => {
    expect(a.config.transcripts?.ship).toMatchObject({ url: url(DATABASE), schema: 'warden', batch: 50, intervalMs: 50, timeout: 2000 });
    await session(a, 'SELECT full_name FROM customers WHERE id = 1');
    await session(b, 'SELECT count(*) AS n FROM orders');
    const auditor = await a.token({ subject: 'auditor-1', roles: ['Warden.Auditor'] });

    // Both sessions ended (the session-end follows the client's close) and reached the store.
    const sessions = await eventually(async () => {
      const list = await get(a, '/sessions', auditor);
      const ended = (list.body.sessions as Array<{ instance: string; endedAt?: string }>).filter((s) => s.endedAt !== undefined);
      return ended.length === 2 ? (list.body.sessions as Array<{ instance: string; sessionId: string; target: string }>) : undefined;
    }, 15_000, 'both sessions in the shared store');
    expect(sessions.map((s) => s.instance).sort()).toEqual(['warden-a', 'warden-b']);
    const local = await get(a, '/sessions?source=local', auditor);
    expect((local.body.sessions as Array<{ instance: string }>).map((s) => s.instance)).toEqual(['warden-a']);

    const fromB = sessions.find((s) => s.instance === 'warden-b') as { sessionId: string };
    const replay = await get(a, `/sessions/${fromB.sessionId}`, auditor);
    expect(replay.status).toBe(200);
    expect(replay.body.session).toMatchObject({ instance: 'warden-b', target: 'shop', statements: 1 });
    expect(replay.body.entries.find((e: { kind: string }) => e.kind === 'statement').data.text).toBe('SELECT count(*) AS n FROM orders');
    expect((await get(a, `/sessions/${fromB.sessionId}?source=local`, auditor)).status).toBe(404);

    const review = await get(a, '/review?principal=agent&since=1h', auditor);
    expect(review.body.sessions.count).toBe(2);

    const verified = await get(a, '/transcripts/verify', auditor);
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ ok: true, path: 'the shared transcript store (schema warden)', keysFromStore: true });
    expect(verified.body.instances.map((i: { instance: string }) => i.instance)).toEqual(['warden-a', 'warden-b']);

    await eventually(async () => (await get(a, '/healthz')).body.transcript_shipping?.lag_records === 0, 10_000, 'A caught up');
    const health = await get(a, '/healthz');
    expect(health.body).toMatchObject({ status: 'ok', transcript_shipping: { state: 'caught-up', lag_records: 0, lag_seconds: 0 } });
    const detail = await get(a, '/transcripts/health', auditor);
    expect(detail.body).toMatchObject({ healthy: true, instance: 'warden-a', shipping: { state: 'caught-up', instance: 'warden-a', failures: 0 } });
    expect(detail.body.shipping.shippedSeq).toBe(detail.body.seq);
    expect(JSON.stringify(detail.body)).not.toContain(testPostgres().superuserPassword);
    const metrics = await (await fetch(`${a.warden.adminUrl}/metrics`)).text();
    expect(metrics).toContain('warden_transcript_ship_lag_records 0');
    expect(metrics).toMatch(/warden_transcript_shipped_records_total [1-9]\d*/);
  });

  it('closing an instance ships its seal; the store verifies', async () => {
    await b.warden.close(500);
    const [last] = await sql<{ kind: string }>(`SELECT kind FROM warden.transcript_records WHERE instance = 'warden-b' ORDER BY seq DESC LIMIT 1`);
    expect(last?.kind).toBe('seal');
    const store = new PostgresTranscriptStore({ url: url(DATABASE), schema: 'warden', timeout: 2000 });
    try {
      const report = await verifyStore(store, { instance: 'warden-b' });
      expect(report.findings).toEqual([]);
      expect(report.segments.map((s) => s.status)).toEqual(['intact']);
    } finally {
      await store.close();
    }
  });
});
