// The masking engine: one per warden process. It compiles the configured rules once, keeps one
// catalog per target (shared by that target's sessions), and hands each session a SessionMasker
// holding the rules that apply to its principal.
import type { MaskingConfig } from '../config/sections/masking.js';
import type { TargetConfig } from '../config/types.js';
import type { Principal } from '../identity/types.js';
import { initSqlParser, type StatementInfo } from '../sql/index.js';
import { TargetCatalog } from './catalog.js';
import { MaskingContext } from './context.js';
import { planCopy } from './copy.js';
import { planRows } from './plan.js';
import { compileRules, PrincipalRules, type CompiledRule } from './rules.js';
import { scrubMessage } from './scrub.js';
import { checkStatement, type StatementCheck } from './statement-check.js';
import {
  MaskingError,
  type CopyMaskPlan,
  type CopyResponse,
  type FieldDescription,
  type MaskingEngine,
  type MaskVerdict,
  type RowMaskPlan,
  type SessionMasker,
} from './types.js';

export interface MaskingEngineOptions {
  masking: MaskingConfig | undefined;
  targets: ReadonlyMap<string, TargetConfig>;
  /** Catalog snapshots older than this are read again before the next plan; default 60 s. */
  catalogMaxAgeMs?: number;
}

/** A session masker whose principal no rule applies to: every call is a no-op. */
const INERT: SessionMasker = {
  inert: true,
  checkStatement: () => ({ action: 'allow' }),
  plan: (fields) => ({ active: false, columns: fields.map(() => null), rewriteDataRow: () => undefined }),
  copyPlan: (copy) => ({ active: false, columns: copy.columnFormats.map(() => null), rewriteCopyData: () => undefined }),
  scrubMessage: () => undefined,
  invalidate: () => undefined,
  ready: () => Promise.resolve(),
};


export class Masker implements SessionMasker {
  readonly inert = false;
  /**
   * Some statement of this session touched protected data (or could not be analysed). Without
   * the statement an error answers, side channels are scrubbed from then on.
   */
  private touchedOnce = false;

  constructor(readonly ctx: MaskingContext) {}

  /** checkStatement with every finding, for explain-mask and transcripts. */
  check(stmt: StatementInfo | undefined): StatementCheck {
    const c = checkStatement(this.ctx, stmt);
    if (c.touched) this.touchedOnce = true;
    return c;
  }

  checkStatement(stmt: StatementInfo | undefined): MaskVerdict {
    return this.check(stmt).verdict;
  }

  plan(fields: readonly FieldDescription[], stmt: StatementInfo | undefined): Promise<RowMaskPlan> {
    return planRows(this.ctx, fields, stmt).then((p) => {
      if (p.active) this.touchedOnce = true;
      return p;
    });
  }

  copyPlan(copy: CopyResponse, stmt: StatementInfo | undefined): Promise<CopyMaskPlan> {
    return planCopy(this.ctx, copy, stmt);
  }

  /** See SessionMasker.scrubMessage (and its optional `stmt`). */
  scrubMessage(buf: Buffer, start: number, end: number, stmt?: StatementInfo | null): Buffer | undefined {
    const touched = stmt === undefined ? this.touchedOnce : stmt === null ? false : checkStatement(this.ctx, stmt).touched;
    return scrubMessage(this.ctx, buf, start, end, { touched, statement: stmt ?? undefined });
  }

  invalidate(): void {
    this.ctx.catalog.invalidate();
  }

  /** See SessionMasker.ready. */
  async ready(): Promise<void> {
    await this.ctx.catalog.ready();
  }

  /** See SessionMasker.catalogReloading. */
  catalogReloading(): boolean {
    return this.ctx.catalog.current() === undefined;
  }
}

export class WardenMaskingEngine implements MaskingEngine {
  private readonly rules: readonly CompiledRule[];
  private readonly catalogs = new Map<string, TargetCatalog>();

  constructor(private readonly opts: MaskingEngineOptions) {
    this.rules = opts.masking ? compileRules(opts.masking) : [];
  }

  /** The rules that apply to a principal (empty: the session is inert). */
  rulesFor(principal: Principal): PrincipalRules {
    return PrincipalRules.for(this.rules, principal);
  }

  catalog(target: string): TargetCatalog {
    let c = this.catalogs.get(target);
    if (!c) {
      const t = this.opts.targets.get(target);
      if (!t) throw new MaskingError('masking', `target "${target}" is not configured`);
      if (t.protocol !== 'postgres') throw new MaskingError('masking', `masking of target "${target}" (${t.protocol}) is not supported yet`);
      c = new TargetCatalog(t, this.opts.catalogMaxAgeMs);
      this.catalogs.set(target, c);
    }
    return c;
  }

  async session(ctx: { principal: Principal; target: string }): Promise<SessionMasker> {
    const masker = await this.masker(ctx);
    return masker ?? INERT;
  }

  /** The session masker, or undefined when no rule applies to the principal. */
  async masker(ctx: { principal: Principal; target: string }): Promise<Masker | undefined> {
    const rules = this.rulesFor(ctx.principal);
    if (rules.empty) return undefined;
    await initSqlParser();
    const catalog = this.catalog(ctx.target);
    try {
      await catalog.ready();
    } catch (err) {
      const first = rules.first ?? rules.all[0];
      throw new MaskingError(first?.name ?? 'masking', `cannot load the catalog of target "${ctx.target}": ${err instanceof Error ? err.message : String(err)}`);
    }
    return new Masker(new MaskingContext(rules, catalog));
  }

  async close(): Promise<void> {
    const all = [...this.catalogs.values()];
    this.catalogs.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}

export function createMaskingEngine(opts: MaskingEngineOptions): WardenMaskingEngine {
  return new WardenMaskingEngine(opts);
}
