// Real external clients (psql, pgbench, tsql, java, python3 + psycopg2, headless Chromium): find them, or say
// visibly why a test is skipped. With WARDEN_REQUIRE_CLIENTS=1 (CI) a missing client is an error.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const cache = new Map<string, string | undefined>();

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const probes: Record<string, () => string | undefined> = {
  psql: () => which('psql'),
  pgbench: () => which('pgbench'),
  pgbouncer: () => which('pgbouncer') ?? (existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : undefined),
  tsql: () => which('tsql'),
  tshark: () => which('tshark'),
  java: () => which('java'),
  javac: () => which('javac'),
  pgjdbc: () => ['/usr/share/java/postgresql.jar'].find((p) => existsSync(p)),
  jtds: () => ['/usr/share/java/jtds.jar'].find((p) => existsSync(p)),
  chromium: () => ['/usr/bin/chromium'].find((p) => existsSync(p)),
  strace: () => which('strace'),
  psycopg2: () => {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import psycopg2'], { stdio: 'ignore' });
      return '/usr/bin/python3';
    } catch {
      return undefined;
    }
  },
};

/** Path of the client, or undefined when it is not installed. */
export function findClient(name: keyof typeof probes): string | undefined {
  if (!cache.has(name)) cache.set(name, probes[name]?.());
  return cache.get(name);
}

/**
 * For `describe.skipIf(...)`/`it.skipIf(...)`: true when the client is missing and may be skipped.
 * Prints the reason once. Throws when WARDEN_REQUIRE_CLIENTS=1 and the client is missing.
 */
export function missingClient(name: keyof typeof probes): boolean {
  if (findClient(name)) return false;
  const hint = `${name} is not installed (Debian: see .ci/run for the package)`;
  if (process.env.WARDEN_REQUIRE_CLIENTS === '1') throw new Error(`required client missing: ${hint}`);
  process.stderr.write(`SKIP: ${hint}\n`);
  return true;
}
