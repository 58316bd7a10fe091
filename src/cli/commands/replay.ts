// `warden replay <session-id>`: one session as a readable timeline, or JSON; `--follow` keeps
// printing a live session's records until it ends (or Ctrl-C).

import { DEFAULT_DATA_DIR, oneOf, parseCommandArgs, runCommand, transcriptLocation, UsageError, writeOut } from '../../audit/cli-support.js';
import { followSession, loadSession, renderEntry, renderReplayText, replayJson, type SessionReplay } from '../../audit/replay.js';
import { FROM_STORE_USAGE, openSharedStore } from '../../audit/store-postgres-cli.js';

export const summary = 'replay one recorded session as a timeline (--follow for a live one)';

const USAGE = `usage: warden replay SESSION-ID [--follow] [--format text|json] [--data-dir DIR | --config FILE] [--from-store]

  SESSION-ID   the session id, or a prefix naming exactly one session
  --follow     keep printing new records of a live session until it ends
  --format     text (default) or json; with --follow, json prints one JSON object per line
               ({"session": …} first, then one per timeline entry)
  --data-dir   warden's data directory (default ${DEFAULT_DATA_DIR})
  --config     read the data directory and transcript settings from warden's configuration
${FROM_STORE_USAGE} (not with --follow)`;

export async function run(args: string[]): Promise<number> {
  return runCommand('replay', USAGE, async () => {
    const { values, positionals } = parseCommandArgs(args, {
      follow: { type: 'boolean' },
      format: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
      'from-store': { type: 'boolean' },
    });
    if (values.help) {
      writeOut(USAGE);
      return 0;
    }
    const [id, ...extra] = positionals;
    if (id === undefined) throw new UsageError('a session id is required');
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const format = oneOf(values.format, ['text', 'json'] as const, '--format', 'text');
    if (values['from-store'] && values.follow) throw new UsageError('--follow watches the local files; it cannot be combined with --from-store');
    const where = await transcriptLocation(values);
    const dir = where.dir;
    const shared = values['from-store'] ? openSharedStore(where) : undefined;
    let replay: SessionReplay;
    try {
      replay = await loadSession(shared ? shared.source() : dir, id);
    } finally {
      await shared?.close();
    }
    if (!values.follow) {
      writeOut(format === 'json' ? JSON.stringify(replayJson(replay), null, 2) : renderReplayText(replay));
      return 0;
    }
    if (format === 'json') {
      writeOut(JSON.stringify({ session: replay.summary }));
      for (const e of replay.entries) writeOut(JSON.stringify(e));
    } else {
      writeOut(renderReplayText({ ...replay, ended: true }));
    }
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await followSession(dir, replay, {
        signal: abort.signal,
        onEntry: (e) => writeOut(format === 'json' ? JSON.stringify(e) : renderEntry(e)),
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return 0;
  });
}
