// The masking engine's view of one target's catalog, through a metadata connection (node-postgres
// with the target's stored credential and TLS settings). It keeps a CatalogSnapshot for the
// synchronous parts (lineage, name resolution) and resolves RowDescription origins (table OID,
// attribute number) through it; an OID the snapshot does not know (a table created since) is
// looked up on its own and cached (lru-cache). invalidate() after DDL drops everything and
// reloads. Any failure is reported to the caller, which fails closed.
//
// The metadata connection runs with an empty search_path, so pg_get_viewdef() qualifies every
// name and view definitions can be traced without knowing any session's search_path.
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import { LRUCache } from 'lru-cache';
import pg from 'pg';
import type { FieldDescription } from '../../protocols/postgres/backend-messages.js';
import type { PostgresTargetConfig } from '../config/types.js';
import { CATALOG_BUILTIN_FUNCTIONS, PURE_BUILTIN_FUNCTIONS } from '../sql/functions.js';
import { CatalogSnapshot, VIEW_KINDS, type CatalogColumn, type Relation } from './catalog-snapshot.js';
import type { CatalogType } from './pg-types.js';

/** Relation kinds whose columns can appear in results. */
const KINDS = `('r', 'p', 'f', 'v', 'm')`;
/** First OID of user-created objects (FirstNormalObjectId): types below it are built in. */
const FIRST_NORMAL_OID = 16384;
const ORIGIN_CACHE = 10_000;
const DEFAULT_MAX_AGE_MS = 60_000;

const RELATIONS_SQL = `
  SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
         CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END AS definition
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ${KINDS} AND n.nspname NOT LIKE 'pg\\_toast%'`;
const COLUMNS_SQL = `
  SELECT a.attrelid::int8 AS rel, a.attname AS name, a.attnum AS attnum, a.atttypid::int8 AS type, a.atttypmod AS typmod
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ${KINDS} AND n.nspname NOT LIKE 'pg\\_toast%' AND a.attnum > 0 AND NOT a.attisdropped
   ORDER BY a.attrelid, a.attnum`;
const TYPES_SQL = `
  SELECT oid::int8 AS oid, typcategory AS category, typelem::int8 AS element, typbasetype::int8 AS base
    FROM pg_catalog.pg_type WHERE oid >= ${FIRST_NORMAL_OID}`;

/**
 * Functions outside pg_catalog named like a built-in that lineage traces through (`lower`,
 * `format`, …): an unqualified call may run one of them instead (a better argument-type match, or
 * a search_path that puts its schema first), so it cannot be traced as the built-in. Functions of
 * an installed extension (citext's `replace(citext, …)`, pgcrypto's `gen_random_uuid`) are left
 * out: an extension is installed by the DBA (an agent under masking rules cannot create one), and
 * these compute on their arguments as the built-ins do.
 */
const SHADOWING_SQL = `
  SELECT DISTINCT p.proname AS name, n.nspname AS schema
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname <> 'pg_catalog' AND p.proname = ANY($1::text[])
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e')
   ORDER BY 1, 2`;
const BUILTIN_NAMES = [...new Set([...PURE_BUILTIN_FUNCTIONS, ...CATALOG_BUILTIN_FUNCTIONS])];

interface RelationRow { oid: string; schema: string; name: string; kind: string; definition: string | null }
interface ColumnRow { rel: string; name: string; attnum: number; type: string; typmod: number }
interface TypeRow { oid: string; category: string; element: string; base: string }
interface ShadowRow { name: string; schema: string }

/** Where one RowDescription column comes from. `column` is undefined for attnum 0 (a whole row). */
export interface ColumnOrigin {
  relation: Relation;
  column: CatalogColumn | undefined;
  attnum: number;
}

export class CatalogError extends Error {
  override readonly name = 'CatalogError';
}

/** node-postgres `ssl` settings equivalent to the target's upstream TLS mode. */
export function sslOptions(t: PostgresTargetConfig): false | ConnectionOptions {
  const { mode, ca, serverName } = t.tls;
  if (mode === 'disable') return false;
  if (mode === 'prefer' || mode === 'require') return { rejectUnauthorized: false };
  const name = serverName ?? t.host;
  return {
    rejectUnauthorized: true,
    ...(ca !== undefined ? { ca } : {}),
    servername: name,
    checkServerIdentity: mode === 'verify-ca' ? () => undefined : (_host, cert) => checkServerIdentity(name, cert),
  };
}

