// What verify can find, and how bad each finding is.

/** Kinds of findings. Errors mean the store was altered (or damaged); see docs/transcripts.md. */
export const FINDING = {
  /** A record's bytes no longer match its own hash. */
  edited: 'edited',
  /** Records are missing from the middle of a segment (a gap in the sequence). */
  removed: 'removed',
  /** Records appear out of sequence order. */
  reordered: 'reordered',
  /** A record that is not part of the chain (a duplicate sequence number, or after the seal). */
  inserted: 'inserted',
  /** A record does not link to its predecessor: something was rewritten with recomputed hashes. */
  chainBreak: 'chain-break',
  /** The end of a segment or of the store was cut off, or a record was cut short. */
  truncated: 'truncated',
  /** A seal, checkpoint or head whose signature does not verify with the trusted key. */
  badSignature: 'bad-signature',
  /** A validly signed seal that no longer matches the segment (count, last hash, place). */
  sealMismatch: 'seal-mismatch',
  /** A validly signed checkpoint that no longer matches the records it covers. */
  checkpointMismatch: 'checkpoint-mismatch',
  /** A line that is not a transcript record, or a segment file that is not a transcript. */
  corrupt: 'corrupt',
  /** A whole segment is missing from an instance's sequence. */
  missingSegment: 'missing-segment',
  /** A segment file's name does not match the segment it holds (renamed or swapped files). */
  segmentOrder: 'segment-order',
  /** The same segment appears twice. */
  duplicateSegment: 'duplicate-segment',
  /** A segment that is not the newest was left unsealed and nothing records why. */
  unsealed: 'unsealed',
  // ---- not tampering ----
  /** The newest segment ends in a partial record: a write interrupted by a crash. */
  tornTail: 'torn-tail',
  /** The newest segment is not sealed yet (live writer, or it stopped): its unsigned tail is named. */
  openSegment: 'open-segment',
  /** An unsealed segment followed by one that records the crash and continues the chain. */
  crashRecovered: 'crash-recovered',
  /** The instance's head file is absent. */
  headMissing: 'head-missing',
  /** A file in the transcript directory that is not a transcript file (ignored). */
  foreignFile: 'foreign-file',
  /** The chain begins after its first record because retention removed older segments, as a signed mark says. */
  retention: 'retention',
} as const;

export type FindingKind = (typeof FINDING)[keyof typeof FINDING];
export type Severity = 'error' | 'warning' | 'info';

const SEVERITY: Record<FindingKind, Severity> = {
  edited: 'error',
  removed: 'error',
  reordered: 'error',
  inserted: 'error',
  'chain-break': 'error',
  truncated: 'error',
  'bad-signature': 'error',
  'seal-mismatch': 'error',
  'checkpoint-mismatch': 'error',
  corrupt: 'error',
  'missing-segment': 'error',
  'segment-order': 'error',
  'duplicate-segment': 'error',
  unsealed: 'error',
  'torn-tail': 'warning',
  'open-segment': 'info',
  'crash-recovered': 'info',
  retention: 'info',
  'head-missing': 'warning',
  'foreign-file': 'warning',
};

export interface Finding {
  severity: Severity;
  kind: FindingKind;
  message: string;
  /** File name (within the transcript directory). */
  file?: string;
  instance?: string;
  segment?: number;
  /** 1-based line of the record the finding points at. */
  line?: number;
  seq?: number;
  /** Only on a count finding: how many more findings of this kind in this file are not listed. */
  more?: number;
}

export function finding(kind: FindingKind, message: string, where: Omit<Finding, 'severity' | 'kind' | 'message'> = {}): Finding {
  return { severity: SEVERITY[kind], kind, message, ...where };
}

/** At most this many findings of one kind per file are listed; the rest are counted. */
export const MAX_FINDINGS_PER_KIND = 20;

/** Where findings go while a segment is read: only `push` is used. */
export type FindingSink = Pick<Finding[], 'push'>;

/**
 * Findings capped as they arrive: the first MAX_FINDINGS_PER_KIND of each (file, kind) are kept
 * and the rest only counted, so a file of a million bad lines costs a counter, not a million
 * findings. A count finding (`more`) pushed in adds to the count, so lists can be merged.
 */
export class FindingList {
  private readonly kept: Finding[] = [];
  private readonly listed = new Map<string, number>();
  private readonly extra = new Map<string, Finding & { more: number }>();

  push(...items: Finding[]): number {
    for (const f of items) this.add(f);
    return this.kept.length;
  }

  private add(f: Finding): void {
    const key = `${f.file ?? ''}\u0000${f.kind}`;
    const counted = f.more ?? 0;
    const n = counted > 0 ? (this.listed.get(key) ?? 0) : (this.listed.get(key) ?? 0) + 1;
    this.listed.set(key, n);
    if (counted === 0 && n <= MAX_FINDINGS_PER_KIND) {
      this.kept.push(f);
      return;
    }
    const more = counted > 0 ? counted : 1;
    const e = this.extra.get(key);
    if (e) e.more += more;
    else this.extra.set(key, { ...f, more });
  }

  /** The kept findings, then one count finding per (file, kind) that had more. */
  toArray(): Finding[] {
    const out = [...this.kept];
    for (const e of this.extra.values()) {
      const where: Omit<Finding, 'severity' | 'kind' | 'message'> = { more: e.more };
      if (e.file !== undefined) where.file = e.file;
      if (e.instance !== undefined) where.instance = e.instance;
      if (e.segment !== undefined) where.segment = e.segment;
      out.push(finding(e.kind, `… and ${e.more} more ${e.kind} finding(s) in this file`, where));
    }
    return out;
  }
}

/** Keeps the first MAX_FINDINGS_PER_KIND of each (file, kind) and appends a count of the rest. */
export function capFindings(findings: readonly Finding[]): Finding[] {
  const list = new FindingList();
  for (const f of findings) list.push(f);
  return list.toArray();
}
