// `transcripts:` — the tamper-evident record of every session (see docs/transcripts.md).
//
//   transcripts:
//     enabled: true                 # record every session (default true)
//     dir: ./.warden/transcripts    # default <data_dir>/transcripts
//     instance_id: warden-1         # names this instance's chain; default the host name
//     key_file: keys/transcript.pem # Ed25519 signing key (PKCS#8 PEM, unencrypted), checked at load; default
//                                   # <data_dir>/keys/transcript-ed25519.pem (generated at start when missing)
//     fsync: interval               # each: a statement is durable before it is forwarded; interval: fsync every fsync_interval
//     fsync_interval: 1s
//     sync_stall_timeout: 30s       # an fsync that has not returned for this long: the disk is stuck, failed as a write error
//     segment_max_bytes: 64MiB
//     segment_max_age: 1h
//     retention: 400d               # remove segments whose records are all older than this (default: keep for ever)
//     capture: digest               # none | digest | first | all — result rows kept (as the client received them)
//     capture_rows: 10              # rows kept by `first`
//     on_write_error: refuse        # refuse: no statement runs unrecorded; continue: fail open (explicit choice)
//     wire: true                    # record sessions no rule touches as their bytes, decoded when read (fsync interval)
//     recording_thread: true        # record sessions no rule touches off the agents' path (fsync interval)
//     recording_thread_max_lag: 100ms  # sessions stop being read while the thread is further behind than this
//     recording_thread_batch: 20ms  # how long read bytes gather before the thread takes them (at most a quarter of the max lag)
//     recording_thread_stall_timeout: 30s  # a thread that acknowledges nothing for this long is stuck: failed, as a write error
//     targets: { shop: { capture: first } }   # per-target capture
//     auditors:                     # who may read transcripts over the admin API
//       - { name: audit-team, match: { issuer: azure, groups: [<group id>] } }
//     ship:                         # also copy every record to a shared PostgreSQL store (multi-instance)
//       url: "${env:WARDEN_TRANSCRIPT_STORE_URL}"   # or host/port/database/user/password (+ tls)
//       schema: warden              # tables transcript_records, transcript_instances, transcript_keys
//       batch: 500                  # records per transaction
//       interval: 1s                # how often to look for new records once caught up
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MAX_INSTANCE_CHARS, sanitizeInstanceId, THREAD_INSTANCE_SUFFIX } from '../../audit/segment-files.js';
import type { CaptureMode, CapturePolicy } from '../../audit/config.js';
import { SHIP_DEFAULTS, type TranscriptShipConfig } from '../../audit/ship-config.js';
import type { TranscriptsConfig } from '../types.js';
import { GiB, HOUR, MiB, MINUTE, SECOND } from '../units.js';
import type { Field } from '../validate.js';
import { readSigningKeyFile } from './pem.js';
import { readPostgresConnection, schemaName } from './postgres-store.js';
import { readPrincipalMatch } from './principals.js';

export const CAPTURE_MODES: readonly CaptureMode[] = ['none', 'digest', 'first', 'all'];

