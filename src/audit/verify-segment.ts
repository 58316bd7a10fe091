// Verification of one segment file on its own: every record's hash, the sequence inside the
// segment, the links between consecutive records, and the signatures of its checkpoints and seal.
// Links between segments and the head file are checked by verify.ts.

import { FORMAT_VERSIONS_READ, parseLine, RECORD_KIND, type RecordKind } from './frame.js';
import { verifyMark, type SignedMark } from './jws.js';
import type { VerifyKey } from './keys.js';
import { readLines, type RawLine } from './line-reader.js';
import type { OpenAfter, OpenData } from './segment-writer.js';
import { FINDING, finding, FindingList, type Finding, type FindingSink } from './verify-findings.js';

/** One parsed record, reduced to what verification needs. */
export interface Entry {
  line: number;
  seq: number;
  prev: string;
  hash: string;
  hashOk: boolean;
  kind: RecordKind;
  jws?: string;
  open?: OpenData;
}

interface BadLine {
  line: number;
  seq?: number;
}

export interface SegmentResult {
  file: string;
  bytes: number;
  findings: Finding[];
  /** Chain members in sequence order (duplicates and strays removed). */
  first?: Entry;
  last?: Entry;
  open?: OpenData;
  records: number;
  sealed: boolean;
  checkpoints: number;
  /** Highest seq covered by a valid signature in this segment. */
  signedSeq?: number;
  /** The newest valid checkpoint or seal of this segment (it says where the chain begins: SignedMark.start). */
  newestMark?: SignedMark;
  torn?: { line: number; bytes: number };
  /** Hashes of the chain members whose seq was asked for (head checks). */
  wanted: Map<number, { hash: string; line: number }>;
}

export interface SegmentProgress {
  bytes: number;
}

export interface SegmentCheckOptions {
  maxRecordBytes: number;
  want?: ReadonlySet<number>;
  onBytes?: (bytes: number) => void;
}

export function verifySegment(path: string, file: string, keys: readonly VerifyKey[], options: SegmentCheckOptions): Promise<SegmentResult> {
  return verifySegmentLines(readLines(path, { maxLineBytes: options.maxRecordBytes + 1 }), file, keys, options);
}

/**
 * The same checks over a segment's lines from any source, in the order the source holds them (the
 * shared store gives its rows in key order). `file` names the segment in findings.
 */
