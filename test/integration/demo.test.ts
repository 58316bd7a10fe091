// `warden demo` as a user runs it: the compiled CLI in its own process, --json output, a real
// connection with the printed details, and Ctrl-C leaving nothing running.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { projectRoot } from '../../src/embedded/seed.js';
import { closeTedious, connectTedious, query, tediousConfig } from '../helpers/tds.js';

const cli = join(projectRoot(), 'dist', 'src', 'cli', 'main.js');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!existsSync(cli))('warden demo', () => {
  it('prints connection details as JSON, serves queries, and stops cleanly on SIGINT', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'warden-demo-test-'));
    const child = spawn(process.execPath, [cli, 'demo', '--json', '--data-dir', dataDir, '--port', '0', '--tds-port', '0', '--admin-port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        void exited.then((code) => reject(new Error(`demo exited with ${code}: ${stderr}`)));
      });
      const info = JSON.parse(line) as {
        host: string;
        port: number;
        database: string;
        user: string;
        token: string;
        url: string;
        admin_url: string;
        upstream: { port: number; data_dir: string };
        config: string;
        env_file: string;
        tds: { host: string; port: number; database: string; user: string; password: string };
      };
      expect(info).toMatchObject({ host: '127.0.0.1', database: 'shop', user: 'demo-agent' });
      expect(info.url).toContain(`:${info.port}/shop?sslmode=require`);

      const c = new pg.Client({ host: info.host, port: info.port, database: info.database, user: info.user, password: info.token, ssl: { rejectUnauthorized: false } });
      await c.connect();
      const r = await c.query('SELECT count(*)::int AS n FROM customers');
      await c.end();
      expect(r.rows[0]).toEqual({ n: 20 });

      // masked for the demo agent
      const m = new pg.Client({ host: info.host, port: info.port, database: info.database, user: info.user, password: info.token, ssl: { rejectUnauthorized: false } });
      await m.connect();
      expect((await m.query('SELECT ssn FROM customers WHERE id = 1')).rows[0]).toEqual({ ssn: '*******7468' });
      await m.end();
      // the SQL Server protocol, with the session ticket, to the stand-in's data
      const t = await connectTedious(tediousConfig({ port: info.tds.port, database: info.tds.database, encrypt: true, auth: { user: info.tds.user, password: info.tds.password } }));
      const r2 = await query(t, 'SELECT COUNT(*) AS n FROM customers');
      expect(r2.sets[0]?.rows[0]?.[0]).toBe(20);
      await closeTedious(t);

      const health = (await (await fetch(`${info.admin_url}/healthz`)).json()) as { status: string };
      expect(health.status).toBe('ok');

      // The env file lets other commands read the demo's configuration (explain-mask here).
      expect(statSync(info.env_file).mode & 0o777).toBe(0o600);
      const env = Object.fromEntries(readFileSync(info.env_file, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      expect(Object.keys(env).sort()).toEqual(['WARDEN_DEMO_SHOP_PASSWORD', 'WARDEN_DEMO_SQL_PASSWORD']);
      const explained = spawnSync(process.execPath, [cli, 'explain-mask', '--config', info.config, '--target', 'shop', '--principal', 'demo-agent', 'SELECT ssn, id FROM customers'], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
      expect(explained.stderr).toBe('');
      expect(explained.stdout).toMatch(/ssn\s+masked \(partial, rule national-ids\)/);

      child.kill('SIGINT');
      expect(await exited).toBe(0);
      // Nothing left listening: neither warden nor the demo's PostgreSQL.
      await expect(new pg.Client({ host: '127.0.0.1', port: info.upstream.port, user: 'x', connectionTimeoutMillis: 1000 }).connect()).rejects.toThrow();
      await expect(new pg.Client({ host: '127.0.0.1', port: info.port, user: 'x', connectionTimeoutMillis: 1000 }).connect()).rejects.toThrow();
      // …and the demo's PostgreSQL cluster is gone from disk, with the env file.
      expect(existsSync(info.upstream.data_dir)).toBe(false);
      expect(existsSync(info.env_file)).toBe(false);
    } finally {
      if (child.pid && pidAlive(child.pid)) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
