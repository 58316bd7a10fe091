// Runs warden in this process from the configuration file named by the first argument, then does
// what a deployment does all day: an agent session (simple and extended queries), a Prometheus
// scrape, and admin requests with refused bearer tokens. Prints one JSON line with what it saw
// and how many async_hooks init hooks are enabled in the process at the end (see
// test/integration/async-hooks.test.ts for why that must stay 0).
import pg from 'pg';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startWarden } from '../../src/server.js';

process.noDeprecation = true; // process.binding('async_wrap') below
const file = process.argv[2];
if (!file) throw new Error('usage: async-hooks-child CONFIG_FILE');
const warden = await startWarden(await loadConfig(file), { logger: silentLogger });
const admin = warden.adminUrl as string;
const status = async (path: string, token?: string): Promise<number> =>
  (await fetch(`${admin}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {})).status;
const statuses = {
  metrics: await status('/metrics'),
  sessionsRefused: await status('/sessions', 'not-a-token'),
  approvalsRefused: await status('/approvals', 'not-a-token'),
};
const token = await warden.devIssuer!.mint({ subject: 'hooks-agent', roles: ['Warden.Agent'] });
const client = new pg.Client({ host: '127.0.0.1', port: warden.postgres!.port, user: 'agent', password: token, database: 'shop', ssl: false });
await client.connect();
const simple = await client.query('SELECT 1 AS one');
const extended = await client.query('SELECT $1::int + 1 AS two', [1]);
await client.end();
statuses.metrics = await status('/metrics');
const asyncWrap = (process as unknown as { binding(name: string): { async_hook_fields: Uint32Array; constants: { kInit: number } } }).binding('async_wrap');
process.stdout.write(
  `${JSON.stringify({ statuses, rows: [simple.rows[0], extended.rows[0]], initHooks: asyncWrap.async_hook_fields[asyncWrap.constants.kInit] })}\n`,
);
await warden.close(100);
