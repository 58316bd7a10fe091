// The access-review report for one principal over a period: which targets it reached, which tables
// and protected (masked) columns it touched, what it ran by class, which risky statements were
// approved (by whom, why) or refused, and which granted targets it never used.

import { RECORD_KIND } from './frame.js';
import { continuedStart, principalMatches, sourceOf, type RecordSource } from './reader.js';
import { countText, escapeHtml, formatBytes, htmlText, printable, shorten, textTable } from './text.js';
import { VERDICTS, type ApprovalDecision, type DecisionData, type Protocol, type ResultData, type SessionEndData, type SessionStartData, type StatementData, type TranscriptPrincipal, type Verdict } from './types.js';

export interface ReviewOptions {
  /** Policy principal name (or token subject / app id / object id). */
  principal: string;
  since: Date;
  until: Date;
  /** Targets the policy grants this principal (names; expand "*" before passing). */
  grantedTargets?: readonly string[];
  /**
   * Without grantedTargets: the targets the policy grants a principal rule, by its name ("*"
   * expanded), or undefined for a name the policy does not have. `principal` may be a token's
   * subject, app id or object id: the grants are then those of the rules its sessions ran under.
   */
  grantsOf?: (policyName: string) => readonly string[] | undefined;
  /** Longest statement text kept in the report; default 500 characters. */
  maxTextChars?: number;
}

export interface HeldStatement {
  at: string;
  sessionId: string;
  statementId: number;
  target: string;
  class: string;
  text: string;
  requestId?: string;
  /** "pending" when no decision is in the store. */
  decision: ApprovalDecision | 'pending';
  approver?: string;
  reason?: string;
  decidedAt?: string;
}

export interface Denial {
  at: string;
  sessionId: string;
  statementId: number;
  target: string;
  class: string;
  text: string;
  /** policy: the policy denied it; approver: a held statement an approver denied; expired/cancelled: held, never approved. */
  by: 'policy' | 'approver' | 'expired' | 'cancelled';
  rule?: string;
  reason?: string;
  approver?: string;
}

/** Relations of the system catalogs, named with their schema as tools write them. */
const SYSTEM_RELATION = /^(pg_catalog|information_schema)\./i;
const SYSTEM_NOTE = 'also read the system catalogs (metadata, as psql\'s \\d and drivers ask for it), statements';

/** The report's tables, user tables first, then the system catalogs. */
function splitSystem(tables: ReviewReport['tables']): [ReviewReport['tables'], ReviewReport['tables']] {
  return [tables.filter((t) => !t.system), tables.filter((t) => t.system)];
}

export interface ReviewReport {
  principal: string;
  period: { since: string; until: string };
  generatedAt: string;
  /** Distinct identities (issuer, subject, app) that acted as this principal. */
  identities: Array<Pick<TranscriptPrincipal, 'issuer' | 'subject'> & { appId?: string; objectId?: string }>;
  sessions: { count: number; first?: string; last?: string; errors: number; endReasons: Record<string, number> };
  targets: Array<{ target: string; protocol: Protocol | 'unknown'; sessions: number; statements: number; firstSeen: string; lastSeen: string }>;
  /** `system`: a pg_catalog or information_schema relation (the metadata tools such as psql's \\d read). */
  tables: Array<{ target: string; relation: string; statements: number; classes: Record<string, number>; system?: true }>;
  protectedColumns: Array<{ target: string; column: string; table?: string; rule: string; results: number; rows: number }>;
  statementsByClass: Array<{ class: string; count: number; verdicts: Record<Verdict, number> }>;
  approvals: HeldStatement[];
  denials: Denial[];
  /** Granted targets never reached in the period; null when no grants were given. */
  unusedGrants: { targets: string[] } | null;
  rows: number;
  bytes: number;
}

interface SessionCtx {
  target: string;
  protocol: Protocol | 'unknown';
  identity: ReviewReport['identities'][number];
  counted: boolean;
}

function zeroVerdicts(): Record<Verdict, number> {
  return Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
}