export async function verifySegmentLines(lines: AsyncIterable<RawLine>, file: string, keys: readonly VerifyKey[], options: SegmentCheckOptions): Promise<SegmentResult> {
  const entries: Entry[] = [];
  const bad: BadLine[] = [];
  // Capped as they come: a file of a million bad lines must not become a million findings.
  const findings = new FindingList();
  let torn: SegmentResult['torn'];
  let bytes = 0;
  let sinceReport = 0;
  for await (const raw of lines) {
    bytes += raw.length + (raw.complete ? 1 : 0);
    sinceReport += raw.length + 1;
    if (sinceReport > 1 << 20) {
      options.onBytes?.(sinceReport);
      sinceReport = 0;
    }
    if (!raw.complete) {
      torn = { line: raw.lineNo, bytes: raw.length };
      break;
    }
    if (raw.oversized) {
      bad.push({ line: raw.lineNo });
      findings.push(finding(FINDING.corrupt, `line ${raw.lineNo} is ${raw.length} bytes, longer than any record can be`, { file, line: raw.lineNo }));
      continue;
    }
    const parsed = parseLine(raw.bytes);
    if (!parsed.ok) {
      bad.push({ line: raw.lineNo, ...(parsed.seq === undefined ? {} : { seq: parsed.seq }) });
      const at = { file, line: raw.lineNo, ...(parsed.seq === undefined ? {} : { seq: parsed.seq }) };
      if (parsed.problem === 'edited') findings.push(finding(FINDING.edited, `line ${raw.lineNo}${seqText(parsed.seq)} was altered: ${parsed.reason}`, at));
      else if (parsed.problem === 'damaged') findings.push(finding(FINDING.truncated, `line ${raw.lineNo}${seqText(parsed.seq)} holds a record that was cut short or damaged (${parsed.reason})`, at));
      else findings.push(finding(FINDING.corrupt, `line ${raw.lineNo} is not a transcript record`, at));
      continue;
    }
    const r = parsed.record;
    const e: Entry = { line: raw.lineNo, seq: r.seq, prev: r.prev, hash: r.hash, hashOk: parsed.hashOk, kind: r.k };
    const d = r.d as Record<string, unknown>;
    if ((r.k === RECORD_KIND.checkpoint || r.k === RECORD_KIND.seal) && typeof d.jws === 'string') e.jws = d.jws;
    if (r.k === RECORD_KIND.open) {
      const open = asOpen(d);
      if (open) e.open = open;
    }
    if (!parsed.hashOk) {
      findings.push(finding(FINDING.edited, `line ${raw.lineNo} (seq ${r.seq}, ${r.k}) was altered: its content no longer matches its hash`, { file, line: raw.lineNo, seq: r.seq }));
    }
    entries.push(e);
  }
  if (sinceReport > 0) options.onBytes?.(sinceReport);
  const result: SegmentResult = { file, bytes, findings: [], records: 0, sealed: false, checkpoints: 0, wanted: new Map() };
  if (torn) result.torn = torn;
  if (entries.length === 0) {
    if (bad.length > 0) findings.push(finding(FINDING.corrupt, 'the file holds no transcript record', { file }));
    result.findings = findings.toArray();
    return result;
  }
  const chain = orderChain(entries, bad, file, findings);
  result.records = chain.length;
  const first = chain[0] as Entry;
  const last = chain[chain.length - 1] as Entry;
  result.first = first;
  result.last = last;
  if (first.kind !== RECORD_KIND.open || !first.open) {
    findings.push(finding(FINDING.removed, `the segment's open record is missing: the first record is seq ${first.seq} (${first.kind}) at line ${first.line}`, { file, line: first.line, seq: first.seq }));
  } else {
    result.open = first.open;
    if (!FORMAT_VERSIONS_READ.includes(first.open.format)) {
      findings.push(finding(FINDING.corrupt, `format version ${first.open.format} is not understood (this warden reads ${FORMAT_VERSIONS_READ.join(', ')})`, { file, line: first.line }));
    }
  }
  result.sealed = last.kind === RECORD_KIND.seal;
  if (options.want) for (const e of chain) if (options.want.has(e.seq)) result.wanted.set(e.seq, { hash: e.hash, line: e.line });
  await checkMarks(chain, result, keys, file, findings);
  if (result.sealed && torn) {
    findings.push(finding(FINDING.inserted, `${torn.bytes} bytes follow the seal at line ${torn.line}`, { file, line: torn.line }));
  }
  result.findings = findings.toArray();
  return result;
}

/** Bad lines strictly between two line numbers; `bad` is in line order (binary search, so a file of many bad lines and many gaps stays linear). */
function countBetween(bad: readonly BadLine[], lo: number, hi: number): number {
  const firstAbove = (line: number): number => {
    let a = 0;
    let b = bad.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if ((bad[mid] as BadLine).line > line) b = mid;
      else a = mid + 1;
    }
    return a;
  };
  return Math.max(0, firstAbove(hi - 1) - firstAbove(lo));
}

function seqText(seq: number | undefined): string {
  return seq === undefined ? '' : ` (seq ${seq})`;
}

/**
 * Removes records that are not chain members (duplicated sequence numbers, records after the
 * seal, a second open), reports reordering, gaps and broken links, and returns the members in
 * sequence order.
 */
