// "did you mean …?" for unknown keys, enum values and names. Catches typos (jwks_url → jwks_uri),
// other spellings (jwksUri, jwks-uri → jwks_uri), truncations (cert → cert_file) and additions
// (logging → log).

function normalize(word: string): string {
  return word.toLowerCase().replace(/[-_\s]/g, '');
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate's first whole words spell `w` (normalized): cert → cert_file, recordingThread →
 * recording_thread_max_lag; but recording_threads is not a truncation of
 * recording_thread_stall_timeout, where the "s" begins the next word.
 */
function startsWithWords(candidate: string, w: string): boolean {
  let i = 0;
  let n = 0;
  while (n < w.length && i < candidate.length) {
    const ch = candidate.charAt(i++);
    if (SEPARATOR.test(ch)) continue;
    if (ch.toLowerCase() !== w.charAt(n++)) return false;
  }
  if (n < w.length) return false;
  const next = candidate.charAt(i);
  return i === candidate.length || SEPARATOR.test(next) || (next !== next.toLowerCase() && candidate.charAt(i - 1) === candidate.charAt(i - 1).toLowerCase());
}

const SEPARATOR = /[-_\s]/;

/** The closest candidate, if one is close enough to be a likely intent. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = normalize(word);
  if (w === '') return undefined;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const c = normalize(candidate);
    let score: number;
    if (c === w) score = 0;
    else if (w.length >= 3 && startsWithWords(candidate, w)) score = 1;
    else if (c.length >= 3 && w.startsWith(c)) score = 2; // logging → log, shutdown_grace_period → shutdown_grace
    else {
      const distance = editDistance(w, c);
      score = distance <= Math.max(1, Math.floor(Math.max(w.length, c.length) / 4)) ? distance : Infinity;
    }
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/** " (did you mean "x"?)" or "". */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = suggest(word, candidates);
  return s === undefined ? '' : ` (did you mean "${s}"?)`;
}
