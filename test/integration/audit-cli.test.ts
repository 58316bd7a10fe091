// A scripted scenario (several sessions with holds, approvals, denials, masked columns) read back
// through sessions list, replay and the access review — as library calls (asserting on the JSON
// shapes) and through the real `warden` CLI in a child process.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wardenCli, type CliResult } from '../helpers/warden-cli.js';
import { listSessions } from '../../src/audit/reader.js';
import { loadSession, renderReplayText, replayJson } from '../../src/audit/replay.js';
import { buildReview, renderReviewHtml, renderReviewText } from '../../src/audit/review.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { TranscriptStore } from '../../src/audit/recorder.js';
import { manualClock, openStore, PRINCIPAL, readLinesOf, recordScenario, SCENARIO, segmentFiles, tempDataDir, testConfig, transcriptsDir, writeLinesTo } from '../unit/audit-support.js';

let data: { dir: string; cleanup: () => void };
let dir: string;

beforeAll(async () => {
  data = tempDataDir();
  dir = transcriptsDir(data.dir);
  await recordScenario(data.dir);
});
afterAll(() => data.cleanup());

const cli = (args: string[]): Promise<CliResult> => wardenCli(args);

describe('sessions list', () => {
  it('lists every session with its facts', async () => {
    const all = await listSessions(dir);
    expect(all.map((s) => s.sessionId)).toEqual([SCENARIO.d, SCENARIO.a, SCENARIO.b, SCENARIO.c]);
    const a = all.find((s) => s.sessionId === SCENARIO.a);
    expect(a).toMatchObject({
      protocol: 'postgres',
      target: 'shop',
      principal: { name: 'reporting-agent', subject: 'app-1234' },
      client: { address: '10.1.2.3', tls: { version: 'TLSv1.3' }, application: 'agent-runner' },
      startedAt: '2026-01-10T10:00:00.000Z',
      endReason: 'client closed',
      statements: 4,
      verdicts: { allow: 0, mask: 1, hold: 2, deny: 1 },
      classes: { read: 1, write: 2, ddl: 1 },
      relations: ['public.customers', 'public.orders'],
      maskedColumns: ['card_number (card-last4)', 'email (email-partial)'],
      approved: 1,
      refused: 1,
      rows: 2,
    });
  });

  it('filters by principal, time, target, table and verdict', async () => {
    const ids = async (f: Parameters<typeof listSessions>[1]) => (await listSessions(dir, f)).map((s) => s.sessionId);
    expect(await ids({ principal: 'reporting-agent' })).toEqual([SCENARIO.d, SCENARIO.a, SCENARIO.b]);
    expect(await ids({ principal: 'app-9999' })).toEqual([SCENARIO.c]);
    expect(await ids({ principal: 'reporting-agent', since: new Date('2026-01-01T00:00:00Z') })).toEqual([SCENARIO.a, SCENARIO.b]);
    expect(await ids({ until: new Date('2026-01-10T12:00:00Z') })).toEqual([SCENARIO.d, SCENARIO.a]);
    expect(await ids({ target: 'sales' })).toEqual([SCENARIO.b]);
    expect(await ids({ table: 'customers' })).toEqual([SCENARIO.a]);
    expect(await ids({ table: 'public.products' })).toEqual([SCENARIO.c]);
    expect(await ids({ verdict: 'deny' })).toEqual([SCENARIO.a]);
    expect(await ids({ verdict: 'allow', principal: 'reporting-agent' })).toEqual([SCENARIO.d, SCENARIO.b]);
  });

  it('counts a session with no recorded end as active until its writer stopped, or as open while it may still be connected', async () => {
    const own = tempDataDir();
    try {
      const client = { address: '127.0.0.1', port: 50000, tls: null };
      const clock = manualClock('2026-03-01T09:00:00Z');
      const first = await TranscriptStore.open(testConfig(own.dir), { clock: clock.now });
      const idle = first.recorder(); // connected at 09:00, last statement at 09:01, never ends
      await idle.sessionStart({ sessionId: 'sess-idle', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client });
      clock.advance(60_000);
      await idle.statement({ text: 'SELECT 1', classification: { class: 'read', relations: [] }, verdict: 'allow' });
      clock.advance(60_000);
      const done = first.recorder(); // 09:02 to 09:03
      await done.sessionStart({ sessionId: 'sess-done', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client });
      clock.advance(60_000);
      await done.sessionEnd('client closed');
      const tdir = transcriptsDir(own.dir);
      const ids = async (since: string) => (await listSessions(tdir, { since: new Date(since) })).map((s) => s.sessionId);
      const states = async () => (await listSessions(tdir)).map((s) => [s.sessionId, s.open, s.endedBy]);

      // Its writer still runs (this process holds the instance's lock): sess-idle may still be
      // connected, in any later window.
      expect(await states()).toEqual([
        ['sess-idle', true, undefined],
        ['sess-done', false, undefined],
      ]);
      expect(await ids('2026-03-02T00:00:00Z')).toEqual(['sess-idle']);
      expect((await loadSession(tdir, 'sess-idle')).summary).toMatchObject({ open: true });
      const text = await cli(['sessions', 'list', '--data-dir', own.dir, '--since', '2026-03-02T00:00:00Z']);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/sess-idle .* open *$/m);
      expect(text.stdout).toContain('1 session(s)');

      // The writer stops (its lock goes): sess-idle ended by the writer's last record, 09:03.
      await first.close();
      const stopped = [
        ['sess-idle', false, '2026-03-01T09:03:00.000Z'],
        ['sess-done', false, undefined],
      ];
      expect(await states()).toEqual(stopped);
      expect(await ids('2026-03-02T00:00:00Z')).toEqual([]);
      // A lock left by a process that is gone (warden killed) says the same; another host's cannot tell.
      const lock = join(tdir, 'w1.lock');
      const gone = spawnSync(process.execPath, ['-e', '0']).pid as number;
      writeFileSync(lock, JSON.stringify({ pid: gone, host: hostname(), since: '2026-03-01T09:00:00.000Z' }));
      expect(await states()).toEqual(stopped);
      writeFileSync(lock, JSON.stringify({ pid: 1, host: 'another-host', since: '2026-03-01T09:00:00.000Z' }));
      expect((await states())[0]).toEqual(['sess-idle', true, undefined]);
      rmSync(lock);

      // The same instance started again days later: the first writer's run ended, whatever its lock says.
      clock.set('2026-03-05T12:00:00Z');
      const second = await TranscriptStore.open(testConfig(own.dir), { clock: clock.now });
      const later = second.recorder();
      await later.sessionStart({ sessionId: 'sess-later', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client });
      clock.advance(1000);
      await later.sessionEnd('client closed');
      expect((await states())[0]).toEqual(['sess-idle', false, '2026-03-01T09:03:00.000Z']);
      await second.close();
      const all = await listSessions(tdir);
      expect(all.map((s) => [s.sessionId, s.open, s.endedBy])).toEqual([
        ['sess-idle', false, '2026-03-01T09:03:00.000Z'],
        ['sess-done', false, undefined],
        ['sess-later', false, undefined],
      ]);
      expect(await ids('2026-03-02T00:00:00Z')).toEqual(['sess-later']);
      // Idle since 09:01, but its writer ran until 09:03: it may have been connected at 09:02:30.
      expect(await ids('2026-03-01T09:02:30Z')).toEqual(['sess-idle', 'sess-done', 'sess-later']);
      expect(await ids('2026-03-01T09:03:30Z')).toEqual(['sess-later']);
      const after = await cli(['sessions', 'list', '--data-dir', own.dir, '--format', 'json']);
      expect((JSON.parse(after.stdout) as Array<{ sessionId: string; open: boolean; endedBy?: string }>)[0]).toMatchObject({ sessionId: 'sess-idle', open: false, endedBy: '2026-03-01T09:03:00.000Z' });
      expect((await cli(['sessions', 'list', '--data-dir', own.dir])).stdout).toMatch(/sess-idle .* not recorded *$/m);
      // replay's summary says the same (it reads the segments' open records besides the session's).
      const replayed = (await loadSession(tdir, 'sess-idle')).summary;
      expect(replayed.open).toBe(false);
      expect(replayed.endedBy).toBeUndefined(); // replay reads the session's records only, not its writer's last one
      expect((await loadSession(tdir, 'sess-later')).summary).toMatchObject({ open: false, endedAt: '2026-03-05T12:00:01.000Z' });
      // --follow prints it and returns: no more records will come.
      const followed = await cli(['replay', 'sess-idle', '--follow', '--data-dir', own.dir]);
      expect(followed.code).toBe(0);
      expect(followed.stdout).toContain('end not recorded: the warden that recorded it has stopped');
      expect(followed.stdout).not.toContain('has not ended');
    } finally {
      own.cleanup();
    }
  });
});