/** The report from a transcript directory or another record source (the shared store). */
export async function buildReview(from: string | RecordSource, options: ReviewOptions): Promise<ReviewReport> {
  const since = options.since.getTime();
  const until = options.until.getTime();
  const maxText = options.maxTextChars ?? 500;
  const inPeriod = (ts: string) => {
    const t = Date.parse(ts);
    return t >= since && t <= until;
  };
  const sessions = new Map<string, SessionCtx>();
  /** Policy principal names of the matching sessions (grantsOf). */
  const policyNames = new Set<string>();
  const identities = new Map<string, ReviewReport['identities'][number]>();
  const targets = new Map<string, ReviewReport['targets'][number] & { sessionIds: Set<string> }>();
  const tables = new Map<string, ReviewReport['tables'][number]>();
  const columns = new Map<string, ReviewReport['protectedColumns'][number]>();
  const classes = new Map<string, ReviewReport['statementsByClass'][number]>();
  const held = new Map<string, HeldStatement>();
  const denials: Denial[] = [];
  const endReasons: Record<string, number> = {};
  const ran = new Set<string>(); // statements of the period (sid/st), so results and decisions count once
  // Allowed statements of the period, by class: one whose rows come back masked counts as `mask`
  // (the relays record `allow`, and the masking shows in its results).
  const allowedClass = new Map<string, string>();
  let first: string | undefined;
  let last: string | undefined;
  let errors = 0;
  let rows = 0;
  let bytes = 0;
  let sessionCount = 0;

  const touchTarget = (ctx: SessionCtx, sid: string, at: string) => {
    let t = targets.get(ctx.target);
    if (!t) {
      t = { target: ctx.target, protocol: ctx.protocol, sessions: 0, statements: 0, firstSeen: at, lastSeen: at, sessionIds: new Set() };
      targets.set(ctx.target, t);
    }
    if (!t.sessionIds.has(sid)) {
      t.sessionIds.add(sid);
      t.sessions += 1;
    }
    if (at < t.firstSeen) t.firstSeen = at;
    if (at > t.lastSeen) t.lastSeen = at;
    if (!ctx.counted) {
      ctx.counted = true;
      sessionCount += 1;
      identities.set(JSON.stringify(ctx.identity), ctx.identity);
    }
    if (first === undefined || at < first) first = at;
    if (last === undefined || at > last) last = at;
    return t;
  };

  for await (const { record: r } of sourceOf(from).records({ sessionsOnly: true })) {
    if (r.sid === undefined) continue;
    // A session whose `session-start` retention removed is known by the start a later segment
    // carried over (`session-continued`).
    const carried = sessions.has(r.sid) ? undefined : continuedStart(r);
    if (r.k === RECORD_KIND.sessionStart || carried) {
      const d = carried ? carried.start : (r.d as SessionStartData);
      if (!principalMatches(d.principal, options.principal)) continue;
      const identity = { issuer: d.principal.issuer, subject: d.principal.subject, ...(d.principal.appId ? { appId: d.principal.appId } : {}), ...(d.principal.objectId ? { objectId: d.principal.objectId } : {}) };
      const ctx: SessionCtx = { target: d.target, protocol: d.protocol, identity, counted: false };
      sessions.set(r.sid, ctx);
      policyNames.add(d.principal.name);
      if (inPeriod(r.ts)) touchTarget(ctx, r.sid, r.ts);
      continue;
    }
    const ctx = sessions.get(r.sid);
    if (!ctx) continue;
    const key = (st: number) => `${r.sid}\u0000${st}`;
    switch (r.k) {
      case RECORD_KIND.statement: {
        if (!inPeriod(r.ts)) break;
        const d = r.d as StatementData;
        ran.add(key(d.st));
        const t = touchTarget(ctx, r.sid, r.ts);
        t.statements += 1;
        const cls = d.cls?.class ?? 'unknown';
        const c = classes.get(cls) ?? { class: cls, count: 0, verdicts: zeroVerdicts() };
        c.count += 1;
        if (d.verdict in c.verdicts) c.verdicts[d.verdict] += 1;
        if (d.verdict === 'allow') allowedClass.set(key(d.st), cls);
        classes.set(cls, c);
        for (const rel of Array.isArray(d.cls?.relations) ? d.cls.relations : []) {
          const k = `${ctx.target}\u0000${rel}`;
          const tb = tables.get(k) ?? { target: ctx.target, relation: rel, statements: 0, classes: {}, ...(SYSTEM_RELATION.test(rel) ? { system: true as const } : {}) };
          tb.statements += 1;
          tb.classes[cls] = (tb.classes[cls] ?? 0) + 1;
          tables.set(k, tb);
        }
        const text = shorten(d.text, maxText);
        const base = { at: r.ts, sessionId: r.sid, statementId: d.st, target: ctx.target, class: cls, text };
        if (d.verdict === 'deny') {
          denials.push({ ...base, by: 'policy', ...(d.rule ? { rule: d.rule } : {}), ...(d.reason ? { reason: d.reason } : {}) });
        }
        if (d.verdict === 'hold') {
          const a = d.approval;
          const h: HeldStatement = { ...base, decision: a?.decision ?? 'pending', ...(a?.requestId ? { requestId: a.requestId } : {}) };
          if (a?.approver) h.approver = a.approver;
          if (a?.reason) h.reason = a.reason;
          if (a?.decision) h.decidedAt = r.ts;
          held.set(key(d.st), h);
        }
        break;
      }
      case RECORD_KIND.decision: {
        const d = r.d as DecisionData;
        const h = held.get(key(d.st));
        if (!h) break;
        h.decision = d.decision;
        h.decidedAt = r.ts;
        if (d.approver) h.approver = d.approver;
        if (d.reason) h.reason = d.reason;
        if (d.requestId && !h.requestId) h.requestId = d.requestId;
        break;
      }
      case RECORD_KIND.result: {
        const d = r.d as ResultData;
        if (!ran.has(key(d.st))) break;
        const allowedAs = allowedClass.get(key(d.st));
        if (allowedAs !== undefined && d.columns.some((col) => col.masked !== null)) {
          allowedClass.delete(key(d.st));
          const c = classes.get(allowedAs);
          if (c) {
            c.verdicts.allow -= 1;
            c.verdicts.mask += 1;
          }
        }
        rows += d.rows;
        bytes += d.bytes;
        if (d.error) errors += 1;
        for (const col of d.columns) {
          if (col.masked === null) continue;
          const k = `${ctx.target}\u0000${col.table ?? ''}\u0000${col.name}\u0000${col.masked}`;
          const pc = columns.get(k) ?? { target: ctx.target, column: col.name, ...(col.table ? { table: col.table } : {}), rule: col.masked, results: 0, rows: 0 };
          pc.results += 1;
          pc.rows += d.rows;
          columns.set(k, pc);
        }
        break;
      }
      case RECORD_KIND.sessionEnd: {
        if (!ctx.counted) break;
        const d = r.d as SessionEndData;
        endReasons[d.reason] = (endReasons[d.reason] ?? 0) + 1;
        break;
      }
      default:
        break;
    }
  }
  for (const h of held.values()) {
    if (h.decision === 'approved' || h.decision === 'pending') continue;
    denials.push({
      at: h.decidedAt ?? h.at,
      sessionId: h.sessionId,
      statementId: h.statementId,
      target: h.target,
      class: h.class,
      text: h.text,
      by: h.decision === 'denied' ? 'approver' : h.decision,
      ...(h.approver ? { approver: h.approver } : {}),
      ...(h.reason ? { reason: h.reason } : {}),
    });
  }
  const reached = new Set(targets.keys());
  const granted = options.grantedTargets ?? grantsFor(options, policyNames);
  const byName = <T extends { target: string }>(a: T, b: T) => a.target.localeCompare(b.target);
  return {
    principal: options.principal,
    period: { since: options.since.toISOString(), until: options.until.toISOString() },
    generatedAt: new Date().toISOString(),
    identities: [...identities.values()],
    sessions: { count: sessionCount, ...(first ? { first } : {}), ...(last ? { last } : {}), errors, endReasons },
    targets: [...targets.values()].map(({ sessionIds: _ids, ...t }) => t).sort(byName),
    tables: [...tables.values()].sort((a, b) => byName(a, b) || a.relation.localeCompare(b.relation)),
    protectedColumns: [...columns.values()].sort((a, b) => byName(a, b) || a.column.localeCompare(b.column)),
    statementsByClass: [...classes.values()].sort((a, b) => b.count - a.count || a.class.localeCompare(b.class)),
    approvals: [...held.values()].sort((a, b) => a.at.localeCompare(b.at)),
    denials: denials.sort((a, b) => a.at.localeCompare(b.at)),
    unusedGrants: granted ? { targets: granted.filter((t) => !reached.has(t)).sort() } : null,
    rows,
    bytes,
  };
}

