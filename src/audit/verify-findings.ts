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
}

export function finding(kind: FindingKind, message: string, where: Omit<Finding, 'severity' | 'kind' | 'message'> = {}): Finding {
  return { severity: SEVERITY[kind], kind, message, ...where };
}

/** At most this many findings of one kind per file are listed; the rest are counted. */
export const MAX_FINDINGS_PER_KIND = 20;

/** Keeps the first MAX_FINDINGS_PER_KIND of each (file, kind) and appends a count of the rest. */
export function capFindings(findings: Finding[]): Finding[] {
  const seen = new Map<string, number>();
  const out: Finding[] = [];
  const extra = new Map<string, Finding & { more: number }>();
  for (const f of findings) {
    const key = `${f.file ?? ''}\u0000${f.kind}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n <= MAX_FINDINGS_PER_KIND) out.push(f);
    else {
      const e = extra.get(key);
      if (e) e.more += 1;
      else extra.set(key, { ...f, more: 1 });
    }
  }
  for (const e of extra.values()) {
    const where: Omit<Finding, 'severity' | 'kind' | 'message'> = {};
    if (e.file !== undefined) where.file = e.file;
    if (e.instance !== undefined) where.instance = e.instance;
    if (e.segment !== undefined) where.segment = e.segment;
    out.push(finding(e.kind, `… and ${e.more} more ${e.kind} finding(s) in this file`, where));
  }
  return out;
}
