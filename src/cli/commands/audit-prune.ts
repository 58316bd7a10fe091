// `warden audit prune`: applies retention to the chains of instances that are not running (a
// running warden applies transcripts.retention to its own chains). For each chain it opens the
// chain's writer as a restart would — taking the instance's lock, continuing the chain in a new
// segment — lets it remove the segments past the retention after signing where the chain now
// begins, and seals that segment. With `--dry-run` it only says what would go.

import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { findChainTail } from '../../audit/chain-tail.js';
import { DEFAULT_LIMITS, transcriptConfig } from '../../audit/config.js';
import { errnoCode, TranscriptReadError, TranscriptWriteError } from '../../audit/errors.js';
import { writerStopped } from '../../audit/instance-lock.js';
import { loadSigningKey, loadVerifyKey, publicKeyFileFor } from '../../audit/keys.js';
import { firstRecordOf, planRetention, sealTimeOf, type SegmentEntry } from '../../audit/retention.js';
import { readLines } from '../../audit/line-reader.js';
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
      // Targets' secrets are not needed (as for the readers); the signing key and, with ship, the
      // store's connection are, and fail below when they are missing.
      const config = await loadConfig(values.config, { forReaders: true });
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
  if (!existsSync(dir)) {
    writeOut(`no transcript directory at ${dir}: nothing to prune`);
    return 0;
  }
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
  // The key that signs the new beginning; a dry run can do with its public half.
  const key = dryRun ? undefined : await loadSigningKey(keyFile, { create: false });
  const verifyKey = key ? { publicKey: key.publicKey, kid: key.kid } : await loadVerifyKey(publicKeyFileFor(keyFile)).catch(() => undefined);
  if (!verifyKey) throw new TranscriptReadError(`cannot read the transcript key (${keyFile} or its .pub.pem): segments are dated by their signed seals`);
  const cutoff = now.getTime() - retentionMs;
  writeOut(`${dryRun ? 'would remove' : 'removing'} segments whose records are all older than ${new Date(cutoff).toISOString()} from ${dir}`);
  let failed = 0;
  try {
    for (const instance of wanted) {
      const line = (text: string): void => writeOut(`  ${instance}: ${text}`);
      const files = entries.filter((e) => e.instance === instance);
      if (!writerStopped(dir, instance)) {
        line('skipped: its lock is held, or cannot be read (a running warden applies transcripts.retention to its own chains)');
        continue;
      }
      // The chain's newest segment names the key that signs it: another key's checkpoint would
      // not verify against the key auditors pinned (rotate keys with a new instance id instead).
      const newest = files[files.length - 1] as SegmentEntry;
      const kid = firstRecordOf(newest.path)?.kid;
      if (kid !== undefined && kid !== verifyKey.kid) {
        line(`skipped: its chain is signed with key ${kid}, not with this key (${verifyKey.kid}); prune it with the key that signs it`);
        failed += 1;
        continue;
      }
      let keepFrom: number | undefined;
      if (shared) {
        try {
          keepFrom = await shippedUpTo(shared, instance, files);
        } catch (err) {
          line(`skipped: ${err instanceof Error ? err.message : String(err)}; nothing removed`);
          failed += 1;
          continue;
        }
      }
      const plan = planFor(instance, files, now.getTime(), cutoff, keepFrom, verifyKey.publicKey);
      if (!plan.doomed) {
        line(plan.unshipped ? `nothing: ${plan.unshipped} past the age are kept until the shared store holds all their records` : 'nothing older');
        continue;
      }
      if (dryRun) {
        line(`would remove ${plan.doomed}`);
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
        const healthy = writer.healthy;
        await writer.close();
        const last = done[done.length - 1];
        const removed = done.flatMap((d) => d.removed).length;
        if (!healthy) {
          line('failed: the transcript writer could not write (see above); nothing removed');
          failed += 1;
        } else if (!last) line('nothing removed');
        else {
          line(`removed ${countText(removed, 'segment')}; the chain now begins at seq ${last.start.seq} (${last.start.file})`);
          const stuck = done.find((d) => d.notRemoved)?.notRemoved;
          if (stuck) {
            line(`failed: cannot remove ${stuck.file} (${stuck.error}); it and the segments after it up to the new beginning are left (audit verify notes them), run prune again`);
            failed += 1;
          }
        }
      } catch (err) {
        if (err instanceof TranscriptWriteError && err.code === 'ELOCKED') {
          line('skipped: its lock is held (a running warden applies transcripts.retention to its own chains)');
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

/**
 * The lowest seq of the chain the shared store does not hold (retention keeps it and all after):
 * the store's newest record for the instance must be the local record with that seq, byte for
 * byte, or the store holds another chain under this instance id and nothing is removed.
 */
async function shippedUpTo(store: PostgresTranscriptStore, instance: string, files: readonly SegmentEntry[]): Promise<number> {
  let end;
  try {
    end = await store.shippedEnd(instance);
  } catch (err) {
    throw new Error(`cannot ask the shared store what it holds (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!end) return 1;
  const holder = [...files].reverse().find((f) => (firstRecordOf(f.path)?.seq ?? Infinity) <= end.seq);
  if (holder) {
    for await (const raw of readLines(holder.path, { maxLineBytes: DEFAULT_LIMITS.recordBytes + 1 })) {
      if (!raw.complete || !raw.bytes.subarray(0, 32).toString('latin1').startsWith(`{"seq":${end.seq},`)) continue;
      if (raw.bytes.equals(end.line)) return end.seq + 1;
      break;
    }
  }
  throw new Error(`the shared store's copy of instance ${instance} (up to seq ${end.seq}) is not this chain's: another chain was shipped under this instance id`);
}

interface Plan {
  /** What would go, described; undefined: nothing. */
  doomed?: string;
  /** Segments past the age kept only because the store does not hold them yet, described. */
  unshipped?: string;
}

/** What retention would remove from a stopped chain, as if its writer started now. */
function planFor(instance: string, segments: SegmentEntry[], now: number, cutoff: number, keepFrom: number | undefined, publicKey: KeyObject): Plan {
  const last = segments[segments.length - 1];
  if (!last) return {};
  const sealedAt = (e: SegmentEntry): number | undefined => sealTimeOf(e.path, publicKey);
  // The segment a real run's writer would start: its first record follows the chain's last.
  const next = (findChainTail(dirname(last.path), instance, DEFAULT_LIMITS.recordBytes).last?.lastSeq ?? 0) + 1;
  const active = { index: last.index + 1, name: segmentFileName(instance, last.index + 1, now), firstSeq: next };
  const { keep, doomed } = planRetention({ segments, active, cutoff, keepFrom, sealedAt });
  const oldest = doomed[0];
  const newest = doomed[doomed.length - 1];
  if (!oldest || !newest) {
    const all = keepFrom === undefined ? [] : planRetention({ segments, active, cutoff, keepFrom: undefined, sealedAt }).doomed;
    return all.length > 0 ? { unshipped: countText(all.length, 'segment') } : {};
  }
  const from = firstRecordOf(oldest.path)?.seq;
  const begins = keep.index > last.index ? undefined : firstRecordOf(segments.find((s) => s.index === keep.index)?.path ?? '')?.seq;
  const seqs = from !== undefined ? `, seq ${from}–${begins === undefined ? 'its end' : begins - 1}` : '';
  return { doomed: `${countText(doomed.length, 'segment')} (${oldest.name} … ${newest.name}${seqs}); the chain would begin at ${keep.index > last.index ? 'a new segment' : keep.name}` };
}
