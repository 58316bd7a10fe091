// `verify(path, { publicKey })`: checks a transcript directory (or one segment file) and reports
// exactly what is broken and where. Per segment (verify-segment.ts): record hashes, sequence,
// links, checkpoint and seal signatures. Per instance (here): segment numbers and names, the links
// from each segment's `open` record to the end of the previous segment, crash recoveries, and the
// signed head file, which catches removal of the newest records. A torn tail (a partial last record
// of the newest unsealed segment, left by a crash) is a warning, not tampering. Foreign and corrupt
// files are reported, never thrown on.

import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { DEFAULT_LIMITS } from './config.js';
import { errnoCode, TranscriptReadError } from './errors.js';
import { GENESIS_HASH } from './frame.js';
import { verifyMark, type ChainStart, type SignedMark } from './jws.js';
import type { VerifyKey } from './keys.js';
import { listTranscriptDir, parseSegmentFileName, segmentsOf, type DirEntry } from './segment-files.js';
import { parseHeadFile } from './head-file.js';
import { countText } from './text.js';
import { capFindings, FINDING, finding, type Finding } from './verify-findings.js';
import { verifySegment, type SegmentResult } from './verify-segment.js';

export { FINDING, type Finding, type FindingKind, type Severity } from './verify-findings.js';

export interface VerifyOptions {
  /** The trusted public key(s). Pin them outside the warden host. */
  publicKey: VerifyKey | readonly VerifyKey[];
  maxRecordBytes?: number;
  onProgress?: (progress: VerifyProgress) => void;
}

export interface VerifyProgress {
  files: number;
  filesDone: number;
  bytes: number;
  bytesDone: number;
}

export interface SegmentSummary {
  file: string;
  instance?: string;
  segment?: number;
  records: number;
  firstSeq?: number;
  lastSeq?: number;
  sealed: boolean;
  checkpoints: number;
  tornBytes: number;
  /** intact: sealed, no error; open: not sealed, no error; broken: an error points here. */
  status: 'intact' | 'open' | 'broken';
}

export interface InstanceSummary {
  instance: string;
  segments: number;
  records: number;
  firstSeq?: number;
  lastSeq?: number;
  /** The newest whole record of the newest segment. */
  lastIntact?: { seq: number; file: string; line: number };
  /** Highest seq covered by a valid signature (checkpoint or seal). */
  lastSigned?: number;
  /** Records after lastSigned: not yet covered by any signature. */
  unsigned: number;
  head?: { typ: SignedMark['typ']; seq: number; ts: string };
  /** Retention removed the segments before `file`: the chain begins at seq `seq` (removed at `ts`). */
  retention?: { file: string; seq: number; ts: string };
}

export interface VerifyReport {
  /** True when no finding is an error. */
  ok: boolean;
  path: string;
  keyIds: string[];
  files: number;
  records: number;
  instances: InstanceSummary[];
  segments: SegmentSummary[];
  findings: Finding[];
}

type SegmentEntry = Extract<DirEntry, { kind: 'segment' }>;

/** One segment: where it is (a file, or the store's rows of it) and what its own checks found. */
export interface Scanned {
  entry: SegmentEntry;
  result: SegmentResult;
}