/** The grants of the principal as named, else those of the rules its sessions ran under (their union). */
function grantsFor(options: ReviewOptions, policyNames: ReadonlySet<string>): readonly string[] | undefined {
  const grantsOf = options.grantsOf;
  if (!grantsOf) return undefined;
  const own = grantsOf(options.principal);
  if (own) return own;
  let union: Set<string> | undefined;
  for (const name of policyNames) {
    const g = grantsOf(name);
    if (g) for (const t of g) (union ??= new Set()).add(t);
  }
  return union ? [...union] : undefined;
}

// ---- text -------------------------------------------------------------------------------------

const p1 = (s: string) => printable(s, true);

export function renderReviewText(r: ReviewReport): string {
  const out: string[] = [];
  out.push(`Access review: ${p1(r.principal)}`);
  out.push(`period ${r.period.since} – ${r.period.until}   generated ${r.generatedAt}`);
  for (const id of r.identities) out.push(`identity issuer ${p1(id.issuer)}  subject ${p1(id.subject)}${id.appId ? `  app ${p1(id.appId)}` : ''}${id.objectId ? `  object ${p1(id.objectId)}` : ''}`);
  out.push(
    `${countText(r.sessions.count, 'session')}${r.sessions.first ? `, first ${r.sessions.first}, last ${r.sessions.last}` : ''}; ${countText(r.rows, 'row')}, ${formatBytes(r.bytes)} returned; ${countText(r.sessions.errors, 'error')}`,
  );
  out.push('', 'Targets reached');
  out.push(r.targets.length === 0 ? '  (none)' : indent2(textTable(['target', 'protocol', 'sessions', 'statements', 'first seen', 'last seen'], r.targets.map((t) => [p1(t.target), t.protocol, String(t.sessions), String(t.statements), t.firstSeen, t.lastSeen]))));
  out.push('', 'Granted but never used (candidates for revocation)');
  out.push(r.unusedGrants === null ? '  (grants not given: pass --granted)' : r.unusedGrants.targets.length === 0 ? '  (none: every granted target was used)' : r.unusedGrants.targets.map((t) => `  ${p1(t)}`).join('\n'));
  const [user, system] = splitSystem(r.tables);
  out.push('', 'Tables touched');
  out.push(user.length === 0 ? '  (none)' : indent2(textTable(['target', 'table', 'statements', 'by class'], user.map((t) => [p1(t.target), p1(t.relation), String(t.statements), classList(t.classes)]))));
  if (system.length > 0) out.push(`  ${SYSTEM_NOTE}: ${system.map((t) => `${p1(t.relation)} (${t.statements})`).join(', ')}`);
  out.push('', 'Protected (masked) columns returned');
  out.push(
    r.protectedColumns.length === 0
      ? '  (none)'
      : indent2(textTable(['target', 'column', 'table', 'rule', 'results', 'rows'], r.protectedColumns.map((c) => [p1(c.target), p1(c.column), p1(c.table ?? '-'), p1(c.rule), String(c.results), String(c.rows)]))),
  );
  out.push('', 'Statements by class');
  out.push(
    r.statementsByClass.length === 0
      ? '  (none)'
      : indent2(textTable(['class', 'count', ...VERDICTS], r.statementsByClass.map((c) => [p1(c.class), String(c.count), ...VERDICTS.map((v) => String(c.verdicts[v]))]))),
  );
  out.push('', 'Held for approval');
  if (r.approvals.length === 0) out.push('  (none)');
  for (const a of r.approvals) {
    out.push(`  ${a.at}  ${a.decision.toUpperCase()}${a.approver ? ` by ${p1(a.approver)}` : ''}${a.reason ? `: "${p1(a.reason)}"` : ''}  [${p1(a.target)} ${p1(a.sessionId)} #${a.statementId}${a.requestId ? ` request ${p1(a.requestId)}` : ''}]`);
    out.push(`      ${p1(a.text)}`);
  }
  out.push('', 'Denied');
  if (r.denials.length === 0) out.push('  (none)');
  for (const d of r.denials) {
    const who = d.by === 'policy' ? `by policy${d.rule ? ` (${p1(d.rule)})` : ''}` : d.by === 'approver' ? `by ${p1(d.approver ?? 'an approver')}` : d.by;
    out.push(`  ${d.at}  ${who}${d.reason ? `: "${p1(d.reason)}"` : ''}  [${p1(d.target)} ${p1(d.sessionId)} #${d.statementId}]`);
    out.push(`      ${p1(d.text)}`);
  }
  return `${out.join('\n')}\n`;
}