export function readTranscripts(
  field: Field,
  ctx: {
    dataDir: string;
    targets?: ReadonlySet<string>;
    issuers?: ReadonlySet<string>;
    /** The transcript readers load the configuration: they use the key's public half only. */
    keyMayBeAbsent?: boolean;
  },
): TranscriptsConfig | undefined {
  if (!field.present) return defaultTranscripts(ctx.dataDir);
  const s = field.section([
    'enabled', 'dir', 'instance_id', 'key_file', 'fsync', 'fsync_interval', 'segment_max_bytes', 'segment_max_age', 'retention',
    'capture', 'capture_rows', 'on_write_error', 'wire', 'recording_thread', 'recording_thread_max_lag', 'recording_thread_batch', 'recording_thread_stall_timeout', 'sync_stall_timeout', 'targets', 'auditors', 'ship',
  ]);
  if (!s) return undefined;
  const d = defaultTranscripts(ctx.dataDir);
  const enabled = s.get('enabled').boolean();
  // The key and the directory are checked (never created) unless transcripts are off; a missing
  // default key is fine (it is generated at start), an explicit key_file must exist.
  const check = enabled !== false;
  const keyField = s.get('key_file');
  const keyFile = check && ctx.keyMayBeAbsent !== true ? readSigningKeyFile(keyField) : keyField.filePath();
  const dirField = s.get('dir');
  const dir = check ? dirField.directoryPath('transcript directory') : dirField.filePath();
  const perTarget = new Map<string, { capture: CaptureMode }>();
  const targetsField = s.get('targets');
  if (targetsField.present) {
    for (const [name, f] of targetsField.entries() ?? []) {
      if (ctx.targets && !ctx.targets.has(name)) f.fail(`no target named "${name}"`);
      const t = f.section(['capture']);
      const mode = t?.get('capture').oneOf(CAPTURE_MODES);
      if (mode) perTarget.set(name, { capture: mode });
    }
  }
  const auditorNames = new Set<string>();
  const auditors = s.get('auditors').list((f) => {
    const a = f.section(['name', 'match']);
    if (!a) return undefined;
    const nameField = a.need('name');
    const name = nameField.string({ check: (v) => (/^[A-Za-z0-9_.-]{1,64}$/.test(v) ? undefined : 'must be 1 to 64 letters, digits, "_", "-" or "."') });
    if (name !== undefined && auditorNames.has(name)) nameField.fail(`duplicate auditor name "${name}"`);
    if (name !== undefined) auditorNames.add(name);
    const match = readPrincipalMatch(a.need('match'), ctx.issuers ? { issuers: ctx.issuers } : {});
    return name === undefined || match === undefined ? undefined : { name, match };
  });
  const ship = s.has('ship') ? readShip(s.get('ship')) : undefined;
  if (s.has('ship') && ship === undefined) return undefined;
  const instance = s.get('instance_id').string({ check: instanceIdProblem });
  const maxLag = s.get('recording_thread_max_lag').duration({ min: 50, max: MINUTE }) ?? d.recordingThreadMaxLagMs;
  const batchField = s.get('recording_thread_batch');
  const batch = batchField.duration({ min: 5, max: 30 * SECOND });
  // Bytes wait for a batch before the thread sees them: a batch near half the lag limit would
  // raise the thread (priority.ts) at every batch, and pause the sessions soon after.
  if (batch !== undefined && batch > maxLag / 4) {
    batchField.fail(`must be at most a quarter of recording_thread_max_lag (${maxLag} ms): raise that too`);
  }
  const retention = s.get('retention').duration({ min: HOUR, max: 100 * 366 * 24 * HOUR });
  return {
    enabled: enabled ?? d.enabled,
    dir: dir ?? d.dir,
    instanceId: instance ?? d.instanceId,
    keyFile: keyFile ?? d.keyFile,
    createKey: !keyField.present,
    fsync: s.get('fsync').oneOf(['each', 'interval'] as const) ?? d.fsync,
    fsyncIntervalMs: s.get('fsync_interval').duration({ min: 10, max: MINUTE }) ?? d.fsyncIntervalMs,
    syncStallMs: s.get('sync_stall_timeout').duration({ min: SECOND, max: 10 * MINUTE }) ?? d.syncStallMs,
    segmentMaxBytes: s.get('segment_max_bytes').bytes({ min: MiB, max: 4 * GiB }) ?? d.segmentMaxBytes,
    segmentMaxAgeMs: s.get('segment_max_age').duration({ min: SECOND, max: 24 * HOUR }) ?? d.segmentMaxAgeMs,
    ...(retention !== undefined ? { retentionMs: retention } : {}),
    capture: s.get('capture').oneOf(CAPTURE_MODES) ?? d.capture,
    captureRows: s.get('capture_rows').integer({ min: 1, max: 100_000 }) ?? d.captureRows,
    onWriteError: s.get('on_write_error').oneOf(['refuse', 'continue'] as const) ?? d.onWriteError,
    wire: s.get('wire').boolean() ?? d.wire,
    recordingThread: s.get('recording_thread').boolean() ?? d.recordingThread,
    recordingThreadMaxLagMs: maxLag,
    recordingThreadBatchMs: batch ?? d.recordingThreadBatchMs,
    recordingThreadStallMs: s.get('recording_thread_stall_timeout').duration({ min: SECOND, max: 10 * MINUTE }) ?? d.recordingThreadStallMs,
    targets: perTarget,
    auditors: auditors ?? d.auditors,
    ...(ship ? { ship } : {}),
  };
}

