// `npm run bench`: every benchmark in bench/, one after another, each in its own process (each
// starts and stops its own PostgreSQL, pgbouncer and warden). Each prints its own report; see
// bench/README.md for what they measure and the targets.
//
//   npm run bench                       all of them, with their default settings
//   npm run bench -- pgbench masking-rows   only these
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Name → the script and its arguments (the issue targets' settings). */
const SUITE: Record<string, string[]> = {
  pgbench: ['pgbench.js', '--record', '--flow'],
  'large-result': ['large-result.js'],
  'large-result-masked': ['large-result.js', '--masked'],
  'masking-rows': ['masking-rows.js'],
  recording: ['recording.js'],
  'tds-large-result': ['tds-large-result.js'],
  approvals: ['approvals.js'],
};

const asked = process.argv.slice(2);
const unknown = asked.filter((n) => !(n in SUITE));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark ${unknown.join(', ')}; the benchmarks are: ${Object.keys(SUITE).join(', ')}\n`);
  process.exit(2);
}
const failed: string[] = [];
for (const name of asked.length > 0 ? asked : Object.keys(SUITE)) {
  const [script, ...args] = SUITE[name] as [string, ...string[]];
  process.stderr.write(`\n=== ${name}: node dist/bench/${script} ${args.join(' ')}\n`);
  const run = spawnSync(process.execPath, [fileURLToPath(new URL(`./${script}`, import.meta.url)), ...args], { stdio: 'inherit' });
  if (run.status !== 0) failed.push(`${name} (${run.signal ?? `exit ${run.status}`})`);
}
if (failed.length > 0) {
  process.stderr.write(`\nfailed: ${failed.join(', ')}\n`);
  process.exit(1);
}