function clientConfig(t: PostgresTargetConfig, ssl: false | ConnectionOptions): pg.ClientConfig {
  return {
    host: t.host,
    port: t.port,
    database: t.database,
    user: t.user,
    password: t.password,
    ssl,
    connectionTimeoutMillis: t.connectTimeout,
    application_name: 'warden-masking-catalog',
  };
}

/** Connects like the relay does: with TLS unless disabled, falling back to plaintext only for `prefer`. */
export async function connectTarget(t: PostgresTargetConfig): Promise<pg.Client> {
  const attempt = async (ssl: false | ConnectionOptions): Promise<pg.Client> => {
    const c = new pg.Client(clientConfig(t, ssl));
    c.on('error', () => undefined); // a dead connection is noticed at the next query
    await c.connect();
    return c;
  };
  try {
    return await attempt(sslOptions(t));
  } catch (err) {
    if (t.tls.mode === 'prefer' && /does not support SSL/i.test(String(err))) return attempt(false);
    throw err;
  }
}

export class TargetCatalog {
  private client: Promise<pg.Client> | undefined;
  private snapshot: CatalogSnapshot | undefined;
  private loading: Promise<CatalogSnapshot> | undefined;
  private readonly origins = new LRUCache<string, ColumnOrigin>({ max: ORIGIN_CACHE });
  private closed = false;

  constructor(
    readonly target: PostgresTargetConfig,
    /**
     * A snapshot older than this is read again before the next plan (DDL run by other sessions,
     * which no invalidate() reports). Synchronous checks keep using it until the new one is in.
     */
    private readonly maxAgeMs = DEFAULT_MAX_AGE_MS,
  ) {}

  /**
   * The current snapshot for synchronous callers; undefined while none is loaded or after
   * invalidate() until the reload is done (a snapshot from before DDL could misjudge a view that
   * was just redefined, so it is not used).
   */
  current(): CatalogSnapshot | undefined {
    return this.snapshot;
  }

  /** The snapshot, loading it first when there is none, it was invalidated, or it is too old. */
  ready(): Promise<CatalogSnapshot> {
    if (this.loading) return this.loading;
    if (this.snapshot && Date.now() - this.snapshot.loadedAt < this.maxAgeMs) return Promise.resolve(this.snapshot);
    return this.reload();
  }

  /** DDL ran: forget what is known and start reading it again. */
  invalidate(): void {
    this.origins.clear();
    this.snapshot = undefined;
    this.loading = undefined;
    void this.reload().catch(() => undefined);
  }

  private reload(): Promise<CatalogSnapshot> {
    const p = this.load().then(
      (s) => {
        if (this.loading === p) {
          this.snapshot = s;
          this.loading = undefined;
          this.origins.clear();
        }
        return s;
      },
      (err: unknown) => {
        if (this.loading === p) this.loading = undefined;
        throw err;
      },
    );
    this.loading = p;
    return p;
  }

