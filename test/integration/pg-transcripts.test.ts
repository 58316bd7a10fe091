// Transcripts recorded by the relay: what real clients did arrives in the store, in order,
// with parameters, results and errors, and the store verifies.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { readStore } from '../../src/audit/reader.js';
import { verify } from '../../src/audit/verify.js';
import { loadVerifyKey, publicKeyFileFor } from '../../src/audit/keys.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import type { TranscriptRecord } from '../../src/audit/frame.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
let records: TranscriptRecord[] = [];
let token = '';

beforeAll(async () => {
  w = await startTestWarden({
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', instanceId: 'test-instance' };
    },
  });
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: (token = await w.token()), database: 'shop', ssl: { ca: w.ca }, application_name: 'transcript-test' });
  await c.connect();
  await c.query('SELECT id, full_name FROM customers WHERE id <= 2 ORDER BY id; SELECT 42 AS answer');
  await c.query({ text: 'SELECT email FROM customers WHERE id = $1', values: [3] });
  await c.query('SELECT 1/0').catch(() => undefined);
  await c.query('BEGIN');
  await c.query("UPDATE customers SET notes = 'n' WHERE id = $1", [4]);
  await c.query('ROLLBACK');
  await c.end();
  await w.warden.close(500);
  for await (const r of readStore(join(w.dataDir, 'transcripts'))) records.push(r.record);
});

afterAll(async () => {
  await w?.stop();
});

const ofKind = (k: string): TranscriptRecord<Record<string, any>>[] => records.filter((r) => r.k === k) as TranscriptRecord<Record<string, any>>[];

describe('transcripts through the PostgreSQL relay', () => {
  it('records the session start with the principal and client, never the token', () => {
    const [start] = ofKind('session-start');
    expect(start?.d).toMatchObject({ protocol: 'postgres', target: 'shop', principal: { name: 'agent', subject: 'test-agent-app', issuerName: 'dev' } });
    expect(start?.d.client).toMatchObject({ application: 'transcript-test', user: 'agent', tls: { version: 'TLSv1.3' } });
    expect(token.length).toBeGreaterThan(100);
    expect(JSON.stringify(records)).not.toContain(token.split('.')[2]);
  });

  it('records statements with their parameters, and their results with rows as sent', () => {
    const statements = ofKind('statement');
    const texts = statements.map((s) => s.d.text);
    expect(texts).toContain('SELECT id, full_name FROM customers WHERE id <= 2 ORDER BY id; SELECT 42 AS answer');
    const byParam = statements.find((s) => s.d.text === 'SELECT email FROM customers WHERE id = $1');
    expect(byParam?.d.params).toEqual([{ type: 'unknown', value: '3' }].map((p) => ({ ...p, type: expect.any(String) })));
    expect(byParam?.d.cls.relations).toContain('customers');

    const multi = statements.find((s) => s.d.text.startsWith('SELECT id, full_name'));
    const results = ofKind('result').filter((r) => r.d.st === multi?.d.st);
    expect(results).toHaveLength(2);
    expect(results[0]?.d).toMatchObject({ rows: 2, tag: 'SELECT 2', capture: { mode: 'all', rows: [['1', 'Alice Testperson'], ['2', 'Bob Example']] } });
    expect(results[1]?.d).toMatchObject({ rows: 1, set: 2, capture: { rows: [['42']] } });

    const emailResult = ofKind('result').find((r) => r.d.st === byParam?.d.st);
    expect(emailResult?.d.capture.rows).toEqual([['carol.sample3@example.com']]);
  });

  it('records errors against their statement', () => {
    const div = ofKind('statement').find((s) => s.d.text === 'SELECT 1/0');
    const res = ofKind('result').find((r) => r.d.st === div?.d.st);
    expect(res?.d.error).toEqual({ code: '22012', message: 'division by zero' });
  });

  it('ends the session and the store verifies', async () => {
    expect(ofKind('session-end')).toHaveLength(1);
    const keyFile = defaultTranscripts(w.dataDir).keyFile;
    const report = await verify(join(w.dataDir, 'transcripts'), { publicKey: await loadVerifyKey(publicKeyFileFor(keyFile)) });
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

describe('transcripts over the admin API', () => {
  it('lists, replays, reviews and verifies for auditors only', async () => {
    const a = await startTestWarden({
      yaml: `
transcripts:
  capture: first
  auditors:
    - { name: auditors, match: { issuer: dev, roles: [Warden.Auditor] } }
`,
    });
    try {
      const c = new pg.Client({ host: a.host, port: a.port, user: 'agent', password: await a.token(), database: 'shop', ssl: { ca: a.ca } });
      await c.connect();
      await c.query('SELECT full_name FROM customers WHERE id = 1');
      await c.end();
      await new Promise((r) => setTimeout(r, 200)); // the session-end record follows the close
      const auditor = await a.token({ subject: 'auditor-1', roles: ['Warden.Auditor'] });
      const get = async (path: string, token = auditor) => {
        const res = await fetch(`${a.warden.adminUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
        return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? ((await res.json()) as any) : await res.text() };
      };
      const list = await get('/sessions?principal=agent&since=1h');
      expect(list.body).toMatchObject({ sessions: expect.any(Array) });
      expect(list.status).toBe(200);
      expect(list.body.sessions).toHaveLength(1);
      const id = list.body.sessions[0].sessionId as string;
      const replay = await get(`/sessions/${id}`);
      expect(JSON.stringify(replay.body)).toContain('Alice Testperson');
      const review = await get('/review?principal=agent&since=1h');
      expect(review.status).toBe(200);
      expect(JSON.stringify(review.body)).toContain('customers');
      const html = await get('/review?principal=agent&since=1h&format=html');
      expect(html.body).toContain('<h1>Access review: agent</h1>');
      expect((await get('/transcripts/verify')).status).toBe(200);
      expect((await get('/sessions', await a.token())).status).toBe(403); // an agent is not an auditor
      expect((await get('/sessions', 'garbage')).status).toBe(401);
      // Bad input is a 400 naming the problem, never a 500 or a silently empty answer.
      expect(await get('/sessions/%E0%A4%A')).toEqual({ status: 400, body: { error: 'invalid session id' } });
      expect(await get('/sessions?since=99999999999d')).toEqual({ status: 400, body: { error: "since reaches further back than any date ('99999999999d')" } });
      expect(await get('/sessions?since=2026-02-30')).toEqual({ status: 400, body: { error: "since names a day that does not exist ('2026-02-30')" } });
      expect(await get('/sessions?since=now&until=1h')).toEqual({ status: 400, body: { error: 'since is after until' } });
      expect(await get('/review?principal=agent&since=1h&until=2h')).toEqual({ status: 400, body: { error: 'since is after until' } });
      expect(await get('/review?principal=agent&format=xml')).toEqual({ status: 400, body: { error: 'format must be json or html' } });
    } finally {
      await a.stop();
    }
  });
});
