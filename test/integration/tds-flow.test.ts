// The statement flow of TDS sessions: statement rules refuse statements with a SQL Server error
// the driver understands (229, the rule and reason) and the session goes on; a held statement
// waits for approval and, when nobody decides, ends in a 229 too (tds-approvals.test.ts covers
// holding in full); and the transcript records the
// session, each SQLBatch, each RPC with its decoded parameters, results with columns and rows,
// errors and verdicts — the same recorder as PostgreSQL sessions.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Request, type Connection } from 'tedious';
import { readStore } from '../../src/audit/reader.js';
import type { TranscriptRecord } from '../../src/audit/frame.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { closeTedious, connectTedious, query, startTdsHarness, tediousConfig, TYPES, type TdsHarness } from '../helpers/tds.js';

let h: TdsHarness;
let token = '';
const records: TranscriptRecord<Record<string, any>>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
const seen: Record<string, unknown> = {};

const RULES = `
rules:
  - name: no-delete
    match: { kinds: [delete, truncate] }
    action: deny
  - name: no-shell
    match: { dangerous_functions: true }
    action: deny
    message: warden does not let agents run shell commands
  - name: grants-need-approval
    match: { flags: [privilege_change] }
    action: hold
approvals:
  timeout: 1s
`;

function callProcedure(c: Connection): Promise<{ outputs: Record<string, unknown>; status: unknown }> {
  return new Promise((resolve, reject) => {
    const outputs: Record<string, unknown> = {};
    let status: unknown;
    const req = new Request('dbo.count_active', (err) => (err ? reject(err) : resolve({ outputs, status })));
    req.addParameter('min_rank', TYPES.SmallInt, 3);
    req.addOutputParameter('cnt', TYPES.Int);
    req.on('returnValue', (name: string, value: unknown) => {
      outputs[name] = value;
    });
    req.on('doneProc', (_rc: unknown, _more: unknown, returnStatus: unknown) => {
      status = returnStatus;
    });
    c.callProcedure(req);
  });
}

beforeAll(async () => {
  h = await startTdsHarness({
    yaml: RULES,
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', instanceId: 'tds-test' };
    },
  });
  token = await h.tw.token();
  const cfg = tediousConfig({ port: h.port, encrypt: true, auth: { password: token } });
  (cfg.options as { appName?: string }).appName = 'tds-flow-test';
  const c = await connectTedious(cfg);
  try {
    seen.two = await query(c, 'SELECT id, full_name FROM customers WHERE id <= 2 ORDER BY id; SELECT 42 AS answer');
    seen.rpc = await query(c, 'SELECT email FROM customers WHERE id = @id', [['id', TYPES.Int, 3]]);
    seen.missing = await query(c, 'SELECT * FROM no_such_table').catch((e: Error & { number?: number }) => ({ number: e.number, message: e.message }));
    seen.proc = await callProcedure(c);
    seen.deleted = await query(c, 'DELETE FROM customers WHERE id = 999').catch((e: Error & { number?: number; class?: number }) => ({ number: e.number, class: e.class, message: e.message }));
    seen.shell = await query(c, "EXEC master..xp_cmdshell 'whoami'").catch((e: Error & { number?: number }) => ({ number: e.number, message: e.message }));
    const infos: string[] = [];
    c.on('infoMessage', (m: { message: string }) => infos.push(m.message));
    seen.grant = await query(c, 'GRANT SELECT ON customers TO somebody').catch((e: Error & { number?: number }) => ({ number: e.number, message: e.message }));
    seen.grantInfos = infos.slice();
    seen.rpcDenied = await query(c, 'DELETE FROM customers WHERE id = @id', [['id', TYPES.Int, 998]]).catch((e: Error & { number?: number }) => ({ number: e.number, message: e.message }));
    seen.after = await query(c, 'SELECT COUNT(*) AS n FROM customers');
    await new Promise<void>((r, j) => c.beginTransaction((e) => (e ? j(e) : r())));
    await new Promise<void>((r, j) => c.rollbackTransaction((e) => (e ? j(e) : r())));
  } finally {
    await closeTedious(c);
  }
  await h.tw.warden.close(500);
  for await (const r of readStore(join(h.tw.dataDir, 'transcripts'))) records.push(r.record as TranscriptRecord<Record<string, any>>); // eslint-disable-line @typescript-eslint/no-explicit-any
});

afterAll(async () => {
  await h?.stop();
});

const ofKind = (k: string): TranscriptRecord<Record<string, any>>[] => records.filter((r) => r.k === k); // eslint-disable-line @typescript-eslint/no-explicit-any
const statement = (text: string): Record<string, any> | undefined => ofKind('statement').find((s) => s.d.text === text)?.d; // eslint-disable-line @typescript-eslint/no-explicit-any
const resultsOf = (st: number): Record<string, any>[] => ofKind('result').filter((r) => r.d.st === st).map((r) => r.d); // eslint-disable-line @typescript-eslint/no-explicit-any