export async function verify(path: string, options: VerifyOptions): Promise<VerifyReport> {
  const keys = Array.isArray(options.publicKey) ? (options.publicKey as readonly VerifyKey[]) : [options.publicKey as VerifyKey];
  if (keys.length === 0) throw new TranscriptReadError('verify needs the public key that signed the transcripts');
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_LIMITS.recordBytes;
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new TranscriptReadError(`cannot read ${path}: ${errnoCode(err) ?? String(err)}`);
  }
  const findings: Finding[] = [];
  let entries: DirEntry[];
  if (isDir) {
    try {
      entries = listTranscriptDir(path);
    } catch (err) {
      throw new TranscriptReadError(`cannot list ${path}: ${errnoCode(err) ?? String(err)}`);
    }
  } else {
    const name = basename(path);
    const seg = parseSegmentFileName(name) ?? { name, instance: '', index: 0 };
    entries = [{ kind: 'segment', path, size: statSync(path).size, ...seg }];
  }
  for (const e of entries) {
    if (e.kind === 'foreign') findings.push(finding(FINDING.foreignFile, `${e.name} is not a transcript file (${e.reason}); ignored`, { file: e.name }));
  }
  const heads = isDir ? await readHeads(entries, keys, findings) : new Map<string, HeadInfo>();
  const segments = segmentsOf(entries);
  const progress: VerifyProgress = { files: segments.length, filesDone: 0, bytes: segments.reduce((n, s) => n + s.size, 0), bytesDone: 0 };
  options.onProgress?.({ ...progress });
  const scanned: Scanned[] = [];
  for (const entry of segments) {
    const head = heads.get(entry.instance);
    const result = await verifySegment(entry.path, entry.name, keys, {
      maxRecordBytes,
      ...(head ? { want: new Set([head.mark.seq]) } : {}),
      onBytes: (n) => {
        progress.bytesDone += n;
        options.onProgress?.({ ...progress });
      },
    });
    for (const f of result.findings) findings.push(f);
    progress.filesDone += 1;
    options.onProgress?.({ ...progress });
    scanned.push({ entry, result });
  }
  const instances: InstanceSummary[] = [];
  if (isDir) {
    const byInstance = new Map<string, Scanned[]>();
    for (const s of scanned) {
      const instance = s.result.open?.instance ?? s.entry.instance;
      const list = byInstance.get(instance);
      if (list) list.push(s);
      else byInstance.set(instance, [s]);
    }
    for (const instance of new Set([...byInstance.keys(), ...heads.keys()])) {
      instances.push(checkInstance(instance, byInstance.get(instance) ?? [], heads.get(instance), findings));
    }
  } else {
    for (const s of scanned) singleFileNotes(s, findings);
  }
  const capped = capFindings(findings);
  return {
    ok: !capped.some((f) => f.severity === 'error'),
    path,
    keyIds: keys.map((k) => k.kid),
    files: entries.length,
    records: scanned.reduce((n, s) => n + s.result.records, 0),
    instances,
    segments: summarizeSegments(scanned, capped),
    findings: capped,
  };
}

/** Per segment: records, seq range, seal, and whether an error points at it. */
export function summarizeSegments(scanned: readonly Scanned[], findings: readonly Finding[]): SegmentSummary[] {
  const errorFiles = new Set(findings.filter((f) => f.severity === 'error' && f.file !== undefined).map((f) => f.file));
  return scanned.map(({ entry, result: r }) => ({
    file: entry.name,
    ...(r.open ? { instance: r.open.instance, segment: r.open.segment } : entry.instance ? { instance: entry.instance, segment: entry.index } : {}),
    records: r.records,
    ...(r.first ? { firstSeq: r.first.seq } : {}),
    ...(r.last ? { lastSeq: r.last.seq } : {}),
    sealed: r.sealed,
    checkpoints: r.checkpoints,
    tornBytes: r.torn?.bytes ?? 0,
    status: errorFiles.has(entry.name) ? 'broken' : r.sealed ? 'intact' : 'open',
  }));
}

// ---- head files -------------------------------------------------------------------------------

/** An instance's signed head (its file, or the store's copy), already verified. */
export interface HeadInfo {
  file: string;
  mark: SignedMark;
}

async function readHeads(entries: DirEntry[], keys: readonly VerifyKey[], findings: Finding[]): Promise<Map<string, HeadInfo>> {
  const heads = new Map<string, HeadInfo>();
  for (const e of entries) {
    if (e.kind !== 'head') continue;
    let text: string;
    try {
      text = readFileSync(e.path, 'utf8');
    } catch (err) {
      findings.push(finding(FINDING.corrupt, `cannot read ${e.name}: ${errnoCode(err) ?? String(err)}`, { file: e.name }));
      continue;
    }
    const jws = parseHeadFile(text);
    if (jws === undefined) {
      findings.push(finding(FINDING.corrupt, `${e.name} is not a transcript head file`, { file: e.name, instance: e.instance }));
      continue;
    }
    const check = await verifyMark(jws, keys);
    if (!check.ok) {
      findings.push(finding(FINDING.badSignature, `the head file ${e.name} is not valid: ${check.reason}`, { file: e.name, instance: e.instance }));
      continue;
    }
    if (check.mark.instance !== e.instance) {
      findings.push(finding(FINDING.corrupt, `${e.name} holds the head of instance ${check.mark.instance}`, { file: e.name, instance: e.instance }));
      continue;
    }
    heads.set(e.instance, { file: e.name, mark: check.mark });
  }
  return heads;
}

