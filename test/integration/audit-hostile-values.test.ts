// Values an agent chooses — statement text, column aliases, application name, parameters, token
// subject — recorded through warden with a real client, then read back by the auditors' commands
// (the real `warden` CLI): no output may let them drive the reviewer's terminal or page.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { run } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';
import { transcriptsDir } from '../unit/audit-support.js';

const HOSTILE = 'x\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202eevil\u2066\u200f</script><script>alert(1)</script>';
let w: TestWarden;
let dataDir: string;

const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', join(projectRoot(), 'src/cli/main.ts'), ...args, '--data-dir', dataDir], { cwd: projectRoot() });

beforeAll(async () => {
  w = await startTestWarden({ mutate: (c) => { c.transcripts = { ...defaultTranscripts(c.dataDir), capture: 'all' }; } });
  dataDir = w.dataDir;
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token({ subject: `sub-${HOSTILE}` }), database: 'shop', ssl: { ca: w.ca }, application_name: `app-${HOSTILE}`.slice(0, 60) });
  await c.connect();
  await c.query(`SELECT $1::text AS "col-${HOSTILE.replace(/"/g, '')}" -- ${HOSTILE}`, [`val-${HOSTILE}`]);
  await c.query(`SELECT '${'long '.repeat(20000)}' AS long`);
  await c.end();
  await w.warden.close(500);
});
afterAll(async () => {
  await w.stop();
});

const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/;

describe('hostile recorded values', () => {
  it('reach no output raw: control, C1 and bidi characters are escaped in text, JSON and HTML, and the page is escaped', async () => {
    const list = await cli(['sessions', 'list']);
    const sessions = JSON.parse((await cli(['sessions', 'list', '--format', 'json'])).stdout) as { sessionId: string; principal: { subject: string } }[];
    expect(sessions).toHaveLength(1);
    const sid = sessions[0]?.sessionId as string;
    const review = await cli(['review', '--principal', 'agent', '--format', 'json']);
    const outs: Record<string, string> = {
      'sessions text': list.stdout,
      'sessions json': (await cli(['sessions', 'list', '--format', 'json'])).stdout,
      'replay text': (await cli(['replay', sid])).stdout,
      'replay json': (await cli(['replay', sid, '--format', 'json'])).stdout,
      'review text': (await cli(['review', '--principal', 'agent'])).stdout,
      'review json': review.stdout,
      'review html': (await cli(['review', '--principal', 'agent', '--format', 'html'])).stdout,
    };
    const raw = Object.entries(outs).flatMap(([k, v]) => {
      const m = RAW.exec(v);
      return m ? [`${k}: U+${m[0].charCodeAt(0).toString(16).padStart(4, '0')}`] : [];
    });
    expect(raw).toEqual([]);
    // JSON stays the same value: the escapes are JSON's own.
    expect(sessions[0]?.principal.subject).toBe(`sub-${HOSTILE}`);
    const replay = JSON.parse(outs['replay json'] as string) as { entries: { kind: string; data: { text?: string } }[] };
    expect(replay.entries.find((e) => e.kind === 'statement')?.data.text).toContain(`-- ${HOSTILE}`);
    expect((JSON.parse(review.stdout) as { identities: { subject: string }[] }).identities[0]?.subject).toBe(`sub-${HOSTILE}`);
    // Text and the page show them as escapes; the page has no markup of the agent's.
    for (const k of ['replay text', 'review text', 'review html']) expect(outs[k]).toContain('\\u202eevil\\u2066\\u200f');
    expect(outs['review html']).not.toMatch(/<\/?script/i);
    expect(outs['review html']).toContain('&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(outs['replay text']).toContain('long long long');
  });

  it('nor do fields warden writes itself, when the files were altered (listing does not check hashes)', async () => {
    for (const file of readdirSync(transcriptsDir(dataDir)).filter((f) => f.endsWith('.jsonl'))) {
      const path = join(transcriptsDir(dataDir), file);
      writeFileSync(path, readFileSync(path, 'utf8').replace('"protocol":"postgres"', '"protocol":"postgres\\u001b]0;owned\\u0007\\u009b2J"'));
    }
    const sid = (JSON.parse((await cli(['sessions', 'list', '--format', 'json'])).stdout) as { sessionId: string }[])[0]?.sessionId as string;
    const outs = {
      sessions: (await cli(['sessions', 'list'])).stdout,
      replay: (await cli(['replay', sid])).stdout,
      review: (await cli(['review', '--principal', 'agent'])).stdout,
    };
    for (const [k, v] of Object.entries(outs)) {
      expect(v, k).toContain('postgres\\u001b]0;owned\\u0007\\u009b2J');
      expect(RAW.exec(v)?.[0], k).toBeUndefined();
    }
  });
});