describe('replay', () => {
  it('gives the timeline with timings, parameters, verdicts, approvers and masked rows', async () => {
    const replay = await loadSession(dir, 'sess-a');
    const json = replayJson(replay);
    expect(json.ended).toBe(true);
    expect(json.entries.map((e) => e.kind)).toEqual(['session-start', 'statement', 'result', 'statement', 'decision', 'result', 'statement', 'statement', 'decision', 'event', 'session-end']);
    expect(json.entries.map((e) => e.offsetMs)).toEqual([0, 120, 124, 1124, 31124, 31129, 33129, 34129, 94129, 94139, 94149]);
    const [, select, selectResult, del, approval] = json.entries;
    expect(select).toMatchObject({ kind: 'statement', statementId: 1, data: { verdict: 'mask', params: [{ type: 'int4', value: '5' }], via: 'extended' } });
    expect(selectResult).toMatchObject({ kind: 'result', statementId: 1, data: { rows: 1, capture: { mode: 'first', rows: [['5', 'j***@example.com', '************4242']] } } });
    expect(del).toMatchObject({ kind: 'statement', statementId: 2, data: { verdict: 'hold', approval: { requestId: 'req-1' }, rule: 'writes-need-approval' } });
    expect(approval).toMatchObject({ kind: 'decision', statementId: 2, data: { decision: 'approved', approver: 'alice@example.com', reason: 'ticket 42: remove test order' } });

    const text = renderReplayText(replay);
    expect(text).toContain('principal  reporting-agent  subject app-1234');
    expect(text).toContain('#1  MASK   read  public.customers  (extended)');
    expect(text).toContain("$1 int4 = '5'");
    expect(text).toContain('j***@example.com');
    expect(text).toContain('[masked: email-partial]');
    expect(text).toContain('#2  APPROVED by alice@example.com: "ticket 42: remove test order"');
    expect(text).toContain('#3  DENY   ddl  public.customers');
    expect(text).toContain('rule no-ddl: DDL is never allowed for agents');
    expect(text).toContain('#4  DENIED by bob@example.com');
    expect(text).toContain('session end (client closed) after 4 statements');
  });

  it('never lets recorded values drive the terminal', async () => {
    const text = renderReplayText(await loadSession(dir, SCENARIO.b));
    expect(text).not.toContain('\u001b');
    expect(text).toContain('dbo.invoices\\u001b[31m');
    expect(text).toContain("@region nvarchar(10) = 'EU\\u001b[2J'");
    expect(text).toContain("#1 → ERROR 208: Invalid object name 'dbo.invoices'.");
  });

  it('refuses an ambiguous or unknown id', async () => {
    await expect(loadSession(dir, 'sess-')).rejects.toThrow(/names 4 sessions/);
    await expect(loadSession(dir, 'nope')).rejects.toThrow(/no session 'nope'/);
  });
});

