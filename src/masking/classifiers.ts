// Content classifiers: find sensitive values by their shape inside text (emails, payment card
// numbers that pass the Luhn check, national IDs, IBANs with their mod-97 check, phone numbers,
// JWTs and API keys), plus custom regular expressions from the configuration. Each classifier
// has a cheap byte prefilter so values that cannot match are skipped without decoding them.

export const BUILTIN_CLASSIFIERS = [
  'email', 'card_number', 'us_ssn', 'uk_nino', 'ca_sin', 'iban', 'phone', 'jwt', 'api_key',
] as const;
export type BuiltinClassifier = (typeof BUILTIN_CLASSIFIERS)[number];

/** A group name that stands for several classifiers. */
export const CLASSIFIER_GROUPS: Readonly<Record<string, readonly BuiltinClassifier[]>> = {
  national_id: ['us_ssn', 'uk_nino', 'ca_sin'],
};

export interface Classifier {
  readonly name: string;
  /** Global regular expression; each match is a candidate. */
  readonly regex: RegExp;
  /** Extra check on a candidate (Luhn, mod-97, …). */
  readonly valid?: (match: string) => boolean;
  /** Cheap test on the raw UTF-8 bytes: false means the value cannot hold a match. */
  readonly mayMatch?: (buf: Uint8Array, start: number, end: number) => boolean;
}

export interface Match {
  start: number;
  end: number;
  classifier: string;
}

const AT = 0x40;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

function hasByte(byte: number): (buf: Uint8Array, start: number, end: number) => boolean {
  return (buf, start, end) => {
    for (let i = start; i < end; i++) if (buf[i] === byte) return true;
    return false;
  };
}

function hasDigits(n: number): (buf: Uint8Array, start: number, end: number) => boolean {
  return (buf, start, end) => {
    let seen = 0;
    for (let i = start; i < end; i++) {
      const b = buf[i] as number;
      if (b >= DIGIT_0 && b <= DIGIT_9 && ++seen >= n) return true;
    }
    return false;
  };
}

function digitsOf(s: string): string {
  return s.replace(/\D/g, '');
}

/** The Luhn (mod 10) check used by payment card numbers and Canadian SINs. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - DIGIT_0;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** ISO 13616 IBAN check: move the first four characters to the end, letters to numbers, mod 97 = 1. */
export function ibanValid(candidate: string): boolean {
  const s = candidate.replace(/\s/g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(s)) return false;
  const moved = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const code = ch.charCodeAt(0);
    const v = code >= 65 ? String(code - 55) : ch;
    for (const d of v) rem = (rem * 10 + (d.charCodeAt(0) - DIGIT_0)) % 97;
  }
  return rem === 1;
}

/** US SSN shape: area not 000 or 666, group not 00, serial not 0000 (9xx areas are kept: ITINs are as sensitive). */
function ssnValid(m: string): boolean {
  const d = digitsOf(m);
  return d.length === 9 && !d.startsWith('000') && !d.startsWith('666') && d.slice(3, 5) !== '00' && d.slice(5) !== '0000';
}

/** UK National Insurance number: two letters (not D, F, I, Q, U, V; second not O; no BG, GB, KN, NK, NT, TN, ZZ prefix), six digits, A–D. */
function ninoValid(m: string): boolean {
  const s = m.replace(/\s/g, '').toUpperCase();
  const prefix = s.slice(0, 2);
  return !['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'].includes(prefix);
}

