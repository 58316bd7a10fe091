// `warden approvals …`: review and decide held statements through the admin HTTP API, as an
// approver (the token is an approver's access token, like the page at /approvals/ui uses).
// Errors print the API's answer and exit 1; usage errors exit 2.
import { parseArgs } from 'node:util';
import { visibleText } from '../../approvals/visible.js';

export const summary = 'list, show, approve or deny held statements; list and revoke grants';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9187';

const USAGE = `usage: warden approvals <command> [options]

commands:
  list                      requests waiting for a decision (--all: every request; or --status,
                            --target, --principal, --limit)
  show ID                   one request: who, where, the statement, its parameters, the decision
  approve ID                run the held statement once; --grant 30m also lets the same principal
                            run statements with this fingerprint on this target without waiting
  deny ID --reason TEXT     refuse it; the agent gets an error with your reason
  grants                    live grants (--all: revoked and expired too)
  revoke GRANT_ID           end a grant now
  watch                     follow new and decided requests as they happen

options:
  --reason TEXT     why (required for deny; recorded with the decision)
  --grant DURATION  with approve: a grant for 15m, 2h, … (whole minutes, at most approvals.grant_max)
  --url URL         warden's admin URL (default $WARDEN_ADMIN_URL, else ${DEFAULT_ADMIN_URL})
  --token TOKEN     your access token (default $WARDEN_TOKEN; prefer the variable: arguments
                    are visible to other users of the machine)
  --json            print the API's JSON answer
  -h, --help        show this help`;

export interface CommandIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env?: NodeJS.ProcessEnv;
  /** Ends `watch` (default: SIGINT). */
  signal?: AbortSignal;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

class ApiError extends Error {
  override readonly name = 'ApiError';
}

interface Flags {
  positionals: string[];
  reason?: string;
  grant?: string;
  url?: string;
  token?: string;
  status?: string;
  target?: string;
  principal?: string;
  limit?: string;
  all: boolean;
  json: boolean;
  help: boolean;
}