describe('statement rules on TDS sessions', () => {
  it('refuses a denied statement with error 229 naming the rule, and the session goes on', () => {
    expect(seen.deleted).toMatchObject({ number: 229, class: 14 });
    expect((seen.deleted as { message: string }).message).toMatch(/statement refused by warden policy rule "no-delete": DELETE/);
    expect((seen.shell as { message: string }).message).toMatch(/rule "no-shell": warden does not let agents run shell commands/);
    expect((seen.rpcDenied as { number: number }).number).toBe(229);
    expect((seen.after as { sets: { rows: unknown[][] }[] }).sets[0]!.rows).toEqual([[20]]);
  });

  it('holds a statement that needs approval, saying so at once; nobody decides, so it is refused', () => {
    expect(seen.grantInfos).toEqual([expect.stringMatching(/^warden: statement held for approval \(request apr_\S+, rule "grants-need-approval"\)/)]);
    expect(seen.grant).toMatchObject({ number: 229, message: expect.stringMatching(/^statement was not approved in time \(request apr_\S+\)$/) });
  });

  it('counts verdicts', () => {
    const m = h.tw.warden.metrics.verdictsTotal;
    expect(m.get({ protocol: 'tds', verdict: 'deny' })).toBeGreaterThanOrEqual(3);
    expect(m.get({ protocol: 'tds', verdict: 'hold' })).toBe(1);
    expect(m.get({ protocol: 'tds', verdict: 'allow' })).toBeGreaterThan(3);
  });
});

describe('transcripts of TDS sessions', () => {
  it('records the session start with protocol tds, principal, TLS and application, never the token', () => {
    const [start] = ofKind('session-start');
    expect(start?.d).toMatchObject({ protocol: 'tds', target: 'shop', principal: { name: 'agent', subject: 'test-agent-app', issuerName: 'dev' } });
    expect(start?.d.client).toMatchObject({ application: 'tds-flow-test', user: 'agent', database: 'shop', tls: { version: 'TLSv1.2' } });
    expect(JSON.stringify(records)).not.toContain(token.split('.')[2]);
    expect(ofKind('session-end')).toHaveLength(1);
  });

  it('records a SQLBatch with its classification and each result set with columns and rows', () => {
    const st = statement('SELECT id, full_name FROM customers WHERE id <= 2 ORDER BY id; SELECT 42 AS answer');
    expect(st).toMatchObject({ via: 'batch', verdict: 'allow', cls: { class: 'read', relations: ['customers'] } });
    const [first, second] = resultsOf(st!.st);
    expect(first).toMatchObject({ rows: 2, columns: [{ name: 'id', type: 'int' }, { name: 'full_name', type: 'nvarchar(100)' }] });
    expect(first!.capture.rows).toEqual([(seen.two as { sets: { rows: unknown[][] }[] }).sets[0]!.rows[0]!.map(String), (seen.two as { sets: { rows: unknown[][] }[] }).sets[0]!.rows[1]!.map(String)]);
    expect(second).toMatchObject({ rows: 1, set: 2, columns: [{ name: 'answer' }], capture: { rows: [['42']] } });
  });

  it('records an RPC (sp_executesql) with its statement and decoded, typed parameters', () => {
    const st = statement('SELECT email FROM customers WHERE id = @id');
    expect(st).toMatchObject({ via: 'rpc', name: 'sp_executesql', params: [{ name: '@id', type: 'int', value: '3' }] });
    expect(resultsOf(st!.st)[0]).toMatchObject({ rows: 1, columns: [{ name: 'email' }] });
  });

  it('records a procedure called by name, with its output parameter', () => {
    const st = statement('EXEC dbo.count_active');
    expect(st).toMatchObject({ via: 'rpc', name: 'dbo.count_active', cls: { kinds: ['call'] } });
    expect(st!.params).toEqual([
      { name: '@min_rank', type: 'smallint', value: '3' },
      { name: '@cnt', type: 'int', value: null },
    ]);
    expect((seen.proc as { status: unknown }).status).toBe(7);
  });

  it('records errors from the target and warden\'s refusals with the verdict', () => {
    const missing = statement('SELECT * FROM no_such_table');
    expect(resultsOf(missing!.st)[0]!.error).toEqual({ code: String((seen.missing as { number: number }).number), message: (seen.missing as { message: string }).message });
    const denied = statement('DELETE FROM customers WHERE id = 999');
    expect(denied).toMatchObject({ verdict: 'deny', rule: 'no-delete', cls: { class: 'write' } });
    expect(resultsOf(denied!.st)[0]!.error.code).toBe('229');
    expect(statement('GRANT SELECT ON customers TO somebody')).toMatchObject({ verdict: 'hold', rule: 'grants-need-approval', approval: { requestId: expect.stringMatching(/^apr_/) } });
  });

  it('records TransMgr requests as transaction statements', () => {
    expect(statement('BEGIN TRANSACTION')).toMatchObject({ via: 'transmgr', cls: { kinds: ['transaction'] } });
    expect(statement('ROLLBACK TRANSACTION')).toMatchObject({ via: 'transmgr' });
  });
});
