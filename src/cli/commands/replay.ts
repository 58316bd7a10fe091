// `warden replay <session-id>`: one session as a readable timeline, or JSON; `--follow` keeps
// printing a live session's records until it ends (or Ctrl-C).

import { DEFAULT_DATA_DIR, oneOf, parseCommandArgs, runCommand, transcriptLocation, UsageError, writeOut } from '../../audit/cli-support.js';
import { followSession, locateSession, renderEntry, replayJsonPieces, replayTextPieces, sessionEntries, type LocatedSession } from '../../audit/replay.js';
import { FROM_STORE_USAGE, openSharedStore } from '../../audit/store-postgres-cli.js';
import { printable, terminalJson } from '../../audit/text.js';

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
    // Two passes over the store (which session and its summary, then its timeline), written as
    // it is read: memory does not grow with the length of the session.
    const from = shared ? shared.source() : dir;
    let replay: LocatedSession;
    try {
      replay = await locateSession(from, id);
      // A session whose warden stopped without recording its end gets no more records to follow.
      if (!values.follow || (!replay.ended && !replay.summary.open)) {
        const pieces = format === 'json' ? replayJsonPieces(replay, sessionEntries(from, replay)) : replayTextPieces(replay, sessionEntries(from, replay));
        for await (const piece of pieces) await writeLine(piece, format === 'text');
        await writeLine('', format === 'json', true);
        return 0;
      }
    } finally {
      await shared?.close();
    }
    if (format === 'json') {
      writeOut(terminalJson({ session: replay.summary }));
      for await (const e of sessionEntries(from, replay)) await writeLine(terminalJson(e), true);
    } else {
      for await (const piece of replayTextPieces({ ...replay, ended: true }, sessionEntries(from, replay))) await writeLine(piece, true);
    }
    await writeLine('', false, true);
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await followSession(dir, { ...replay, entries: [] }, {
        signal: abort.signal,
        onEntry: (e) => writeOut(format === 'json' ? terminalJson(e) : renderEntry(e)),
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return 0;
  });
}

let pending: string[] = [];
let pendingChars = 0;

/**
 * Writes to stdout in batches of about 64 KB and waits while its buffer is full, so a slow reader
 * does not make it grow. `flush` sends what is batched (the end of the output, or a --follow
 * entry that should show now).
 */
async function writeLine(piece: string, newline: boolean, flush = false): Promise<void> {
  const text = printable(piece); // as writeOut does
  pending.push(newline ? `${text}\n` : text);
  pendingChars += text.length + 1;
  if (!flush && pendingChars < 64 * 1024) return;
  const ok = process.stdout.write(pending.join(''));
  pending = [];
  pendingChars = 0;
  if (!ok) await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
}
