#!/usr/bin/env -S node --liftoff-only
// The `warden` command line. It runs node with --liftoff-only: the SQL parser is a large
// WebAssembly module, and V8's background tier-up of it cost a third of warden's CPU under load
// (see src/sql/parser.ts); parse results are cached, so baseline code is plenty.
// Each subcommand lives in src/cli/commands/<name>.ts and exports `run(args: string[]):
// Promise<number>` (the exit code) and a one-line `summary`.

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

// One line per command; keep alphabetical.
const commands: Record<string, () => Promise<Command>> = {
  approvals: () => import('./commands/approvals.js'),
  audit: () => import('./commands/audit.js'),
  demo: () => import('./commands/demo.js'),
  'explain-mask': () => import('./commands/explain-mask.js'),
  replay: () => import('./commands/replay.js'),
  review: () => import('./commands/review.js'),
  sessions: () => import('./commands/sessions.js'),
  start: () => import('./commands/start.js'),
  'check-config': () => import('./commands/check-config.js'),
  token: () => import('./commands/token.js'),
};

async function usage(): Promise<string> {
  const names = Object.keys(commands).sort();
  const width = Math.max(...names.map((n) => n.length));
  const lines: string[] = [];
  for (const name of names) {
    const load = commands[name] as () => Promise<Command>;
    const summary = await load().then((c) => c.summary, () => '');
    lines.push(`  ${name.padEnd(width)}  ${summary}`);
  }
  return ['usage: warden <command> [options]', '', 'commands:', ...lines, '', "run 'warden <command> --help' for a command's options"].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${await usage()}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    const { readFileSync } = await import('node:fs');
    const { projectRoot } = await import('../embedded/seed.js');
    const pkg = JSON.parse(readFileSync(`${projectRoot()}/package.json`, 'utf8')) as { version: string };
    process.stdout.write(`warden ${pkg.version}\n`);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`warden: unknown command '${name}'\n${await usage()}\n`);
    return 2;
  }
  const command = await load();
  return command.run(rest);
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`warden: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