function orderChain(entries: Entry[], bad: BadLine[], file: string, findings: FindingSink): Entry[] {
  const bySeq = new Map<number, Entry[]>();
  for (const e of entries) {
    const list = bySeq.get(e.seq);
    if (list) list.push(e);
    else bySeq.set(e.seq, [e]);
  }
  const stray = new Set<Entry>();
  // Duplicated sequence numbers: keep the record the chain goes through.
  for (const [seq, list] of bySeq) {
    if (list.length < 2) continue;
    const successorPrevs = new Set((bySeq.get(seq + 1) ?? []).map((e) => e.prev));
    const predecessorHashes = new Set((bySeq.get(seq - 1) ?? []).map((e) => e.hash));
    const keep =
      list.find((e) => e.hashOk && successorPrevs.has(e.hash) && predecessorHashes.has(e.prev)) ??
      list.find((e) => e.hashOk && successorPrevs.has(e.hash)) ??
      list.find((e) => e.hashOk && predecessorHashes.has(e.prev)) ??
      (list[0] as Entry);
    for (const e of list) {
      if (e === keep) continue;
      stray.add(e);
      const copy = e.hash === keep.hash ? ', a copy of it' : '';
      findings.push(finding(FINDING.inserted, `line ${e.line} was inserted: it claims seq ${seq}, which line ${keep.line} holds${copy}, and the chain does not pass through it`, { file, line: e.line, seq }));
    }
  }
  // Records after the seal (in file order), and opens that are not first.
  const sealAt = entries.find((e) => e.kind === RECORD_KIND.seal && !stray.has(e));
  for (const e of entries) {
    if (stray.has(e)) continue;
    if (sealAt && e !== sealAt && (e.line > sealAt.line || e.seq > sealAt.seq)) {
      stray.add(e);
      findings.push(finding(FINDING.inserted, `line ${e.line} (seq ${e.seq}, ${e.kind}) was inserted after the segment's seal (line ${sealAt.line})`, { file, line: e.line, seq: e.seq }));
    }
  }
  const members = entries.filter((e) => !stray.has(e));
  const firstOpen = members.reduce<Entry | undefined>((min, e) => (min === undefined || e.seq < min.seq ? e : min), undefined);
  for (const e of members) {
    if (e.kind === RECORD_KIND.open && e !== firstOpen) {
      stray.add(e);
      findings.push(finding(FINDING.inserted, `line ${e.line} (seq ${e.seq}) is a second open record inside the segment`, { file, line: e.line, seq: e.seq }));
    }
  }
  const fileOrder = entries.filter((e) => !stray.has(e));
  // Order: in file order, sequence numbers only go up.
  for (let i = 1; i < fileOrder.length; i++) {
    const a = fileOrder[i - 1] as Entry;
    const b = fileOrder[i] as Entry;
    if (b.seq < a.seq) {
      findings.push(
        finding(FINDING.reordered, `records were reordered: line ${a.line} holds seq ${a.seq} but the next line, ${b.line}, holds seq ${b.seq}`, { file, line: b.line, seq: b.seq }),
      );
    }
  }
  const chain = [...fileOrder].sort((a, b) => a.seq - b.seq);
  // Gaps and links.
  for (let i = 1; i < chain.length; i++) {
    const a = chain[i - 1] as Entry;
    const b = chain[i] as Entry;
    if (b.seq > a.seq + 1) {
      const missing = b.seq - a.seq - 1;
      const lo = Math.min(a.line, b.line);
      const hi = Math.max(a.line, b.line);
      const unreadable = countBetween(bad, lo, hi);
      if (unreadable < missing) {
        const range = missing === 1 ? `seq ${a.seq + 1} is` : `seq ${a.seq + 1}–${b.seq - 1} (${missing} records) are`;
        findings.push(finding(FINDING.removed, `records were removed: ${range} missing between line ${a.line} and line ${b.line}`, { file, line: b.line, seq: a.seq + 1 }));
      }
    } else if (b.prev !== a.hash) {
      findings.push(
        finding(
          FINDING.chainBreak,
          `the chain is broken at line ${b.line} (seq ${b.seq}): it does not link to seq ${a.seq} (line ${a.line}); one of them was rewritten with a recomputed hash or replaced`,
          { file, line: b.line, seq: b.seq },
        ),
      );
    }
  }
  return chain;
}