describe('access review', () => {
  const january = { since: new Date('2026-01-01T00:00:00Z'), until: new Date('2026-02-01T00:00:00Z') };

  it('takes the grants of the rules the sessions ran under when the principal is given by subject or app id', async () => {
    const grantsOf = (name: string) => (name === 'reporting-agent' ? ['shop', 'sales', 'warehouse', 'archive'] : undefined);
    for (const principal of ['reporting-agent', 'app-1234']) {
      const r = await buildReview(dir, { principal, ...january, grantsOf });
      expect(r.sessions.count).toBe(2);
      expect(r.unusedGrants).toEqual({ targets: ['archive', 'warehouse'] });
    }
    // A principal that never connected, named by something other than a rule: nothing to look up.
    expect((await buildReview(dir, { principal: 'app-9999', ...january, grantsOf })).unusedGrants).toBeNull();
  });

  it('reports targets, tables, masked columns, classes, approvals, denials and unused grants', async () => {
    const r = await buildReview(dir, { principal: 'reporting-agent', ...january, grantedTargets: ['shop', 'sales', 'warehouse', 'archive'] });
    expect(r.identities).toEqual([{ issuer: 'https://login.example.test/tenant/v2.0', subject: 'app-1234', appId: 'app-1234' }]);
    expect(r.sessions).toMatchObject({ count: 2, first: '2026-01-10T10:00:00.000Z', errors: 1, endReasons: { 'client closed': 2 } });
    expect(r.targets.map((t) => [t.target, t.protocol, t.sessions, t.statements])).toEqual([
      ['sales', 'tds', 1, 1],
      ['shop', 'postgres', 1, 4],
    ]);
    expect(r.tables.map((t) => [t.target, t.relation, t.statements, t.classes])).toEqual([
      ['sales', 'dbo.invoices', 1, { read: 1 }],
      ['shop', 'public.customers', 3, { read: 1, ddl: 1, write: 1 }],
      ['shop', 'public.orders', 1, { write: 1 }],
    ]);
    expect(r.protectedColumns).toEqual([
      { target: 'shop', column: 'card_number', table: 'public.customers', rule: 'card-last4', results: 1, rows: 1 },
      { target: 'shop', column: 'email', table: 'public.customers', rule: 'email-partial', results: 1, rows: 1 },
    ]);
    expect(r.statementsByClass).toEqual([
      { class: 'read', count: 2, verdicts: { allow: 1, deny: 0, hold: 0, mask: 1 } },
      { class: 'write', count: 2, verdicts: { allow: 0, deny: 0, hold: 2, mask: 0 } },
      { class: 'ddl', count: 1, verdicts: { allow: 0, deny: 1, hold: 0, mask: 0 } },
    ]);
    expect(r.approvals.map((a) => [a.statementId, a.decision, a.approver, a.reason, a.requestId])).toEqual([
      [2, 'approved', 'alice@example.com', 'ticket 42: remove test order', 'req-1'],
      [4, 'denied', 'bob@example.com', 'not during business hours', 'req-2'],
    ]);
    expect(r.denials.map((d) => [d.statementId, d.by, d.rule ?? d.approver, d.text])).toEqual([
      [3, 'policy', 'no-ddl', 'DROP TABLE customers'],
      [4, 'approver', 'bob@example.com', "UPDATE customers SET email = '<script>alert(1)</script>' WHERE id = 5"],
    ]);
    // archive was used, but in December: for January it is unused.
    expect(r.unusedGrants).toEqual({ targets: ['archive', 'warehouse'] });
  });

  it("keeps the system catalogs tools read (psql's \\d) out of the tables table, on one line of their own", async () => {
    const own = tempDataDir();
    try {
      const store = await openStore(own.dir);
      const rec = store.recorder();
      await rec.sessionStart({ sessionId: 'sys-1', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 50000, tls: null } });
      const relations = [
        ['pg_catalog.pg_class', 'pg_catalog.pg_namespace'],
        ['public.customers'],
        ['information_schema.columns'],
        ['pg_class'], // unqualified: could be anyone's table
      ];
      for (const rels of relations) await rec.statement({ text: 'SELECT …', classification: { class: 'read', relations: rels }, verdict: 'allow' });
      await rec.sessionEnd('client closed');
      await store.close();
      const r = await buildReview(transcriptsDir(own.dir), { principal: 'reporting-agent', since: new Date(0), until: new Date(Date.now() + 60_000) });
      expect(r.tables.filter((t) => t.system).map((t) => t.relation)).toEqual(['information_schema.columns', 'pg_catalog.pg_class', 'pg_catalog.pg_namespace']);
      const text = renderReviewText(r);
      const section = text.slice(text.indexOf('Tables touched'), text.indexOf('Protected (masked) columns'));
      expect(section).toMatch(/shop\s+pg_class\s+1/);
      expect(section).toMatch(/shop\s+public\.customers\s+1/);
      expect(section).toContain("also read the system catalogs (metadata, as psql's \\d and drivers ask for it), statements: information_schema.columns (1), pg_catalog.pg_class (1), pg_catalog.pg_namespace (1)");
      expect(renderReviewHtml(r)).toContain('pg_catalog.pg_namespace (1)</p>');
    } finally {
      own.cleanup();
    }
  });

  it('renders text and a standalone, escaped HTML page', async () => {
    const r = await buildReview(dir, { principal: 'reporting-agent', ...january, grantedTargets: ['shop', 'warehouse'] });
    const text = renderReviewText(r);
    expect(text).toContain('Access review: reporting-agent');
    expect(text).toContain('APPROVED by alice@example.com: "ticket 42: remove test order"');
    expect(text).toMatch(/Granted but never used \(candidates for revocation\)\n {2}warehouse/);
    const html = renderReviewHtml(r);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<(link|script|img)\b/i);
    expect(html).not.toMatch(/https?:\/\/(?!login\.example\.test)/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('<li class="unused">warehouse</li>');
  });
});

