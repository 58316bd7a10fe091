// Child process for audit-kill.test.ts and recording-thread-lifecycle.test.ts: runs warden from the
// configuration file named by the first argument and prints one JSON line, {port, token}, then
// serves until it is killed; SIGTERM stops it gracefully, as `warden start` does. With a second
// argument `log`, warden logs (JSON lines, on stderr) at the configured level.
import { closeOnSignals } from '../../src/cli/commands/start.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { startWarden } from '../../src/server.js';

const file = process.argv[2];
if (!file) throw new Error('usage: audit-warden-child CONFIG_FILE [log]');
const config = await loadConfig(file);
const logger = process.argv[3] === 'log' ? createLogger({ level: config.log.level, destination: process.stderr }) : silentLogger;
const warden = await startWarden(config, { logger });
const token = await warden.devIssuer?.mint({ subject: 'kill-agent', roles: ['Warden.Agent'] });
process.stdout.write(`${JSON.stringify({ port: warden.postgres?.port, token })}\n`);
await closeOnSignals(warden);
