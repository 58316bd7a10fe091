// explain-mask: for a principal, a target and some SQL, which output columns would be masked,
// by which rule and why, and what the statement-level checks say — without running anything
// (the target describes each statement: Parse + Describe).
import type { Principal } from '../identity/types.js';
import { classify } from '../sql/index.js';
import type { WardenMaskingEngine } from './engine.js';
import type { Finding } from './statement-check.js';
import type { AppliedMask, MaskVerdict } from './types.js';

export interface ExplainColumn {
  name: string;
  mask: AppliedMask | null;
}

export interface ExplainStatement {
  text: string;
  verdict: MaskVerdict;
  /** Every inference / laundering finding, allowed ones included. */
  findings: { concern: Finding['concern']; rule: string; setting: string; reason: string }[];
  columns: ExplainColumn[];
  /** The whole result would be refused. */
  refuse?: { rule: string; message: string };
  /** Why the columns could not be described by the target (they then come from lineage alone). */
  note?: string;
}

export interface ExplainResult {
  principal: string;
  target: string;
  /** Names of the rules that apply to the principal. */
  rules: string[];
  statements: ExplainStatement[];
  /** Set when the SQL could not be parsed. */
  parseError?: string;
}

export async function explainMask(engine: WardenMaskingEngine, principal: Principal, target: string, sql: string): Promise<ExplainResult> {
  const rules = engine.rulesFor(principal).all.map((r) => r.name);
  const result: ExplainResult = { principal: principal.name, target, rules, statements: [] };
  const masker = await engine.masker({ principal, target });
  const parsed = classify(sql);
  if (!parsed.ok) {
    result.parseError = parsed.error;
    if (masker) {
      const c = masker.check(undefined);
      result.statements.push({ text: sql, verdict: c.verdict, findings: findingsOf(c.findings), columns: [] });
    }
    return result;
  }
  for (const stmt of parsed.statements) {
    if (!masker) {
      result.statements.push({ text: stmt.text, verdict: { action: 'allow' }, findings: [], columns: [] });
      continue;
    }
    const check = masker.check(stmt);
    const entry: ExplainStatement = { text: stmt.text, verdict: check.verdict, findings: findingsOf(check.findings), columns: [] };
    let fields;
    try {
      fields = await masker.ctx.catalog.describe(stmt.text);
    } catch (err) {
      entry.note = `the target could not describe the statement (${err instanceof Error ? err.message : String(err)}); columns are from lineage alone`;
      const snap = masker.ctx.catalog.current();
      const lin = snap ? masker.ctx.lineageOf(stmt, snap) : undefined;
      fields = lin?.output === 'rows' ? lin.columns.map((c) => ({ name: c.name, tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 })) : undefined;
    }
    if (fields) {
      const plan = await masker.plan(fields, stmt);
      entry.columns = fields.map((f, i) => ({ name: f.name, mask: plan.columns[i] ?? null }));
      if (plan.refuse) entry.refuse = plan.refuse;
    }
    result.statements.push(entry);
  }
  return result;
}

function findingsOf(findings: readonly Finding[]): ExplainStatement['findings'] {
  return findings.map((f) => ({
    concern: f.concern,
    rule: f.rule.name,
    setting: f.concern === 'inference' ? f.rule.inference : f.rule.laundering,
    reason: f.reason,
  }));
}

/** The human-readable report printed by `warden explain-mask`. */
export function formatExplain(r: ExplainResult): string {
  const lines: string[] = [];
  lines.push(`principal ${r.principal} on target ${r.target}: ${r.rules.length === 0 ? 'no masking rule applies (results pass unmasked)' : `rules ${r.rules.join(', ')}`}`);
  if (r.parseError !== undefined) lines.push(`the SQL could not be parsed (${r.parseError}): it is treated as touching every protected column`);
  r.statements.forEach((s, i) => {
    lines.push('');
    lines.push(`statement ${i + 1}: ${s.text.replace(/\s+/g, ' ').trim()}`);
    lines.push(`  verdict: ${s.verdict.action === 'allow' ? 'allow' : `${s.verdict.action} — ${s.verdict.reason}`}`);
    for (const f of s.findings) lines.push(`  ${f.concern}: ${f.reason} → rule ${f.rule} says ${f.setting}`);
    if (s.refuse) lines.push(`  result refused (42501): ${s.refuse.message} (rule ${s.refuse.rule})`);
    if (s.note) lines.push(`  note: ${s.note}`);
    if (r.rules.length === 0 && r.parseError === undefined) {
      // Nothing to mask: the target is not asked to describe the statement.
      lines.push('  columns: all in clear (no masking rule applies to this principal)');
      return;
    }
    if (s.columns.length === 0) {
      lines.push('  columns: none (the statement returns no rows)');
      return;
    }
    const width = Math.max(...s.columns.map((c) => c.name.length));
    lines.push('  columns:');
    for (const c of s.columns) {
      const m = c.mask;
      const what = !m ? 'clear' : m.conditional ? `masked where content matches (${m.strategy}, rule ${m.rule}): ${m.because}` : `masked (${m.strategy}, rule ${m.rule}): ${m.because}`;
      lines.push(`    ${c.name.padEnd(width)}  ${what}`);
    }
  });
  return lines.join('\n');
}