describe('the warden CLI', () => {
  it('sessions list --format json, with filters', async () => {
    const res = await cli(['sessions', 'list', '--data-dir', data.dir, '--principal', 'reporting-agent', '--since', '2026-01-01', '--format', 'json']);
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as Array<{ sessionId: string }>).map((s) => s.sessionId)).toEqual([SCENARIO.a, SCENARIO.b]);
    const text = await cli(['sessions', 'list', '--data-dir', data.dir, '--verdict', 'deny']);
    expect(text.stdout).toContain(SCENARIO.a);
    expect(text.stdout).toContain('1 session(s)');
    const bad = await cli(['sessions', 'list', '--data-dir', data.dir, '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since takes a duration');
  });

  it('refuses times that are no date (a duration past any date, 30 February) and a window that ends before it starts, with exit 2', async () => {
    const cases: [string[], string][] = [
      [['review', '--principal', 'reporting-agent', '--since', '99999999999d'], "--since reaches further back than any date ('99999999999d')"],
      [['sessions', 'list', '--until', '99999999999w'], "--until reaches further back than any date ('99999999999w')"],
      [['review', '--principal', 'reporting-agent', '--since', '2026-02-30'], "--since names a day that does not exist ('2026-02-30')"],
      [['sessions', 'list', '--since', '2026-13-01T00:00Z'], "--since names a day that does not exist ('2026-13-01T00:00Z')"],
      [['sessions', 'list', '--since', 'now', '--until', '1d'], '--since is after --until'],
    ];
    for (const [args, message] of cases) {
      const res = await cli([...args, '--data-dir', data.dir]);
      expect(res.stderr).toContain(message);
      expect(res.code).toBe(2);
    }
  });

  it('review --config: reads the configuration without warden\'s secrets, and finds the grants of a principal named by its subject', async () => {
    // The example policy takes the targets' passwords from the environment; an auditor's shell
    // need not have them. reporting-agent is granted shop (fixtures/policies/example.yaml).
    const example = readFileSync(join(projectRoot(), 'fixtures/policies/example.yaml'), 'utf8');
    const config = join(data.dir, 'warden.yaml');
    writeFileSync(config, example.replace(/^data_dir: .*$/m, `data_dir: ${JSON.stringify(data.dir)}`));
    expect(process.env.SHOP_PG_PASSWORD).toBeUndefined();
    for (const principal of ['reporting-agent', 'app-1234']) {
      const res = await cli(['review', '--config', config, '--principal', principal, '--since', '2026-01-01', '--until', '2026-02-01', '--format', 'json']);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect((JSON.parse(res.stdout) as { unusedGrants: unknown }).unusedGrants).toEqual({ targets: [] });
    }
    const list = await cli(['sessions', 'list', '--config', config, '--principal', 'app-1234', '--format', 'json']);
    expect(list.code).toBe(0);
    const bySubject = (await listSessions(dir)).filter((x) => x.principal?.subject === 'app-1234').map((x) => x.sessionId);
    expect((JSON.parse(list.stdout) as Array<{ sessionId: string }>).map((x) => x.sessionId)).toEqual(bySubject);
    expect(bySubject.length).toBeGreaterThan(0);
  });

  it('says the transcript path is not a directory (exit 1) instead of a raw ENOTDIR', async () => {
    const other = tempDataDir();
    try {
      writeFileSync(transcriptsDir(other.dir), 'not a directory\n');
      for (const args of [['sessions', 'list'], ['review', '--principal', 'x'], ['replay', 'sess-a']]) {
        const res = await cli([...args, '--data-dir', other.dir]);
        expect(res.stderr).toBe(`warden ${args[0]}: ${transcriptsDir(other.dir)} is not a transcript directory (it is a file)\n`);
        expect(res.code).toBe(1);
      }
    } finally {
      other.cleanup();
    }
  });

  it('replay by id prefix, text and json', async () => {
    const text = await cli(['replay', 'sess-a', '--data-dir', data.dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('APPROVED by alice@example.com');
    const json = await cli(['replay', SCENARIO.a, '--format', 'json', '--data-dir', data.dir]);
    expect((JSON.parse(json.stdout) as { entries: unknown[] }).entries).toHaveLength(11);
  });

  it('review to an HTML file, and as JSON', async () => {
    const out = join(data.dir, 'review.html');
    const res = await cli(['review', '--principal', 'reporting-agent', '--since', '2026-01-01', '--until', '2026-02-01', '--granted', 'shop,warehouse', '--format', 'html', '--out', out, '--data-dir', data.dir]);
    expect(res.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('<li class="unused">warehouse</li>');
    const json = await cli(['review', '--principal', 'reporting-agent', '--since', '2026-01-01', '--until', '2026-02-01', '--format', 'json', '--data-dir', data.dir]);
    expect((JSON.parse(json.stdout) as { approvals: unknown[] }).approvals).toHaveLength(2);
    expect((await cli(['review', '--data-dir', data.dir])).code).toBe(2);
  });

  it('audit verify exits 0 on an intact store and 1 with the finding after tampering', async () => {
    const ok = await cli(['audit', 'verify', '--data-dir', data.dir]);
    expect(ok.stdout).toContain('INTACT');
    expect(ok.code).toBe(0);
    const json = await cli(['audit', 'verify', transcriptsDir(data.dir), '--public-key', join(data.dir, 'keys', 'transcript-ed25519.pub.pem'), '--format', 'json']);
    expect((JSON.parse(json.stdout) as { ok: boolean }).ok).toBe(true);
    // The data directory itself as PATH: its transcripts, checked with its key.
    // A PATH that does not exist is named as the problem (not the key guessed beside it).
    const missing = await cli(['audit', 'verify', join(data.dir, 'no-such-dir')]);
    expect(missing.stderr).toBe(`warden audit: cannot read ${join(data.dir, 'no-such-dir')}: ENOENT (no such file or directory)\n`);
    expect(missing.code).toBe(1);
    const asPath = await cli(['audit', 'verify', data.dir]);
    expect(asPath.stdout).toContain(`INTACT  ${transcriptsDir(data.dir)}`);
    expect(asPath.code).toBe(0);

    const file = segmentFiles(data.dir)[0] as string;
    const original = readFileSync(file);
    const lines = readLinesOf(file);
    const i = lines.findIndex((l) => l.includes('bob@example.com'));
    lines[i] = (lines[i] as string).replace('bob@example.com', 'eve@example.com');
    writeLinesTo(file, lines);
    try {
      const broken = await cli(['audit', 'verify', '--data-dir', data.dir]);
      expect(broken.code).toBe(1);
      expect(broken.stdout).toContain('BROKEN');
      expect(broken.stdout).toMatch(new RegExp(`error\\s+edited\\s+\\S+ line ${i + 1} seq \\d+`));
    } finally {
      writeFileSync(file, original);
    }
  });
});