// ---- one instance's chain of segments ------------------------------------------------------------

function indexOf(s: Scanned): number {
  return s.result.open?.segment ?? s.entry.index;
}

/** Links one instance's segments into its chain: numbering, names, links, crash recoveries, the head. */
export function checkInstance(instance: string, scanned: Scanned[], head: HeadInfo | undefined, findings: Finding[]): InstanceSummary {
  const at = (s: Scanned) => ({ file: s.entry.name, instance, segment: indexOf(s) });
  // Names against contents.
  for (const s of scanned) {
    const open = s.result.open;
    if (open && (open.segment !== s.entry.index || open.instance !== s.entry.instance || open.file !== s.entry.name)) {
      findings.push(
        finding(FINDING.segmentOrder, `${s.entry.name} holds segment ${open.segment} of instance ${open.instance}, written as ${open.file}: segment files were renamed or swapped`, at(s)),
      );
    }
  }
  const declaredAbandoned = new Set(scanned.flatMap((s) => s.result.open?.abandoned ?? []));
  const withRecords: Scanned[] = [];
  const newestIndex = scanned.reduce((m, s) => Math.max(m, indexOf(s)), 0);
  for (const s of scanned) {
    if (s.result.first) {
      withRecords.push(s);
    } else if (declaredAbandoned.has(s.entry.name)) {
      findings.push(finding(FINDING.crashRecovered, `${s.entry.name} holds no whole record: the writer stopped while creating it, and a later segment records that`, at(s)));
    } else if (indexOf(s) === newestIndex && s.result.bytes === (s.result.torn?.bytes ?? 0)) {
      // Empty, or one partial record: what a writer that died creating it leaves.
      findings.push(finding(FINDING.tornTail, `${s.entry.name} holds no whole record (${s.result.bytes} bytes): the writer stopped while creating it`, at(s)));
    } else if (indexOf(s) !== newestIndex || !s.result.findings.some((f) => f.severity === 'error')) {
      // (The newest file with whole lines that are not records is no writer's leftover either:
      // those lines are reported already.)
      findings.push(finding(FINDING.corrupt, `${s.entry.name} holds no transcript record`, at(s)));
    }
  }
  withRecords.sort((a, b) => indexOf(a) - indexOf(b) || a.entry.name.localeCompare(b.entry.name));
  const chain: Scanned[] = [];
  for (const s of withRecords) {
    const prior = chain[chain.length - 1];
    if (prior && indexOf(prior) === indexOf(s)) {
      findings.push(finding(FINDING.duplicateSegment, `${s.entry.name} holds segment ${indexOf(s)} a second time (also in ${prior.entry.name})`, at(s)));
      continue;
    }
    chain.push(s);
  }
  // Where the chain begins, as its newest signed mark says (retention): segments before that may be
  // absent, and those still present (a removal that did not finish: a crash, a file that could not
  // be deleted) are checked on their own but are not part of the chain any more.
  const claim = newestMark(chain, head);
  const start = claim?.start;
  if (start && claim) {
    const leftovers = chain.filter((s) => indexOf(s) < start.segment);
    if (leftovers.length > 0) {
      chain.splice(0, leftovers.length);
      const names = leftovers.map((s) => s.entry.name);
      findings.push(
        finding(
          FINDING.retention,
          `${countText(leftovers.length, 'segment')} before the chain's signed beginning (${start.file}, seq ${start.seq}) ${leftovers.length === 1 ? 'is' : 'are'} still present (${names[0]}${names.length > 1 ? ` … ${names[names.length - 1]}` : ''}): retention removed what came before them but did not finish; the writer removes them at its next check`,
          at(leftovers[0] as Scanned),
        ),
      );
    }
  }
  const presentIndexes = new Set(scanned.map(indexOf));
  // A writer creates a segment only after the one before it: an empty newest file (a crash while
  // creating it) follows the newest segment with records directly, or segments between are gone.
  const newestWithRecords = chain.length > 0 ? indexOf(chain[chain.length - 1] as Scanned) : 0;
  const empty = scanned.find((s) => !s.result.first && indexOf(s) === newestIndex);
  if (empty && newestIndex > newestWithRecords + 1) {
    const missing = range(newestWithRecords + 1, newestIndex).filter((i) => !presentIndexes.has(i));
    if (missing.length > 0) findings.push(finding(FINDING.missingSegment, `segment(s) ${missing.join(', ')} of instance ${instance} are missing (before ${empty.entry.name})`, at(empty)));
  }
  const summary: InstanceSummary = { instance, segments: chain.length, records: chain.reduce((n, s) => n + s.result.records, 0), unsigned: 0 };
  if (head) summary.head = { typ: head.mark.typ, seq: head.mark.seq, ts: head.mark.ts };
  const first = chain[0];
  if (!first) {
    if (head) {
      findings.push(finding(FINDING.truncated, `the signed head names seq ${head.mark.seq} of instance ${instance} (${head.mark.file}), but no segment of it is present`, { file: head.file, instance }));
    }
    return summary;
  }
  // The beginning of the chain: its first record, or where retention left it.
  const firstOpen = first.result.open;
  const fromRetention = (s: ChainStart): boolean => indexOf(first) === s.segment && first.result.first?.seq === s.seq && first.result.first.prev === s.prev;
  if (start && claim && indexOf(first) > start.segment) {
    const missing = range(start.segment, indexOf(first)).filter((i) => !presentIndexes.has(i));
    findings.push(
      finding(
        FINDING.missingSegment,
        `segment(s) ${missing.join(', ')} of instance ${instance} are missing: retention removed only the segments before ${start.file} (seq ${start.seq}), as the signed ${claim.typ} after seq ${claim.seq} (${claim.file}) says`,
        at(first),
      ),
    );
  } else if (start && claim && indexOf(first) === start.segment) {
    if (fromRetention(start)) {
      summary.retention = { file: start.file, seq: start.seq, ts: start.ts };
      findings.push(finding(FINDING.retention, `records before seq ${start.seq} (the segments before ${start.file}) were removed by retention at ${start.ts}, as the signed ${claim.typ} after seq ${claim.seq} (${claim.file}) says`, at(first)));
    } else {
      findings.push(
        finding(
          FINDING.chainBreak,
          `${first.entry.name} does not begin where the signed start says (seq ${start.seq}, after the record hashed ${start.prev.slice(0, 12)}…): its first record is seq ${first.result.first?.seq ?? '?'}`,
          at(first),
        ),
      );
    }
  } else if (firstOpen && firstOpen.after !== null && chain.some((s) => s.result.newestMark?.start && fromRetention(s.result.newestMark.start))) {
    // Segments the newest start leaves out are still here (their removal was interrupted): the
    // chain begins where an earlier retention left it.
    const earlier = chain.map((s) => s.result.newestMark?.start).find((s): s is ChainStart => s !== undefined && fromRetention(s)) as ChainStart;
    summary.retention = { file: earlier.file, seq: earlier.seq, ts: earlier.ts };
    findings.push(finding(FINDING.retention, `records before seq ${earlier.seq} (the segments before ${earlier.file}) were removed by retention at ${earlier.ts}`, at(first)));
  } else if (firstOpen && firstOpen.after === null) {
    if (first.result.first?.prev !== GENESIS_HASH) {
      findings.push(finding(FINDING.chainBreak, `${first.entry.name} starts a chain but its first record does not link to the genesis hash`, at(first)));
    }
    const missing = range(1, indexOf(first)).filter((i) => !presentIndexes.has(i));
    if (missing.length > 0) findings.push(finding(FINDING.missingSegment, `segment(s) ${missing.join(', ')} of instance ${instance} are missing`, at(first)));
  } else {
    const after = firstOpen?.after;
    findings.push(
      finding(
        FINDING.missingSegment,
        after
          ? `the start of instance ${instance}'s chain is missing: ${first.entry.name} continues from segment ${after.segment} (${after.file}, records up to seq ${after.lastSeq}), which is not present`
          : `the start of instance ${instance}'s chain is missing: ${first.entry.name} has no open record`,
        at(first),
      ),
    );
  }
  // Links between consecutive segments.
  for (let i = 1; i < chain.length; i++) {
    linkSegments(chain[i - 1] as Scanned, chain[i] as Scanned, presentIndexes, declaredAbandoned, instance, findings);
  }
  // The newest segment.
  const newest = chain[chain.length - 1] as Scanned;
  const last = newest.result.last;
  if (first.result.first) summary.firstSeq = first.result.first.seq;
  if (last) summary.lastSeq = last.seq;
  if (last) summary.lastIntact = { seq: last.seq, file: newest.entry.name, line: last.line };
  const signed = chain.reduce<number | undefined>((m, s) => (s.result.signedSeq === undefined ? m : Math.max(m ?? 0, s.result.signedSeq)), undefined);
  if (signed !== undefined) summary.lastSigned = signed;
  summary.unsigned = last ? last.seq - (signed ?? (first.result.first?.seq ?? 1) - 1) - (newest.result.sealed ? 1 : 0) : 0;
  let headCut = false;
  if (head && last) {
    // The head copies the newest durable checkpoint or seal, which is itself the record after mark.seq.
    const markSeq = head.mark.seq + 1;
    if (markSeq > last.seq) {
      headCut = true;
      findings.push(
        finding(
          FINDING.truncated,
          `the newest records were removed: the signed head is the ${head.mark.typ} at seq ${markSeq} of ${head.mark.file} (${head.mark.ts}), but the newest record present is seq ${last.seq} (${newest.entry.name} line ${last.line})`,
          { file: head.file, instance, seq: last.seq + 1 },
        ),
      );
    } else {
      const found = chain.map((s) => s.result.wanted.get(head.mark.seq)).find((x) => x !== undefined);
      if (found && found.hash !== head.mark.hash) {
        findings.push(finding(FINDING.checkpointMismatch, `the signed head names seq ${head.mark.seq} with a different hash: records up to it were rewritten`, { file: head.file, instance, seq: head.mark.seq }));
      }
    }
  } else if (!head && chain.some((s) => s.result.checkpoints > 0 || s.result.sealed)) {
    findings.push(finding(FINDING.headMissing, `instance ${instance} has no head file: removal of its newest records could go unnoticed`, { instance }));
  }
  if (!newest.result.sealed) {
    const signedText = signed === undefined ? 'no record of it is covered by a signature yet' : `records after seq ${signed} (${summary.unsigned}) are not covered by a signature yet`;
    findings.push(finding(FINDING.openSegment, `${newest.entry.name} is not sealed (the writer is running, or stopped without closing); ${signedText}`, at(newest)));
    const torn = newest.result.torn;
    if (torn && !headCut && last) {
      findings.push(
        finding(
          FINDING.tornTail,
          `${newest.entry.name} ends in a partial record (${torn.bytes} bytes at line ${torn.line}) left by an interrupted write; the last intact record is seq ${last.seq} at line ${last.line}`,
          { ...at(newest), line: torn.line },
        ),
      );
    }
  }
  return summary;
}

