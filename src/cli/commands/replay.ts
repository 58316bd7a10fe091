// `warden replay <session-id>`: one session as a readable timeline, or JSON; `--follow` keeps
// printing a live session's records until it ends (or Ctrl-C).

import { DEFAULT_DATA_DIR, oneOf, parseCommandArgs, runCommand, transcriptLocation, UsageError, writeOut } from '../../audit/cli-support.js';
import { followSession, loadSession, renderEntry, renderReplayText, replayJson } from '../../audit/replay.js';

export const summary = 'replay one recorded session as a timeline (--follow for a live one)';

const USAGE = `usage: warden replay SESSION-ID [--follow] [--format text|json] [--data-dir DIR | --config FILE]

  SESSION-ID   the session id, or a prefix naming exactly one session
  --follow     keep printing new records of a live session until it ends
  --format     text (default) or json; with --follow, json prints one JSON object per line
               ({"session": …} first, then one per timeline entry)
  --data-dir   warden's data directory (default ${DEFAULT_DATA_DIR})
  --config     read the data directory and transcript settings from warden's configuration`;

export async function run(args: string[]): Promise<number> {
  return runCommand('replay', USAGE, async () => {
    const { values, positionals } = parseCommandArgs(args, {
      follow: { type: 'boolean' },
      format: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
    });
    if (values.help) {
      writeOut(USAGE);
      return 0;
    }
    const [id, ...extra] = positionals;
    if (id === undefined) throw new UsageError('a session id is required');
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const format = oneOf(values.format, ['text', 'json'] as const, '--format', 'text');
    const dir = (await transcriptLocation(values)).dir;
    const replay = await loadSession(dir, id);
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
