// `warden review --principal X`: the access-review report for one principal over a period, as
// text, JSON or a standalone HTML page.

import { writeFileSync } from 'node:fs';
import { checkWindow, DEFAULT_DATA_DIR, oneOf, parseCommandArgs, parseWhen, runCommand, transcriptLocation, grantedTargets, UsageError, writeOut } from '../../audit/cli-support.js';
import { buildReview, renderReviewHtml, renderReviewText, type ReviewReport } from '../../audit/review.js';
import { printable, terminalJson } from '../../audit/text.js';
import { FROM_STORE_USAGE, openSharedStore } from '../../audit/store-postgres-cli.js';

export const summary = 'access-review report for one principal: targets, tables, masked columns, approvals, unused grants';

const USAGE = `usage: warden review --principal NAME [--since WHEN] [--until WHEN] [--granted T1,T2,…]
                    [--format text|json|html] [--out FILE] [--data-dir DIR | --config FILE] [--from-store]

  --principal  policy principal name, or the token's subject, app id or object id
  --since      start of the period (default 30d); WHEN is 30d, 12h, 2w, now, or an ISO date/time
  --until      end of the period (default now)
  --granted    targets the policy grants the principal; those never reached are listed as
               candidates for revocation
  --format     text (default), json, or html (a standalone page)
  --out        write the report to FILE instead of standard output
  --data-dir   warden's data directory (default ${DEFAULT_DATA_DIR})
  --config     read the data directory and transcript settings from warden's configuration
${FROM_STORE_USAGE}`;

export async function run(args: string[]): Promise<number> {
  return runCommand('review', USAGE, async () => {
    const { values, positionals } = parseCommandArgs(args, {
      principal: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      granted: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
      'from-store': { type: 'boolean' },
    });
    if (values.help) {
      writeOut(USAGE);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    if (values.principal === undefined || values.principal === '') throw new UsageError('--principal is required');
    const format = oneOf(values.format, ['text', 'json', 'html'] as const, '--format', 'text');
    const now = new Date();
    const since = parseWhen(values.since ?? '30d', now, '--since');
    const until = parseWhen(values.until ?? 'now', now, '--until');
    checkWindow(since, until, '--since', '--until');
    const where = await transcriptLocation(values);
    const granted = values.granted?.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
    const config = where.config;
    const shared = values['from-store'] ? openSharedStore(where) : undefined;
    let report: ReviewReport;
    try {
      report = await buildReview(shared ? shared.source() : where.dir, {
        principal: values.principal,
        since,
        until,
        ...(granted ? { grantedTargets: granted } : config ? { grantsOf: (name: string) => grantedTargets(config, name) } : {}),
      });
    } finally {
      await shared?.close();
    }
    // printable, as writeOut does: whatever control character no renderer expected is escaped.
    const text = printable(format === 'json' ? `${terminalJson(report, 2)}\n` : format === 'html' ? renderReviewHtml(report) : renderReviewText(report));
    if (values.out !== undefined) writeFileSync(values.out, text);
    else process.stdout.write(text);
    return 0;
  });
}