const SHIP_KEYS = ['url', 'host', 'port', 'database', 'user', 'password', 'tls', 'schema', 'timeout', 'batch', 'interval'] as const;

/** `ship:` — the shared PostgreSQL store, written as the approvals store is (url, or the parts with tls). */
function readShip(field: Field): TranscriptShipConfig | undefined {
  const s = field.section(SHIP_KEYS);
  if (!s) return undefined;
  const schema = s.get('schema').string({ check: schemaName });
  const timeout = s.get('timeout').duration({ min: 100, max: MINUTE });
  const batch = s.get('batch').integer({ min: 1, max: 10_000 });
  const interval = s.get('interval').duration({ min: 10, max: 10 * MINUTE });
  const ok = !(
    (s.has('schema') && schema === undefined) ||
    (s.has('timeout') && timeout === undefined) ||
    (s.has('batch') && batch === undefined) ||
    (s.has('interval') && interval === undefined)
  );
  const ship: TranscriptShipConfig = {
    schema: schema ?? SHIP_DEFAULTS.schema,
    timeout: timeout ?? SHIP_DEFAULTS.timeout,
    batch: batch ?? SHIP_DEFAULTS.batch,
    intervalMs: interval ?? SHIP_DEFAULTS.intervalMs,
  };
  // Read even when the rest is wrong, so its problems are reported too.
  return readPostgresConnection(s, ship) && ok ? ship : undefined;
}

/** Why `v` cannot name an instance's chain (file names, the shared store's key), if it cannot. */
function instanceIdProblem(v: string): string | undefined {
  if (sanitizeInstanceId(v) !== v) return `must be 1 to ${MAX_INSTANCE_CHARS} letters, digits, "-" and ".", starting with a letter or digit`;
  if (v.endsWith(THREAD_INSTANCE_SUFFIX)) return `may not end in "${THREAD_INSTANCE_SUFFIX}": "<instance_id>${THREAD_INSTANCE_SUFFIX}" names an instance's recording-thread chain`;
  return undefined;
}

/** The host name as an instance id; one ending in `.rec` (a recording thread's chain) ends in `-rec` instead. */
function hostInstanceId(): string {
  const id = sanitizeInstanceId(hostname());
  return id.endsWith(THREAD_INSTANCE_SUFFIX) ? `${id.slice(0, -THREAD_INSTANCE_SUFFIX.length)}-rec` : id;
}

/** What the relays capture of a target's result rows (none when transcripts are off). */
export function capturePolicyFor(t: TranscriptsConfig | undefined, target: string): CapturePolicy {
  return { mode: t?.targets.get(target)?.capture ?? t?.capture ?? 'none', firstRows: t?.captureRows ?? 10 };
}

export function defaultTranscripts(dataDir: string): TranscriptsConfig {
  return {
    enabled: true,
    dir: join(dataDir, 'transcripts'),
    instanceId: hostInstanceId(),
    keyFile: join(dataDir, 'keys', 'transcript-ed25519.pem'),
    createKey: true,
    fsync: 'interval',
    fsyncIntervalMs: SECOND,
    syncStallMs: 30 * SECOND,
    segmentMaxBytes: 64 * MiB,
    segmentMaxAgeMs: HOUR,
    capture: 'digest',
    captureRows: 10,
    onWriteError: 'refuse',
    wire: true,
    recordingThread: true,
    recordingThreadMaxLagMs: 100,
    recordingThreadBatchMs: 20,
    recordingThreadStallMs: 30 * SECOND,
    targets: new Map(),
    auditors: [],
  };
}
