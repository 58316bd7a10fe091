// `warden sessions list`: the sessions in the transcript store, filtered by principal, target,
// time, table touched and verdict.

import { checkWindow, DEFAULT_DATA_DIR, oneOf, parseCommandArgs, parseWhen, runCommand, transcriptLocation, UsageError, writeOut } from '../../audit/cli-support.js';
import { listSessions, type SessionFilter, type SessionSummary } from '../../audit/reader.js';
import { FROM_STORE_USAGE, openSharedStore } from '../../audit/store-postgres-cli.js';
import { printable, shorten, terminalJson, textTable } from '../../audit/text.js';
import { VERDICTS } from '../../audit/types.js';

export const summary = 'list recorded sessions (filter by principal, target, time, table, verdict)';

const USAGE = `usage: warden sessions list [--principal NAME] [--target NAME] [--since WHEN] [--until WHEN]
                           [--table NAME] [--verdict allow|deny|hold|mask] [--format text|json] [--data-dir DIR | --config FILE]
                           [--from-store]

  --principal   policy principal name, or the token's subject, app id or object id
  --target      target name
  --since/--until  sessions active in that window; WHEN is 30d, 12h, 45m, 2w, now, or an ISO date/time
  --table       sessions whose statements touched this table ("customers" and "public.customers" match each other)
  --verdict     sessions with at least one statement of this verdict
  --data-dir    warden's data directory (default ${DEFAULT_DATA_DIR})
  --config      read the data directory and transcript settings from warden's configuration
${FROM_STORE_USAGE}`;

export async function run(args: string[]): Promise<number> {
  return runCommand('sessions', USAGE, async () => {
    const { values, positionals } = parseCommandArgs(args, {
      principal: { type: 'string' },
      target: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      table: { type: 'string' },
      verdict: { type: 'string' },
      format: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
      'from-store': { type: 'boolean' },
    });
    if (values.help) {
      writeOut(USAGE);
      return 0;
    }
    const [sub, ...extra] = positionals;
    if (sub !== 'list') throw new UsageError(sub === undefined ? 'a subcommand is required' : `unknown subcommand '${sub}'`);
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const now = new Date();
    const filter: SessionFilter = {};
    if (values.principal !== undefined) filter.principal = values.principal;
    if (values.target !== undefined) filter.target = values.target;
    if (values.since !== undefined) filter.since = parseWhen(values.since, now, '--since');
    if (values.until !== undefined) filter.until = parseWhen(values.until, now, '--until');
    checkWindow(filter.since, filter.until, '--since', '--until');
    if (values.table !== undefined) filter.table = values.table;
    if (values.verdict !== undefined) filter.verdict = oneOf(values.verdict, VERDICTS, '--verdict', 'allow');
    const format = oneOf(values.format, ['text', 'json'] as const, '--format', 'text');
    const where = await transcriptLocation(values);
    const shared = values['from-store'] ? openSharedStore(where) : undefined;
    let sessions: SessionSummary[];
    try {
      sessions = await listSessions(shared ? shared.source() : where.dir, filter);
    } finally {
      await shared?.close();
    }
    writeOut(format === 'json' ? terminalJson(sessions, 2) : renderSessions(sessions));
    return 0;
  });
}

function renderSessions(sessions: SessionSummary[]): string {
  if (sessions.length === 0) return 'no sessions match';
  const p = (s: string) => printable(s, true);
  const rows = sessions.map((s) => [
    s.startedAt,
    p(s.sessionId),
    p(s.principal?.name ?? '?'),
    p(s.target),
    s.protocol,
    String(s.statements),
    `${s.verdicts.allow}/${s.verdicts.mask}/${s.verdicts.hold}/${s.verdicts.deny}`,
    s.endedAt ? p(shorten(s.endReason ?? 'ended', 24)) : s.open ? 'open' : 'not recorded',
    p(shorten(s.relations.join(','), 40)),
  ]);
  return `${textTable(['started', 'session', 'principal', 'target', 'protocol', 'stmts', 'a/m/h/d', 'end', 'tables'], rows)}\n${sessions.length} session(s)`;
}
