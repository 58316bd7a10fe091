// Runs warden in its own process for benchmarks, from a JSON config in $WARDEN_BENCH_CONFIG
// (WardenConfig with `targets` as an array). Prints one JSON line with its addresses when ready,
// then serves until SIGTERM. Keeping warden in its own process lets the benchmark read its own
// CPU and peak memory (/proc/<pid>/status VmHWM) apart from the driver's.
import type { TargetConfig, WardenConfig } from '../src/config/types.js';
import { silentLogger } from '../src/log.js';
import { startWarden } from '../src/server.js';

const raw = JSON.parse(process.env.WARDEN_BENCH_CONFIG ?? '{}') as Omit<WardenConfig, 'targets'> & { targets: TargetConfig[] };
type RawTranscripts = Omit<NonNullable<WardenConfig['transcripts']>, 'targets'> & { targets?: unknown };
const rawT = (raw as { transcripts?: RawTranscripts }).transcripts;
const config: WardenConfig = {
  ...raw,
  targets: new Map(raw.targets.map((t) => [t.name, t])),
  ...(rawT ? { transcripts: { ...rawT, targets: new Map() } } : {}),
};
const warden = await startWarden(config, { logger: silentLogger });
process.stdout.write(
  `${JSON.stringify({ port: warden.postgres?.port, adminUrl: warden.adminUrl, pid: process.pid })}\n`,
);
process.on('SIGTERM', () => {
  void warden.close(100).then(() => process.exit(0));
});