  private async connection(): Promise<pg.Client> {
    if (this.closed) throw new CatalogError('the catalog of this target is closed');
    this.client ??= connectTarget(this.target).then(async (c) => {
      await c.query("SELECT pg_catalog.set_config('search_path', '', false)");
      c.on('end', () => {
        this.client = undefined;
      });
      return c;
    });
    try {
      return await this.client;
    } catch (err) {
      this.client = undefined;
      throw new CatalogError(`cannot connect to target "${this.target.name}" for its catalog: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const c = await this.connection();
    try {
      return (await c.query<R>(sql, params)).rows;
    } catch (err) {
      throw new CatalogError(`catalog query failed on target "${this.target.name}": ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async load(): Promise<CatalogSnapshot> {
    const started = Date.now();
    const [rels, cols, types, shadows] = [
      await this.query<RelationRow>(RELATIONS_SQL),
      await this.query<ColumnRow>(COLUMNS_SQL),
      await this.query<TypeRow>(TYPES_SQL),
      await this.query<ShadowRow>(SHADOWING_SQL, [BUILTIN_NAMES]),
    ];
    const shadowed = new Map<string, string>();
    for (const r of shadows) if (!shadowed.has(r.name)) shadowed.set(r.name, `${r.schema}.${r.name}`);
    return new CatalogSnapshot(assemble(rels, cols), typeMap(types), started, shadowed);
  }

  /** Where (table OID, attnum) comes from; throws CatalogError when it cannot be resolved. */
  async origin(tableOid: number, attnum: number): Promise<ColumnOrigin> {
    const key = `${tableOid}:${attnum}`;
    const hit = this.origins.get(key);
    if (hit) return hit;
    const snap = await this.ready();
    let rel = snap.byOid.get(tableOid);
    if (!rel || (attnum > 0 && !rel.columns.some((c) => c.attnum === attnum))) {
      rel = await this.fetchRelation(tableOid);
      if (rel) snap.add(rel);
    }
    if (!rel) throw new CatalogError(`relation ${tableOid} is not in the catalog of target "${this.target.name}"`);
    const column = attnum > 0 ? rel.columns.find((c) => c.attnum === attnum) : undefined;
    if (attnum > 0 && !column) throw new CatalogError(`column ${attnum} of relation ${tableOid} is not in the catalog`);
    const o: ColumnOrigin = { relation: rel, column, attnum };
    this.origins.set(key, o);
    return o;
  }

  private async fetchRelation(oid: number): Promise<Relation | undefined> {
    const rels = await this.query<RelationRow>(`${RELATIONS_SQL} AND c.oid = $1`, [oid]);
    if (rels.length === 0) return undefined;
    const cols = await this.query<ColumnRow>(`${COLUMNS_SQL.replace('ORDER BY', 'AND a.attrelid = $1 ORDER BY')}`, [oid]);
    return assemble(rels, cols)[0];
  }

  /**
   * The RowDescription PostgreSQL would send for `sql` (Parse + Describe, nothing runs), on a
   * fresh connection with the role's default search_path. For explain-mask.
   */
  async describe(sql: string): Promise<FieldDescription[] | undefined> {
    const c = await connectTarget(this.target);
    try {
      return await new Promise<FieldDescription[] | undefined>((resolve, reject) => {
        c.query(new DescribeStatement(sql, resolve, reject) as unknown as pg.Submittable);
      });
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    if (c) await c.then((x) => x.end()).catch(() => undefined);
  }
}

function assemble(rels: RelationRow[], cols: ColumnRow[]): Relation[] {
  const byOid = new Map<number, Relation>();
  for (const r of rels) {
    const rel: Relation = { oid: Number(r.oid), schema: r.schema, name: r.name, kind: r.kind, columns: [] };
    if (VIEW_KINDS.has(r.kind) && r.definition !== null) rel.definition = r.definition;
    byOid.set(rel.oid, rel);
  }
  for (const c of cols) {
    byOid.get(Number(c.rel))?.columns.push({ name: c.name, attnum: c.attnum, typeOid: Number(c.type), typmod: c.typmod });
  }
  return [...byOid.values()];
}

function typeMap(rows: TypeRow[]): Map<number, CatalogType> {
  return new Map(rows.map((r) => [Number(r.oid), { category: r.category, element: Number(r.element), base: Number(r.base) }]));
}

interface RowDescriptionMessage {
  fields: { name: string; tableID: number; columnID: number; dataTypeID: number; dataTypeSize: number; dataTypeModifier: number; format: string }[];
}

/** A node-postgres Submittable sending Parse + Describe(statement) + Sync. */
class DescribeStatement {
  private fields: FieldDescription[] | undefined;

  constructor(
    private readonly text: string,
    private readonly resolve: (f: FieldDescription[] | undefined) => void,
    private readonly reject: (e: Error) => void,
  ) {}

  submit(connection: { parse(q: { text: string; types: number[] }): void; describe(m: { type: string; name: string }): void; sync(): void }): void {
    connection.parse({ text: this.text, types: [] });
    connection.describe({ type: 'S', name: '' });
    connection.sync();
  }

  handleRowDescription(msg: RowDescriptionMessage): void {
    this.fields = msg.fields.map((f) => ({
      name: f.name,
      tableOid: f.tableID,
      columnAttr: f.columnID,
      typeOid: f.dataTypeID,
      typeSize: f.dataTypeSize,
      typeModifier: f.dataTypeModifier,
      format: 0,
    }));
  }

  // node-postgres drops the active query when an error arrives: its ReadyForQuery never reaches
  // this object, so an error settles the promise at once.
  handleError(err: Error): void {
    this.reject(err);
  }

  handleReadyForQuery(): void {
    this.resolve(this.fields);
  }

  // Not sent for a Describe; present so the client's dispatch never finds a missing handler.
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}
