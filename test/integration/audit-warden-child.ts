// Child process for audit-kill.test.ts: runs warden from the configuration file named by the first
// argument and prints one JSON line, {port, token}, then serves until it is killed.
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startWarden } from '../../src/server.js';

const file = process.argv[2];
if (!file) throw new Error('usage: audit-warden-child CONFIG_FILE');
const warden = await startWarden(await loadConfig(file), { logger: silentLogger });
const token = await warden.devIssuer?.mint({ subject: 'kill-agent', roles: ['Warden.Agent'] });
process.stdout.write(`${JSON.stringify({ port: warden.postgres?.port, token })}\n`);