/** The newest valid checkpoint or seal of the chain or its head: it says where the chain begins. */
function newestMark(chain: readonly Scanned[], head: HeadInfo | undefined): SignedMark | undefined {
  let newest = head?.mark;
  for (const s of chain) {
    const m = s.result.newestMark;
    if (m && (!newest || m.seq > newest.seq)) newest = m;
  }
  return newest;
}

function linkSegments(a: Scanned, b: Scanned, present: Set<number>, abandoned: Set<string>, instance: string, findings: Finding[]): void {
  const where = { file: b.entry.name, instance, segment: indexOf(b) };
  const aLast = a.result.last;
  const bFirst = b.result.first;
  if (!aLast || !bFirst) return;
  const after = b.result.open?.after;
  const skipped = range(indexOf(a) + 1, indexOf(b));
  const explained = new Set([...skipped.filter((i) => present.has(i)), ...[...abandoned].map((n) => parseSegmentFileName(n)?.index)]);
  const missing = skipped.filter((i) => !explained.has(i));
  // A writer numbers its segment after the highest-numbered file it finds, whatever that file
  // holds (one dropped into the directory, say). Numbers it skipped held nothing of this chain
  // when its open record names `a` as its predecessor and the chain goes on from a's last record:
  // records removed from between would break the seq and the hashes, which no one can forge.
  const linked =
    after !== undefined &&
    after !== null &&
    after.segment === indexOf(a) &&
    after.file === a.entry.name &&
    after.lastSeq === aLast.seq &&
    after.lastHash === aLast.hash &&
    bFirst.seq === aLast.seq + 1 &&
    bFirst.prev === aLast.hash;
  if (missing.length > 0 && !linked) {
    const list = missing.length === 1 ? `segment ${missing[0]}` : `segments ${missing.join(', ')}`;
    findings.push(
      finding(
        FINDING.missingSegment,
        `${list} of instance ${instance} ${missing.length === 1 ? 'is' : 'are'} missing: records seq ${aLast.seq + 1}–${bFirst.seq - 1} between ${a.entry.name} and ${b.entry.name} are gone`,
        { ...where, seq: aLast.seq + 1 },
      ),
    );
    return;
  }
  if (!after) {
    findings.push(finding(FINDING.chainBreak, `${b.entry.name} does not continue the chain of ${a.entry.name} (it has no link to a previous segment)`, where));
    return;
  }
  if (after.lastSeq > aLast.seq) {
    findings.push(
      finding(
        FINDING.truncated,
        `the end of ${a.entry.name} was cut off: it ends at seq ${aLast.seq} (line ${aLast.line}), but ${b.entry.name} continues from seq ${after.lastSeq}${after.sealed ? ' and its seal' : ''} (${after.lastSeq - aLast.seq} record(s) gone)`,
        { file: a.entry.name, instance, segment: indexOf(a), seq: aLast.seq + 1 },
      ),
    );
    return;
  }
  if (bFirst.prev !== aLast.hash || bFirst.seq !== aLast.seq + 1 || after.lastHash !== aLast.hash || after.lastSeq !== aLast.seq) {
    findings.push(
      finding(FINDING.chainBreak, `${b.entry.name} does not continue from the end of ${a.entry.name} (seq ${aLast.seq}): it links to seq ${after.lastSeq}, another hash`, { ...where, seq: bFirst.seq }),
    );
    return;
  }
  if (!a.result.sealed) {
    const torn = a.result.torn?.bytes ?? 0;
    if (after.sealed) {
      findings.push(finding(FINDING.truncated, `the seal of ${a.entry.name} was removed (${b.entry.name} says it was sealed)`, { file: a.entry.name, instance, segment: indexOf(a) }));
    } else if (after.tornBytes !== torn) {
      findings.push(
        finding(FINDING.corrupt, `${a.entry.name} now ends in ${torn} partial bytes, but ${after.tornBytes} were there when the writer recovered`, { file: a.entry.name, instance, segment: indexOf(a) }),
      );
    } else {
      findings.push(
        finding(
          FINDING.crashRecovered,
          `${a.entry.name} was left unsealed at seq ${aLast.seq}${torn > 0 ? ` with a ${torn}-byte partial record` : ''} (the writer stopped); ${b.entry.name} records the recovery and continues the chain`,
          { file: a.entry.name, instance, segment: indexOf(a) },
        ),
      );
    }
  } else if (!after.sealed) {
    findings.push(finding(FINDING.chainBreak, `${b.entry.name} says ${a.entry.name} was not sealed, but it is`, where));
  }
  const unusable = after.headUnusable;
  if (unusable) {
    const kind = unusable.reason === 'corrupt' ? FINDING.corrupt : unusable.reason === 'bad-signature' ? FINDING.badSignature : FINDING.headMissing;
    findings.push(
      finding(
        kind,
        `when ${b.entry.name} was opened, the head file of instance ${instance} ${unusable.detail}: removal of records from the end of ${a.entry.name} before then could not be checked`,
        { ...where, seq: bFirst.seq },
      ),
    );
  }
  // headSeq is what the head's mark covered; the mark itself was the record after it.
  if (after.headSeq !== undefined && after.headSeq + 1 > after.lastSeq) {
    findings.push(
      finding(
        FINDING.truncated,
        `records were removed before the writer restarted: the signed head then ended at seq ${after.headSeq + 1}, but the chain ended at seq ${after.lastSeq} (${a.entry.name})`,
        { file: a.entry.name, instance, segment: indexOf(a), seq: after.lastSeq + 1 },
      ),
    );
  }
}

function singleFileNotes(s: Scanned, findings: Finding[]): void {
  const r = s.result;
  if (!r.last || r.sealed) return;
  const where = { file: s.entry.name };
  findings.push(finding(FINDING.openSegment, `${s.entry.name} is not sealed; records after seq ${r.signedSeq ?? (r.first?.seq ?? 1) - 1} are not covered by a signature`, where));
  if (r.torn) {
    findings.push(finding(FINDING.tornTail, `${s.entry.name} ends in a partial record (${r.torn.bytes} bytes at line ${r.torn.line}); the last intact record is seq ${r.last.seq} at line ${r.last.line}`, { ...where, line: r.torn.line }));
  }
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}