function parseFlags(args: string[]): Flags {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        reason: { type: 'string' },
        grant: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        status: { type: 'string' },
        target: { type: 'string' },
        principal: { type: 'string' },
        limit: { type: 'string' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const flags: Flags = { positionals: parsed.positionals, all: v.all ?? false, json: v.json ?? false, help: v.help ?? false };
  for (const key of ['reason', 'grant', 'url', 'token', 'status', 'target', 'principal', 'limit'] as const) {
    const value = v[key];
    if (value !== undefined) flags[key] = value;
  }
  return flags;
}

/** "30m", "2h", "1d" or a bare number of minutes → whole minutes. */
export function parseGrant(text: string): number {
  const m = /^(\d+)\s*(m|min|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--grant: '${text}' is not a duration like 30m, 2h or 1d`);
  const n = Number(m[1]);
  const minutes = m[2] === 'h' ? n * 60 : m[2] === 'd' ? n * 1440 : n;
  if (minutes < 1) throw new UsageError('--grant must be at least 1 minute');
  return minutes;
}

interface Client {
  base: string;
  token: string;
}

async function call(client: Client, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(`${client.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${client.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new ApiError(`cannot reach warden at ${client.base}: ${networkReason(err)}`);
  }
  const text = await res.text();
  let data: Record<string, unknown> = {};
  try {
    data = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    if (!res.ok) throw new ApiError(`HTTP ${res.status} ${res.statusText}`);
    throw new ApiError(`warden answered with something that is not JSON (is ${client.base} warden's admin URL?)`);
  }
  if (!res.ok) throw new ApiError(`HTTP ${res.status}: ${typeof data.error === 'string' ? data.error : res.statusText}`);
  return data;
}

/** fetch() says "fetch failed"; the reason (ECONNREFUSED, a TLS error, a timeout) is in its cause. */
export function networkReason(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer within 30 s';
  return e.cause?.code ?? e.cause?.message ?? e.message;
}

type Row = Record<string, unknown>;
/** A value of the API's answer as text for the terminal: hidden and reordering characters made visible. */
const str = (v: unknown): string => (v === undefined || v === null ? '' : visibleText(String(v)));

function relative(iso: unknown, now: number): string {
  const t = Date.parse(str(iso));
  if (Number.isNaN(t)) return '';
  const s = Math.round((t - now) / 1000);
  const abs = Math.abs(s);
  const text = abs >= 3600 ? `${Math.floor(abs / 3600)}h${Math.floor((abs % 3600) / 60)}m` : abs >= 60 ? `${Math.floor(abs / 60)}m${abs % 60}s` : `${abs}s`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

function requestTable(requests: Row[]): string {
  if (requests.length === 0) return 'no requests';
  const now = Date.now();
  const rows = [['ID', 'STATUS', 'EXPIRES', 'PRINCIPAL', 'TARGET', 'RULE', 'STATEMENT']];
  for (const r of requests) {
    const principal = (r.principal ?? {}) as Row;
    rows.push([str(r.id), str(r.status), r.status === 'pending' ? relative(r.expires_at, now) : '', str(principal.name), str(r.target), str(r.rule), oneLine(str(r.statement), 60)]);
  }
  return table(rows);
}

function grantTable(grants: Row[]): string {
  if (grants.length === 0) return 'no grants';
  const now = Date.now();
  const rows = [['ID', 'STATUS', 'EXPIRES', 'PRINCIPAL', 'TARGET', 'APPROVER', 'STATEMENT']];
  for (const g of grants) {
    const principal = (g.principal ?? {}) as Row;
    const approver = (g.approver ?? {}) as Row;
    rows.push([str(g.id), str(g.status), relative(g.expires_at, now), str(principal.name), str(g.target), str(approver.label), oneLine(str(g.normalized), 50)]);
  }
  return table(rows);
}

function describeRequest(r: Row): string {
  const principal = (r.principal ?? {}) as Row;
  const lines = [
    `request    ${str(r.id)} (${str(r.status)})`,
    `principal  ${str(principal.name)} (${str(principal.issuer)}:${str(principal.subject)})`,
    `target     ${str(r.target)} (${str(r.protocol)}), session ${str(r.session_id)} from ${str(r.client_address)} on ${str(r.instance_id)}`,
    `rule       ${str(r.rule)}: ${str(r.reason)}`,
    `created    ${str(r.created_at)}`,
    `expires    ${str(r.expires_at)} (${relative(r.expires_at, Date.now())})`,
  ];
  const d = r.decision as Row | undefined;
  if (d) {
    const by = (d.by ?? {}) as Row;
    const extra = d.grant_id ? ` with grant ${str(d.grant_id)}` : '';
    lines.push(`decision   ${str(r.status)}${by.label ? ` by ${str(by.label)}` : ''} at ${str(d.at)}${extra}${d.reason ? `: ${str(d.reason)}` : ''}`);
  }
  lines.push(`review     ${str(r.url)}`, '', str(r.statement));
  const params = r.params as unknown[] | undefined;
  if (params && params.length > 0) {
    lines.push('', 'parameters:');
    params.forEach((p, i) => lines.push(`  $${i + 1} = ${p === null ? 'NULL' : str(p)}`));
  }
  return lines.join('\n');
}

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

function needId(flags: Flags, what: string): string {
  const [, id, ...rest] = flags.positionals;
  if (id === undefined) throw new UsageError(`${what} needs an id`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  return encodeURIComponent(id);
}

export async function run(args: string[], io: CommandIO = process): Promise<number> {
  const env = io.env ?? process.env;
  let flags: Flags;
  try {
    flags = parseFlags(args);
  } catch (err) {
    io.stderr.write(`warden approvals: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const sub = flags.positionals[0];
  if (flags.help || sub === undefined || sub === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return sub === undefined && !flags.help ? 2 : 0;
  }
  const out = (text: string): void => void io.stdout.write(`${text}\n`);
  try {
    const token = flags.token ?? env.WARDEN_TOKEN;
    if (token === undefined || token.trim() === '') throw new UsageError('no access token: set WARDEN_TOKEN or pass --token');
    const base = (flags.url ?? env.WARDEN_ADMIN_URL ?? DEFAULT_ADMIN_URL).replace(/\/+$/, '');
    if (!/^https?:\/\//.test(base)) throw new UsageError(`--url must be an http(s) URL, got '${base}'`);
    const client: Client = { base, token: token.trim() };
    switch (sub) {
      case 'list': {
        if (flags.positionals.length > 1) throw new UsageError(`unexpected argument '${flags.positionals[1]}'`);
        const status = flags.status ?? (flags.all ? undefined : 'pending');
        const data = await call(client, 'GET', `/approvals${query({ status, target: flags.target, principal: flags.principal, limit: flags.limit })}`);
        out(flags.json ? JSON.stringify(data, null, 2) : requestTable((data.requests ?? []) as Row[]));
        return 0;
      }
      case 'show': {
        const data = await call(client, 'GET', `/approvals/${needId(flags, 'show')}`);
        out(flags.json ? JSON.stringify(data, null, 2) : describeRequest((data.request ?? {}) as Row));
        return 0;
      }
      case 'approve': {
        const id = needId(flags, 'approve');
        const body: Record<string, unknown> = {};
        if (flags.reason !== undefined) body.reason = flags.reason;
        if (flags.grant !== undefined) body.grant_minutes = parseGrant(flags.grant);
        const data = await call(client, 'POST', `/approvals/${id}/approve`, body);
        const grant = data.grant as Row | undefined;
        out(flags.json ? JSON.stringify(data, null, 2) : grant ? `approved ${decodeURIComponent(id)}; grant ${str(grant.id)} until ${str(grant.expires_at)}` : `approved ${decodeURIComponent(id)}`);
        return 0;
      }
      case 'deny': {
        const id = needId(flags, 'deny');
        if (flags.grant !== undefined) throw new UsageError('--grant is only for approve');
        if (flags.reason === undefined || flags.reason.trim() === '') throw new UsageError('deny needs --reason (the agent sees it)');
        const data = await call(client, 'POST', `/approvals/${id}/deny`, { reason: flags.reason });
        out(flags.json ? JSON.stringify(data, null, 2) : `denied ${decodeURIComponent(id)}`);
        return 0;
      }
      case 'grants': {
        if (flags.positionals.length > 1) throw new UsageError(`unexpected argument '${flags.positionals[1]}'`);
        const data = await call(client, 'GET', `/grants${query({ all: flags.all ? 'true' : undefined, target: flags.target, principal: flags.principal, limit: flags.limit })}`);
        out(flags.json ? JSON.stringify(data, null, 2) : grantTable((data.grants ?? []) as Row[]));
        return 0;
      }
      case 'revoke': {
        const id = needId(flags, 'revoke');
        const data = await call(client, 'DELETE', `/grants/${id}`, flags.reason !== undefined ? { reason: flags.reason } : {});
        out(flags.json ? JSON.stringify(data, null, 2) : `revoked ${decodeURIComponent(id)}`);
        return 0;
      }
      case 'watch':
        return await watch(client, flags.json, io);
      default:
        throw new UsageError(`unknown command '${sub}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`warden approvals: ${err.message}\nrun 'warden approvals --help' for the commands\n`);
      return 2;
    }
    if (err instanceof ApiError) {
      io.stderr.write(`warden approvals ${sub}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Prints one line per event from /approvals/events until interrupted or the stream ends. */
async function watch(client: Client, json: boolean, io: CommandIO): Promise<number> {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  const external = io.signal;
  if (external) external.addEventListener('abort', stop, { once: true });
  else process.once('SIGINT', stop);
  try {
    let res: Response;
    try {
      res = await fetch(`${client.base}/approvals/events`, { headers: { authorization: `Bearer ${client.token}` }, signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) return 0;
      throw new ApiError(`cannot reach warden at ${client.base}: ${networkReason(err)}`);
    }
    if (!res.ok || !res.body) {
      const data = (await res.json().catch(() => ({}))) as Row;
      throw new ApiError(`HTTP ${res.status}: ${str(data.error) || res.statusText}`);
    }
    io.stderr.write(`following approval events from ${client.base} (Ctrl-C to stop)\n`);
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
          if (event === undefined || data === '') continue;
          const payload = JSON.parse(data) as Row;
          if (json) io.stdout.write(`${JSON.stringify({ event, ...payload })}\n`);
          else io.stdout.write(`${eventLine(event, payload)}\n`);
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw new ApiError(`event stream broke: ${(err as Error).message}`);
    }
    return 0;
  } finally {
    if (external) external.removeEventListener('abort', stop);
    else process.off('SIGINT', stop);
  }
}

function eventLine(event: string, payload: Row): string {
  const at = new Date().toISOString().slice(11, 19);
  const r = payload.request as Row | undefined;
  if (r) {
    const principal = (r.principal ?? {}) as Row;
    const by = ((r.decision as Row | undefined)?.by ?? {}) as Row;
    const who = by.label ? ` by ${str(by.label)}` : '';
    return `${at} ${event} ${str(r.id)} ${str(r.status)}${who} ${str(principal.name)}@${str(r.target)} [${str(r.rule)}] ${oneLine(str(r.statement), 60)}`;
  }
  const g = (payload.grant ?? {}) as Row;
  return `${at} ${event} ${str(g.id)} ${str(g.status)} until ${str(g.expires_at)} ${oneLine(str(g.normalized), 60)}`;
}
