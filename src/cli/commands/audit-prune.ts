// `warden audit prune`: applies retention to the chains of instances that are not running (a
// running warden applies transcripts.retention to its own chains). For each chain it opens the
// chain's writer as a restart would — taking the instance's lock, continuing the chain in a new
// segment — lets it remove the segments past the retention after signing where the chain now
// begins, and seals that segment. With `--dry-run` it only says what would go.

import type { KeyObject } from 'node:crypto';
import { DEFAULT_LIMITS, transcriptConfig } from '../../audit/config.js';
import { findChainTail } from '../../audit/chain-tail.js';
import { errnoCode, TranscriptReadError, TranscriptWriteError } from '../../audit/errors.js';
import { writerStopped } from '../../audit/instance-lock.js';
import { loadSigningKey, loadVerifyKey, publicKeyFileFor } from '../../audit/keys.js';
import { firstRecordOf, planRetention, sealTimeOf, type SegmentEntry } from '../../audit/retention.js';
import { listTranscriptDir, segmentFileName, segmentsOf } from '../../audit/segment-files.js';
import { SegmentWriter } from '../../audit/segment-writer.js';
import { PostgresTranscriptStore } from '../../audit/store-postgres.js';
import { countText } from '../../audit/text.js';
import { DEFAULT_DATA_DIR, parseWhen, transcriptDir, UsageError, writeOut } from '../../audit/cli-support.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import type { TranscriptsConfig } from '../../config/types.js';

export const PRUNE_USAGE = `usage: warden audit prune [--config FILE | --data-dir DIR] [--older-than AGE] [--instance ID]… [--dry-run]

  Removes, from the chains of instances that are not running, the segments whose records are all
  older than AGE, as a running warden does with transcripts.retention: each chain first gets a new
  segment whose signed checkpoint says where the chain now begins, so audit verify tells this from
  deletion. Chains whose writer is running are skipped (they apply retention themselves).

  --config FILE      warden's configuration: the transcript directory, the signing key (it must be
                     present: the new checkpoint is signed), transcripts.retention, and with
                     transcripts.ship the shared store, whose unshipped records are kept
  --data-dir DIR     or the data directory (default ${DEFAULT_DATA_DIR}), key at DIR/keys/
  --older-than AGE   30d, 12h, 2w, … or a date (at least an hour ago); default transcripts.retention
  --instance ID      only this chain (repeatable); default every chain in the directory
  --dry-run          say what would be removed; change nothing`;

const HOUR = 3_600_000;

export interface PruneOptions {
  config?: string | undefined;
  'data-dir'?: string | undefined;
  'older-than'?: string | undefined;
  instance?: string[] | undefined;
  'dry-run'?: boolean | undefined;
}