async function checkMarks(chain: Entry[], result: SegmentResult, keys: readonly VerifyKey[], file: string, findings: FindingSink): Promise<void> {
  const bySeq = new Map(chain.map((e) => [e.seq, e]));
  const firstSeq = (chain[0] as Entry).seq;
  const positions = new Map(chain.map((e, i) => [e.seq, i]));
  for (const e of chain) {
    if (e.kind !== RECORD_KIND.checkpoint && e.kind !== RECORD_KIND.seal) continue;
    const what = e.kind === RECORD_KIND.seal ? 'seal' : 'checkpoint';
    const mismatch = e.kind === RECORD_KIND.seal ? FINDING.sealMismatch : FINDING.checkpointMismatch;
    const at = { file, line: e.line, seq: e.seq };
    if (e.kind === RECORD_KIND.checkpoint) result.checkpoints += 1;
    if (e.jws === undefined) {
      findings.push(finding(FINDING.badSignature, `the ${what} at line ${e.line} carries no signature`, at));
      continue;
    }
    const check = await verifyMark(e.jws, keys);
    if (!check.ok) {
      findings.push(finding(FINDING.badSignature, `the ${what} at line ${e.line} (seq ${e.seq}) is not valid: ${check.reason}`, at));
      continue;
    }
    const mark = check.mark;
    const problems: string[] = [];
    if (mark.typ !== what) problems.push(`it was signed as a ${mark.typ}`);
    if (result.open && (mark.instance !== result.open.instance || mark.segment !== result.open.segment)) {
      problems.push(`it belongs to segment ${mark.segment} of instance ${mark.instance}`);
    }
    if (mark.seq !== e.seq - 1) problems.push(`it covers seq ${mark.seq} but sits at seq ${e.seq}`);
    const covered = bySeq.get(mark.seq);
    if (!covered) problems.push(`the record it covers (seq ${mark.seq}) is missing`);
    else if (covered.hash !== mark.hash) {
      problems.push(`records up to seq ${mark.seq} were rewritten after they were signed (the record at seq ${mark.seq}, line ${covered.line}, now hashes to ${covered.hash.slice(0, 12)}…, the signature says ${mark.hash.slice(0, 12)}…)`);
    }
    if (mark.firstSeq !== firstSeq) problems.push(`it says the segment starts at seq ${mark.firstSeq}, not ${firstSeq}`);
    const index = positions.get(mark.seq);
    const counted = index === undefined ? 0 : index + 1;
    if (covered && mark.records !== counted) {
      problems.push(`it counts ${mark.records} records up to seq ${mark.seq}, the segment now has ${counted} (records were ${counted < mark.records ? 'removed, or altered so that they no longer read as records' : 'inserted'})`);
    }
    if (problems.length > 0) {
      findings.push(finding(mismatch, `the ${what} at line ${e.line} no longer matches the segment: ${problems.join('; ')}`, at));
      continue;
    }
    result.signedSeq = Math.max(result.signedSeq ?? 0, mark.seq);
    if (!result.newestMark || mark.seq > result.newestMark.seq) result.newestMark = mark;
  }
}

function asOpen(d: Record<string, unknown>): OpenData | undefined {
  if (typeof d.instance !== 'string' || !Number.isSafeInteger(d.segment) || typeof d.file !== 'string' || typeof d.format !== 'number') return undefined;
  const after = d.after;
  if (after !== null) {
    if (!after || typeof after !== 'object') return undefined;
    const a = after as Record<string, unknown>;
    const ok =
      Number.isSafeInteger(a.segment) && typeof a.file === 'string' && Number.isSafeInteger(a.lastSeq) && typeof a.lastHash === 'string' && typeof a.sealed === 'boolean' && Number.isSafeInteger(a.tornBytes);
    if (!ok) return undefined;
  }
  return {
    format: d.format,
    instance: d.instance,
    segment: d.segment as number,
    file: d.file,
    kid: typeof d.kid === 'string' ? d.kid : '',
    writer: (d.writer as OpenData['writer']) ?? { pid: 0, host: '' },
    after: after as OpenAfter | null,
    ...(Array.isArray(d.abandoned) ? { abandoned: d.abandoned.filter((x): x is string => typeof x === 'string') } : {}),
  };
}
