// verifyStore: the checks of verify() over the shared store's rows instead of the files. The rows of
// one segment (its `file` column), in seq order, stand for the segment file's lines, so every check
// is the same code: each record's hash, seq continuity, links, checkpoint and seal signatures
// (verify-segment.ts), the links between segments and the shipped head (verify.ts). In findings,
// `file` is the segment, `line` the row's place in it (the line it holds in the segment file when
// nothing is missing), `seq` the row's key.
//
// On top, each row's columns must agree with its line: a row whose seq is not its record's seq was
// moved (reordered), and a `kind`, `sid`, `ts` or `segment` that the line does not say was edited,
// since queries over those columns would otherwise find what the records do not hold.
//
// Keys: by default each instance's records are checked against the public keys it registered in the
// store — which whoever can alter the rows can also replace. Pin the keys (`publicKey`) to rule that out.
import { DEFAULT_LIMITS } from './config.js';
import { TranscriptReadError } from './errors.js';
import { parseLine } from './frame.js';
import { verifyMark } from './jws.js';
import { verifyKeyFromPem, type VerifyKey } from './keys.js';
import type { RawLine } from './line-reader.js';
import { parseSegmentFileName, type DirEntry } from './segment-files.js';
import type { PostgresTranscriptStore, StoreRow } from './store-postgres.js';
import { capFindings, FINDING, finding, type Finding } from './verify-findings.js';
import { verifySegmentLines } from './verify-segment.js';
import { checkInstance, summarizeSegments, type HeadInfo, type InstanceSummary, type Scanned, type VerifyReport } from './verify.js';

/** Where findings about an instance's shipped head point. */
const HEAD_ROW = 'transcript_instances';

export interface StoreVerifyOptions {
  /** Trusted keys for every instance; default each instance's keys as registered in the store. */
  publicKey?: VerifyKey | readonly VerifyKey[];
  /** Only this instance. */
  instance?: string;
  maxRecordBytes?: number;
}

export interface StoreVerifyReport extends VerifyReport {
  /** True when the keys came from the store itself (not pinned). */
  keysFromStore: boolean;
}

export async function verifyStore(store: PostgresTranscriptStore, options: StoreVerifyOptions = {}): Promise<StoreVerifyReport> {
  const pinned = options.publicKey === undefined ? undefined : Array.isArray(options.publicKey) ? (options.publicKey as readonly VerifyKey[]) : [options.publicKey as VerifyKey];
  if (pinned && pinned.length === 0) throw new TranscriptReadError('verify needs the public key that signed the transcripts');
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_LIMITS.recordBytes;
  const findings: Finding[] = [];
  const instances: InstanceSummary[] = [];
  const scannedAll: Scanned[] = [];
  const keyIds = new Set<string>(pinned?.map((k) => k.kid));
  const names = (await store.instances()).filter((i) => options.instance === undefined || i === options.instance);
  for (const instance of names) {
    const keys = pinned ?? (await registeredKeys(store, instance, findings));
    for (const k of keys) keyIds.add(k.kid);
    const head = await shippedHead(store, instance, keys, findings);
    const scanned: Scanned[] = [];
    for (const seg of await store.segmentsOf(instance)) {
      const name = parseSegmentFileName(seg.file);
      if (!name || name.instance !== instance) {
        findings.push(finding(FINDING.corrupt, `rows of instance ${instance} name '${seg.file}', which is not a segment of that instance`, { file: seg.file, instance }));
      }
      const index = name?.index ?? 0;
      const entry: Extract<DirEntry, { kind: 'segment' }> = { kind: 'segment', path: '', size: seg.bytes, name: seg.file, instance, index };
      const lines = rowLines(store.rowsOf(instance, seg.file), { instance, file: seg.file, segment: name?.index, maxRecordBytes }, findings);
      const result = await verifySegmentLines(lines, seg.file, keys, { maxRecordBytes, ...(head ? { want: new Set([head.mark.seq]) } : {}) });
      findings.push(...result.findings.map((f) => ({ ...f, instance })));
      scanned.push({ entry, result });
    }
    instances.push(checkInstance(instance, scanned, head, findings));
    scannedAll.push(...scanned);
  }
  const capped = capFindings(findings);
  return {
    ok: !capped.some((f) => f.severity === 'error'),
    path: store.name,
    keyIds: [...keyIds],
    files: scannedAll.length,
    records: scannedAll.reduce((n, s) => n + s.result.records, 0),
    instances,
    segments: summarizeSegments(scannedAll, capped),
    findings: capped,
    keysFromStore: pinned === undefined,
  };
}