export async function prune(values: PruneOptions, now = new Date()): Promise<number> {
  if (values.config !== undefined && values['data-dir'] !== undefined) throw new UsageError('give --config or --data-dir, not both');
  let t: TranscriptsConfig | undefined;
  let dataDir = values['data-dir'] ?? DEFAULT_DATA_DIR;
  if (values.config !== undefined) {
    try {
      const config = await loadConfig(values.config);
      t = config.transcripts;
      dataDir = config.dataDir;
    } catch (err) {
      if (err instanceof ConfigError) throw new TranscriptReadError(`invalid configuration:\n${err.message}`);
      throw err;
    }
  }
  const retentionMs = values['older-than'] === undefined ? t?.retentionMs : now.getTime() - parseWhen(values['older-than'], now, '--older-than').getTime();
  if (retentionMs === undefined) throw new UsageError('give --older-than AGE, or --config with transcripts.retention');
  if (retentionMs < HOUR) throw new UsageError('--older-than must be at least an hour ago');
  const defaults = transcriptConfig(dataDir);
  const dir = t?.dir ?? transcriptDir(dataDir);
  const keyFile = t?.keyFile ?? defaults.keyFile;
  let entries;
  try {
    entries = segmentsOf(listTranscriptDir(dir));
  } catch (err) {
    throw new TranscriptReadError(`cannot list ${dir}: ${errnoCode(err) ?? String(err)}`);
  }
  const present = [...new Set(entries.map((e) => e.instance))];
  const wanted = values.instance ?? present;
  for (const id of wanted) if (!present.includes(id)) throw new UsageError(`no chain of instance '${id}' in ${dir}`);
  const dryRun = values['dry-run'] === true;
  const shared = t?.ship ? new PostgresTranscriptStore(t.ship) : undefined;
  const key = dryRun ? undefined : await loadSigningKey(keyFile, { create: false });
  // A seal dates its segment only when this key signed it: the public half is enough to tell.
  const publicKey = key?.publicKey ?? (await loadVerifyKey(publicKeyFileFor(keyFile)).catch(() => undefined))?.publicKey;
  const cutoff = new Date(now.getTime() - retentionMs).toISOString();
  writeOut(`${dryRun ? 'would remove' : 'removing'} segments whose records are all older than ${cutoff} from ${dir}`);
  let failed = 0;
  try {
    for (const instance of wanted) {
      const line = (text: string): void => writeOut(`  ${instance}: ${text}`);
      if (!writerStopped(dir, instance)) {
        line('skipped: its writer holds the lock (a running warden applies transcripts.retention itself)');
        continue;
      }
      let keepFrom: number | undefined;
      if (shared) {
        try {
          keepFrom = ((await shared.shippedEnd(instance))?.seq ?? 0) + 1;
        } catch (err) {
          line(`skipped: cannot ask the shared store what it holds (${err instanceof Error ? err.message : String(err)}); nothing removed, records not shipped are kept`);
          failed += 1;
          continue;
        }
      }
      const plan = planFor(dir, instance, entries.filter((e) => e.instance === instance), now.getTime(), retentionMs, keepFrom, publicKey);
      if (!plan) {
        line('nothing older');
        continue;
      }
      if (dryRun) {
        line(`would remove ${plan}`);
        continue;
      }
      try {
        const writer = await SegmentWriter.open({
          dir,
          instanceId: instance,
          key: key as NonNullable<typeof key>,
          fsync: 'interval',
          fsyncIntervalMs: defaults.fsyncIntervalMs,
          segmentMaxBytes: t?.segmentMaxBytes ?? defaults.segmentMaxBytes,
          segmentMaxAgeMs: t?.segmentMaxAgeMs ?? defaults.segmentMaxAgeMs,
          checkpointEveryRecords: defaults.checkpointEveryRecords,
          checkpointIntervalMs: defaults.checkpointIntervalMs,
          recordBytes: DEFAULT_LIMITS.recordBytes,
          retentionMs,
          ...(keepFrom === undefined ? {} : { keepFromSeq: () => keepFrom }),
          clock: () => now.getTime(),
        });
        const done = writer.retention;
        await writer.close();
        const last = done[done.length - 1];
        if (!last) line('nothing removed');
        else line(`removed ${countText(done.flatMap((d) => d.removed).length, 'segment')}; the chain now begins at seq ${last.start.seq} (${last.start.file})`);
      } catch (err) {
        if (err instanceof TranscriptWriteError && err.code === 'ELOCKED') {
          line('skipped: its writer holds the lock (a running warden applies transcripts.retention itself)');
          continue;
        }
        line(`failed: ${err instanceof Error ? err.message : String(err)}`);
        failed += 1;
      }
    }
  } finally {
    await shared?.close();
  }
  return failed > 0 ? 1 : 0;
}

/** What retention would remove from a stopped chain, as if its writer started now; undefined: nothing. */
function planFor(dir: string, instance: string, segments: SegmentEntry[], now: number, retentionMs: number, keepFrom: number | undefined, publicKey: KeyObject | undefined): string | undefined {
  const last = segments[segments.length - 1];
  if (!last) return undefined;
  const tail = findChainTail(dir, instance, DEFAULT_LIMITS.recordBytes);
  const next = (tail.last?.lastSeq ?? 0) + 1;
  const { keep, doomed } = planRetention({
    segments,
    active: { index: last.index + 1, name: segmentFileName(instance, last.index + 1, now), firstSeq: next },
    cutoff: now - retentionMs,
    keepFrom,
    ...(publicKey ? { sealedAt: (e: SegmentEntry) => sealTimeOf(e.path, publicKey) } : {}),
  });
  const oldest = doomed[0];
  const newest = doomed[doomed.length - 1];
  if (!oldest || !newest) return undefined;
  const from = firstRecordOf(oldest.path)?.seq;
  const begins = keep.index > last.index ? next : firstRecordOf(segments.find((s) => s.index === keep.index)?.path ?? '')?.seq;
  const seqs = from !== undefined && begins !== undefined ? `, seq ${from}–${begins - 1}` : '';
  return `${countText(doomed.length, 'segment')} (${oldest.name} … ${newest.name}${seqs}); the chain would begin at ${keep.index > last.index ? 'a new segment' : keep.name}`;
}
