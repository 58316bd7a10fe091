// Two whole warden instances, configured by YAML (transcripts.ship with the URL from ${env:…}),
// each with its own data directory, shipping to one PostgreSQL store (a fresh database for this
// file); A records on its recording thread, B as wire records. Real node-postgres sessions through
// each; instance A's auditors' API then lists, replays and verifies instance B's session from the
// shared store (decoding B's wire records); /healthz and /metrics report the lag; closing
// an instance ships its seal.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresTranscriptStore } from '../../src/audit/store-postgres.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
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

/** A records sessions no rule touches on its recording thread (a chain of its own, shipped too); B as wire records. */
function yaml(instanceId: string, wire: boolean): string {
  return `
transcripts:
  instance_id: ${instanceId}
  capture: first
  wire: ${wire}
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
  a = await startTestWarden({ yaml: yaml('warden-a', false) });
  b = await startTestWarden({ yaml: yaml('warden-b', true) });
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
    // Sessions no rule touches: A records them on its recording thread (chain `<id>.rec`), B as
    // wire records in its own chain, which A's readers decode from the store.
    expect(sessions.map((s) => s.instance).sort()).toEqual(['warden-a.rec', 'warden-b']);
    const local = await get(a, '/sessions?source=local', auditor);
    expect((local.body.sessions as Array<{ instance: string }>).map((s) => s.instance)).toEqual(['warden-a.rec']);

    const fromB = sessions.find((s) => s.instance === 'warden-b') as { sessionId: string };
    const replay = await get(a, `/sessions/${fromB.sessionId}`, auditor);
    expect(replay.status).toBe(200);
    expect(replay.body.session).toMatchObject({ instance: 'warden-b', target: 'shop', statements: 1, rows: 1 });
    expect(replay.body.entries.find((e: { kind: string }) => e.kind === 'statement').data.text).toBe('SELECT count(*) AS n FROM orders');
    expect((await get(a, `/sessions/${fromB.sessionId}?source=local`, auditor)).status).toBe(404);

    const review = await get(a, '/review?principal=agent&since=1h', auditor);
    expect(review.body.sessions.count).toBe(2);

    const verified = await get(a, '/transcripts/verify', auditor);
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ ok: true, path: 'the shared transcript store (schema warden)', keysFromStore: true });
    expect(verified.body.instances.map((i: { instance: string }) => i.instance)).toEqual(['warden-a', 'warden-a.rec', 'warden-b']);

    // A checkpoint written meanwhile puts A one record behind for a moment: wait for a moment
    // when health and detail both say caught up.
    const { health, detail } = await eventually(
      async () => {
        const health = await get(a, '/healthz');
        const detail = await get(a, '/transcripts/health', auditor);
        const thread = detail.body.recordingThread;
        const caughtUp =
          health.body.transcript_shipping?.lag_records === 0 && detail.body.shipping?.shippedSeq === detail.body.seq && thread?.shipping?.shippedSeq === thread?.seq;
        return caughtUp ? { health, detail } : undefined;
      },
      10_000,
      'A caught up',
    );
    expect(health.body).toMatchObject({ status: 'ok', transcript_shipping: { state: 'caught-up', lag_records: 0, lag_seconds: 0 } });
    expect(detail.body).toMatchObject({
      healthy: true,
      instance: 'warden-a',
      shipping: { state: 'caught-up', instance: 'warden-a', failures: 0 },
      recordingThread: { healthy: true, instance: 'warden-a.rec', pendingBytes: 0, shipping: { state: 'caught-up', instance: 'warden-a.rec', failures: 0 } },
    });
    expect(health.body.recording_thread).toMatchObject({ healthy: true, pending_bytes: 0, lag_ms: 0 });
    expect(['background', 'raised', 'normal']).toContain(health.body.recording_thread.priority);
    expect(detail.body.shipping.shippedSeq).toBe(detail.body.seq);
    expect(JSON.stringify(detail.body)).not.toContain(testPostgres().superuserPassword);
    const metrics = await eventually(async () => {
      const text = await (await fetch(`${a.warden.adminUrl}/metrics`)).text();
      return text.includes('warden_transcript_ship_lag_records 0') ? text : undefined;
    }, 10_000, 'metrics with no lag');
    expect(metrics).toMatch(/warden_transcript_shipped_records_total [1-9]\d*/);
  });

  it('closing an instance ships its seal; the store verifies', async () => {
    await b.warden.close(500);
    const store = new PostgresTranscriptStore({ url: url(DATABASE), schema: 'warden', timeout: 2000 });
    try {
      // B has one chain (its wire records are in it; no recording thread started).
      for (const instance of ['warden-b']) {
        const [last] = await sql<{ kind: string }>(`SELECT kind FROM warden.transcript_records WHERE instance = $1 ORDER BY seq DESC LIMIT 1`, [instance]);
        expect(last?.kind).toBe('seal');
        const report = await verifyStore(store, { instance });
        expect(report.findings).toEqual([]);
        expect(report.segments.map((s) => s.status)).toEqual(['intact']);
      }
    } finally {
      await store.close();
    }
  });
});

describe('the transcripts.ship section', () => {
  const base = [
    'listen: { postgres: { host: 127.0.0.1, port: 6432 } }',
    'plaintext_tokens: loopback',
    'identity: { dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9187/dev-issuer" } }',
    'targets: { shop: { protocol: postgres, host: 127.0.0.1, database: shop, user: u, password: p } }',
    'principals: [{ name: agent, match: { issuer: dev }, targets: [shop] }]',
    'transcripts:',
    '  ship:',
  ].join('\n');
  const parse = (ship: string, env: NodeJS.ProcessEnv = {}) => parseConfig(`${base}\n${ship}`, { source: 'warden.yaml', env, baseDir: '/etc/warden' });
  const problems = (ship: string, env: NodeJS.ProcessEnv = {}): string[] => {
    try {
      parse(ship, env);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.reason}`);
      throw err;
    }
    throw new Error('expected the configuration to be rejected');
  };

  it('reads a URL from the environment, or the parts with TLS, with defaults', () => {
    const fromEnv = parse('    url: "${env:STORE_URL}"', { STORE_URL: 'postgres://w:s3cret@db:5432/audit' });
    expect(fromEnv.transcripts?.ship).toEqual({ url: 'postgres://w:s3cret@db:5432/audit', schema: 'warden', timeout: 5000, batch: 500, intervalMs: 1000 });
    const parts = parse('    { host: db.internal, database: audit, user: w, password: "${env:PW}", tls: { mode: require }, schema: audit_x, batch: 50, interval: 200ms, timeout: 2s }', { PW: 's3cret' });
    expect(parts.transcripts?.ship).toEqual({ host: 'db.internal', port: 5432, database: 'audit', user: 'w', password: 's3cret', tls: { mode: 'require' }, schema: 'audit_x', timeout: 2000, batch: 50, intervalMs: 200 });
    expect(parse('    url: postgres://x@db/audit').transcripts?.ship?.url).toBe('postgres://x@db/audit');
  });

  it('refuses what it cannot use, never showing the password', () => {
    expect(problems('    { url: "postgres://db/a", host: db }')).toEqual(['transcripts.ship.host: cannot be combined with url (write the connection as a URL or as parts, not both)']);
    expect(problems('    { url: "https://db/a" }')).toEqual(['transcripts.ship.url: must be a postgres:// URL']);
    expect(problems('    { url: "postgres://db/a", schema: Audit, batch: 0, interval: 1ms }')).toEqual([
      'transcripts.ship.schema: must be a lower-case SQL name (letters, digits, "_"; at most 48), got "Audit"',
      'transcripts.ship.batch: must be an integer between 1 and 10000, got 0',
      'transcripts.ship.interval: must be between 10ms and 10m, got "1ms"',
    ]);
    expect(problems('    { host: db, database: a, user: w }')).toEqual([expect.stringMatching(/^transcripts\.ship\.password: is required/)]);
    expect(problems('    { url: "${env:NOPE}" }')).toEqual(['transcripts.ship.url: environment variable NOPE is not set']);
    const hidden = problems('    { url: "${env:U}" }', { U: 'mysql://w:s3cret@db/a' });
    expect(hidden).toEqual(['transcripts.ship.url: must be a postgres:// URL']);
    expect(problems('    { host: db, database: a, user: w, password: s3cret, tls: { mode: verify-full } }').join('\n')).not.toContain('s3cret');
  });
});
