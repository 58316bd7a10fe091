// Runs warden in its own process for benchmarks, from the configuration file named by the first
// argument (read by the real loader). Prints one JSON line with its addresses when ready, then
// serves until SIGTERM. Keeping warden in its own process lets a benchmark read warden's own CPU
// and peak memory (/proc/<pid>/status VmHWM) apart from the driver's.
import { loadConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { startWarden } from '../src/server.js';

const file = process.argv[2];
if (!file) throw new Error('usage: warden-process CONFIG_FILE');
const warden = await startWarden(await loadConfig(file), { logger: silentLogger });
process.stdout.write(`${JSON.stringify({ port: warden.postgres?.port, adminUrl: warden.adminUrl, pid: process.pid })}\n`);
process.on('SIGTERM', () => {
  void warden.close(100).then(() => process.exit(0));
});