function indent2(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function classList(c: Record<string, number>): string {
  return Object.entries(c)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${p1(k)} ${n}`)
    .join(', ');
}

// ---- HTML -------------------------------------------------------------------------------------

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:2rem 0 .5rem;border-bottom:1px solid #d0d7de;padding-bottom:.25rem}
.meta{color:#57606a}table{border-collapse:collapse;width:100%;margin:.25rem 0}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;word-break:break-word;margin:.25rem 0 0;background:#f6f8fa;padding:.4rem;border-radius:4px}
.tag{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:12px;font-weight:600}
.approved{background:#dafbe1;color:#116329}.denied,.policy,.approver{background:#ffebe9;color:#a40e26}.expired,.cancelled,.pending{background:#fff8c5;color:#7d4e00}
.none{color:#57606a;font-style:italic}.unused{background:#fff8c5}
`;

function table(header: string[], rows: string[][], numeric: number[] = []): string {
  if (rows.length === 0) return '<p class="none">none</p>';
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** A standalone HTML page (inline CSS, no external assets); every value is escaped. */
export function renderReviewHtml(r: ReviewReport): string {
  const e = htmlText;
  const sections: string[] = [];
  sections.push(`<h1>Access review: ${e(r.principal)}</h1>`);
  sections.push(`<p class="meta">Period ${e(r.period.since)} – ${e(r.period.until)} · generated ${e(r.generatedAt)}</p>`);
  sections.push(
    `<p>${e(countText(r.sessions.count, 'session'))}${r.sessions.first ? ` (first ${e(r.sessions.first)}, last ${e(r.sessions.last ?? '')})` : ''} · ${e(countText(r.rows, 'row'))}, ${e(formatBytes(r.bytes))} returned · ${e(countText(r.sessions.errors, 'error'))}</p>`,
  );
  sections.push('<h2>Identities</h2>', table(['issuer', 'subject', 'app id', 'object id'], r.identities.map((i) => [e(i.issuer), e(i.subject), e(i.appId ?? ''), e(i.objectId ?? '')])));
  sections.push(
    '<h2>Targets reached</h2>',
    table(['target', 'protocol', 'sessions', 'statements', 'first seen', 'last seen'], r.targets.map((t) => [e(t.target), e(t.protocol), String(t.sessions), String(t.statements), e(t.firstSeen), e(t.lastSeen)]), [2, 3]),
  );
  sections.push('<h2>Granted but never used</h2>');
  sections.push(
    r.unusedGrants === null
      ? '<p class="none">Grants were not given to the report.</p>'
      : r.unusedGrants.targets.length === 0
        ? '<p class="none">Every granted target was used.</p>'
        : `<p>Candidates for revocation:</p><ul>${r.unusedGrants.targets.map((t) => `<li class="unused">${e(t)}</li>`).join('')}</ul>`,
  );
  const [userTables, systemTables] = splitSystem(r.tables);
  sections.push('<h2>Tables touched</h2>', table(['target', 'table', 'statements', 'by class'], userTables.map((t) => [e(t.target), e(t.relation), String(t.statements), e(classList(t.classes))]), [2]));
  if (systemTables.length > 0) sections.push(`<p class="none">${e(SYSTEM_NOTE)}: ${systemTables.map((t) => `${e(t.relation)} (${t.statements})`).join(', ')}</p>`);
  sections.push(
    '<h2>Protected (masked) columns returned</h2>',
    table(['target', 'column', 'table', 'rule', 'results', 'rows'], r.protectedColumns.map((c) => [e(c.target), e(c.column), e(c.table ?? ''), e(c.rule), String(c.results), String(c.rows)]), [4, 5]),
  );
  sections.push(
    '<h2>Statements by class</h2>',
    table(['class', 'count', ...VERDICTS], r.statementsByClass.map((c) => [e(c.class), String(c.count), ...VERDICTS.map((v) => String(c.verdicts[v]))]), [1, 2, 3, 4, 5]),
  );
  sections.push(
    '<h2>Held for approval</h2>',
    table(
      ['when', 'decision', 'approver', 'reason', 'target', 'statement'],
      r.approvals.map((a) => [
        e(a.at),
        `<span class="tag ${e(a.decision)}">${e(a.decision)}</span>`,
        e(a.approver ?? ''),
        e(a.reason ?? ''),
        e(a.target),
        `<code>${e(a.sessionId)} #${a.statementId}${a.requestId ? ` · ${e(a.requestId)}` : ''}</code><pre>${e(a.text)}</pre>`,
      ]),
    ),
  );
  sections.push(
    '<h2>Denied</h2>',
    table(
      ['when', 'by', 'rule / approver', 'reason', 'target', 'statement'],
      r.denials.map((d) => [
        e(d.at),
        `<span class="tag ${e(d.by)}">${e(d.by)}</span>`,
        e(d.rule ?? d.approver ?? ''),
        e(d.reason ?? ''),
        e(d.target),
        `<code>${e(d.sessionId)} #${d.statementId}</code><pre>${e(d.text)}</pre>`,
      ]),
    ),
  );
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Access review: ${e(r.principal)}</title>
<style>${CSS}</style></head>
<body>
${sections.join('\n')}
</body></html>
`;
}