export const BUILTIN: Readonly<Record<BuiltinClassifier, Classifier>> = {
  email: {
    name: 'email',
    regex: /[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}/g,
    mayMatch: hasByte(AT),
  },
  card_number: {
    name: 'card_number',
    // 13 to 19 digits, optionally grouped by single spaces or dashes.
    regex: /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])/g,
    valid: (m) => {
      const d = digitsOf(m);
      return d.length >= 13 && d.length <= 19 && luhnValid(d);
    },
    mayMatch: hasDigits(13),
  },
  us_ssn: {
    name: 'us_ssn',
    regex: /(?<![\d-])\d{3}[- ]\d{2}[- ]\d{4}(?![\d-])/g,
    valid: ssnValid,
    mayMatch: hasDigits(9),
  },
  uk_nino: {
    name: 'uk_nino',
    regex: /\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b/gi,
    valid: ninoValid,
    mayMatch: hasDigits(6),
  },
  ca_sin: {
    name: 'ca_sin',
    regex: /(?<![\d-])\d{3}[- ]\d{3}[- ]\d{3}(?![\d-])/g,
    valid: (m) => luhnValid(digitsOf(m)),
    mayMatch: hasDigits(9),
  },
  iban: {
    name: 'iban',
    regex: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g,
    valid: ibanValid,
    mayMatch: hasDigits(4),
  },
  phone: {
    name: 'phone',
    // International (+CC …) or North American ((555) 123-4567, 555-123-4567) numbers.
    regex: /(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w])/g,
    valid: (m) => {
      const n = digitsOf(m).length;
      return n >= 8 && n <= 15;
    },
    mayMatch: hasDigits(8),
  },
  jwt: {
    name: 'jwt',
    regex: /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
    mayMatch: (buf, start, end) => {
      for (let i = start; i + 2 < end; i++) if (buf[i] === 0x65 && buf[i + 1] === 0x79 && buf[i + 2] === 0x4a) return true;
      return false;
    },
  },
  api_key: {
    name: 'api_key',
    regex: new RegExp(
      [
        '\\bAKIA[0-9A-Z]{16}\\b', // AWS access key id
        '\\bgh[pousr]_[A-Za-z0-9]{36,}\\b', // GitHub tokens
        '\\bgithub_pat_[A-Za-z0-9_]{22,}\\b',
        '\\bxox[abprs]-[A-Za-z0-9-]{10,}', // Slack
        '\\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\\b', // Stripe
        '\\bsk-[A-Za-z0-9_-]{20,}', // OpenAI-style secret keys
        '\\bAIza[0-9A-Za-z_-]{35}\\b', // Google API keys
        '-----BEGIN [A-Z ]*PRIVATE KEY-----[\\s\\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)',
      ].join('|'),
      'g',
    ),
  },
};

/** Compiles a custom classifier; returns the reason when the pattern is unusable. */
export function customClassifier(name: string, pattern: string, ignoreCase: boolean): Classifier | string {
  let regex: RegExp;
  try {
    regex = new RegExp(pattern, ignoreCase ? 'giu' : 'gu');
  } catch (err) {
    return `is not a valid regular expression: ${err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err)}`;
  }
  if (new RegExp(`^(?:${pattern})$`, ignoreCase ? 'iu' : 'u').test('')) return 'matches the empty string';
  return { name, regex };
}

/** Names a `content:` list may use: built-ins and groups. */
export function builtinNames(): string[] {
  return [...BUILTIN_CLASSIFIERS, ...Object.keys(CLASSIFIER_GROUPS)];
}

/** Every match of the classifiers in `text`, sorted; overlapping matches are merged into one (named after the one that starts first). */
export function findMatches(text: string, classifiers: readonly Classifier[]): Match[] {
  const found: Match[] = [];
  for (const c of classifiers) {
    c.regex.lastIndex = 0;
    for (let m = c.regex.exec(text); m !== null; m = c.regex.exec(text)) {
      if (m[0].length === 0) {
        c.regex.lastIndex++;
        continue;
      }
      if (c.valid && !c.valid(m[0])) {
        // A failed check may hide a valid match starting inside this one (e.g. a longer digit run).
        c.regex.lastIndex = m.index + 1;
        continue;
      }
      found.push({ start: m.index, end: m.index + m[0].length, classifier: c.name });
    }
  }
  if (found.length <= 1) return found;
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Match[] = [];
  for (const m of found) {
    const last = merged[merged.length - 1];
    if (last && m.start < last.end) {
      if (m.end > last.end) last.end = m.end;
      continue;
    }
    merged.push({ ...m });
  }
  return merged;
}