async function registeredKeys(store: PostgresTranscriptStore, instance: string, findings: Finding[]): Promise<VerifyKey[]> {
  const keys: VerifyKey[] = [];
  for (const { kid, pem } of await store.keysOf(instance)) {
    try {
      const key = await verifyKeyFromPem(pem, `the store's key ${kid} of ${instance}`);
      if (key.kid !== kid) {
        findings.push(finding(FINDING.corrupt, `the store's public key row ${kid} of instance ${instance} holds the key ${key.kid}`, { instance }));
      }
      keys.push(key);
    } catch (err) {
      findings.push(finding(FINDING.corrupt, `the store's public key ${kid} of instance ${instance} is not usable: ${(err as Error).message}`, { instance }));
    }
  }
  if (keys.length === 0) {
    findings.push(finding(FINDING.badSignature, `instance ${instance} has no public key in the store: its checkpoints and seals cannot be checked (pass its key)`, { instance }));
  }
  return keys;
}

async function shippedHead(store: PostgresTranscriptStore, instance: string, keys: readonly VerifyKey[], findings: Finding[]): Promise<HeadInfo | undefined> {
  const jws = await store.headOf(instance);
  if (jws === undefined) return undefined;
  const check = await verifyMark(jws, keys);
  if (!check.ok) {
    findings.push(finding(FINDING.badSignature, `the shipped head of instance ${instance} is not valid: ${check.reason}`, { file: HEAD_ROW, instance }));
    return undefined;
  }
  if (check.mark.instance !== instance) {
    findings.push(finding(FINDING.corrupt, `the shipped head of instance ${instance} is the head of instance ${check.mark.instance}`, { file: HEAD_ROW, instance }));
    return undefined;
  }
  return { file: HEAD_ROW, mark: check.mark };
}

/** The rows of a segment as its lines, checking each row's columns against its line on the way. */
async function* rowLines(
  rows: AsyncIterable<StoreRow>,
  at: { instance: string; file: string; segment: number | undefined; maxRecordBytes: number },
  findings: Finding[],
): AsyncGenerator<RawLine> {
  let position = 0;
  for await (const row of rows) {
    position += 1;
    checkColumns(row, position, at, findings);
    yield { bytes: row.line, lineNo: position, offset: 0, length: row.line.length, complete: true, oversized: row.line.length > at.maxRecordBytes };
  }
}

function checkColumns(row: StoreRow, position: number, at: { instance: string; file: string; segment: number | undefined }, findings: Finding[]): void {
  const parsed = parseLine(row.line, false);
  if (!parsed.ok) return; // the segment check reports the line itself
  const r = parsed.record;
  const where = { file: at.file, instance: at.instance, line: position, seq: row.seq };
  if (r.seq !== row.seq) {
    findings.push(finding(FINDING.reordered, `row seq ${row.seq} of instance ${at.instance} holds the record of seq ${r.seq} (${r.k}): rows were moved or their seq changed`, where));
  }
  const edited: string[] = [];
  if (row.kind !== r.k) edited.push(`kind '${row.kind}' (the record is a ${r.k})`);
  if ((row.sid ?? undefined) !== r.sid) edited.push(`sid ${row.sid === null ? 'NULL' : `'${row.sid}'`} (the record's is ${r.sid === undefined ? 'none' : `'${r.sid}'`})`);
  const recordTs = Date.parse(r.ts);
  const rowTs = row.ts === null ? Number.NaN : row.ts.getTime();
  if (!(Number.isNaN(recordTs) && Number.isNaN(rowTs)) && recordTs !== rowTs) edited.push(`ts ${row.ts === null ? 'NULL' : row.ts.toISOString()} (the record's is ${r.ts})`);
  if (at.segment !== undefined && row.segment !== at.segment) edited.push(`segment ${row.segment} (the row is in ${at.file}, segment ${at.segment})`);
  if (edited.length > 0) {
    findings.push(finding(FINDING.edited, `row seq ${row.seq} of instance ${at.instance}: its columns no longer match its record: ${edited.join('; ')}`, where));
  }
}
