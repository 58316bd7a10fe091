// The approvals API on the admin server (JSON):
//   GET    /approvals                  list (?status=&target=&principal=&limit=)
//   GET    /approvals/events           server-sent events: request.created, request.decided,
//                                      request.expired, request.withdrawn, grant.created, grant.revoked
//   GET    /approvals/ui               a small page to review and decide (no data without a token)
//   GET    /approvals/:id              one request
//   POST   /approvals/:id/approve      {reason?, grant_minutes?}
//   POST   /approvals/:id/deny         {reason}
//   GET    /grants                     live grants (?all=true for revoked and expired too)
//   DELETE /grants/:id                 revoke ({reason?} or ?reason=)
// Every call except the page needs `Authorization: Bearer <access token>` from a trusted issuer:
// 401 when the token is missing or refused (with the short reason), 403 for a token no approver
// rule covers or for the requester themself, 404 unknown id, 409 already decided, 400 bad input,
// 503 when the store cannot be reached.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwt } from 'jose';
import type { Route } from '../admin/server.js';
import { sendJson } from '../admin/server.js';
import { AUTH_REASONS } from '../identity/reasons.js';
import { AuthError, type TokenVerifier } from '../identity/types.js';
import { silentLogger, type Logger } from '../log.js';
import type { Approver } from './approvers.js';
import type { ApproverRule } from './config.js';
import { ApprovalError, REQUEST_STATUSES, type ApprovalErrorCode, type RequestStatus } from './model.js';
import type { ApprovalServiceImpl, DecideInput } from './service.js';
import { approvalsPage } from './ui.js';
import { grantView, requestView } from './views.js';
import { requestPathOf } from '../admin/server.js';

const MAX_BODY_BYTES = 16 * 1024;
const HEARTBEAT_MS = 15_000;
const MAX_STREAM_BUFFER = 4 * 1024 * 1024;
const ID = /^(?:apr|grt)_[0-9a-z]{1,40}$/;
const DISPLAY_CLAIMS = ['preferred_username', 'upn', 'email', 'unique_name', 'name'] as const;

const STATUS_FOR: Record<ApprovalErrorCode, number> = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  bad_request: 400,
  store_unavailable: 503,
};

export interface ApprovalsHttpOptions {
  service: ApprovalServiceImpl;
  verifier: TokenVerifier;
  baseUrl: () => string;
  logger?: Logger;
}

export interface ApprovalsHttp {
  route: Route;
  /** Ends the open event streams. */
  close(): void;
}

export function approvalsHttp(opts: ApprovalsHttpOptions): ApprovalsHttp {
  const log = (opts.logger ?? silentLogger).child({ component: 'approvals-api' });
  const streams = new Set<ServerResponse>();
  let closed = false;

  const route: Route = async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const [root, id, action, extra] = parts;
    if (root !== 'approvals' && root !== 'grants') return false;
    if (url.pathname.endsWith('/') && url.pathname !== '/') return notFound(res);
    try {
      if (root === 'approvals' && id === 'ui' && action === undefined) {
        if (!allow(req, res, ['GET', 'HEAD'])) return true;
        const page = approvalsPage();
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-length': Buffer.byteLength(page.html),
          'content-security-policy': page.csp,
          'x-content-type-options': 'nosniff',
          'x-frame-options': 'DENY',
          'referrer-policy': 'no-referrer',
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : page.html);
        return true;
      }
      if (closed) throw new ApprovalError('store_unavailable', 'approvals are shut down');
      if (extra !== undefined) return notFound(res);
      if (root === 'approvals') {
        if (id === undefined) {
          if (!allow(req, res, ['GET'])) return true;
          const approver = await authenticate(req, opts.verifier);
          const requests = await opts.service.list(approver, requestFilter(url));
          sendJson(res, 200, { requests: requests.map((r) => requestView(r, { params: true, baseUrl: opts.baseUrl() })) });
          return true;
        }
        if (id === 'events' && action === undefined) {
          if (!allow(req, res, ['GET'])) return true;
          const approver = await authenticate(req, opts.verifier);
          openStream(req, res, approver, opts.service.requireApprover(approver));
          return true;
        }
        if (!ID.test(id)) return notFound(res);
        if (action === undefined) {
          if (!allow(req, res, ['GET'])) return true;
          const approver = await authenticate(req, opts.verifier);
          const request = await opts.service.get(approver, id);
          sendJson(res, 200, { request: requestView(request, { params: true, baseUrl: opts.baseUrl() }) });
          return true;
        }
        if (action !== 'approve' && action !== 'deny') return notFound(res);
        if (!allow(req, res, ['POST'])) return true;
        const approver = await authenticate(req, opts.verifier);
        const input = decideInput(action, await readJson(req));
        const result = await opts.service.decide(approver, id, input);
        sendJson(res, 200, {
          request: requestView(result.request, { params: true, baseUrl: opts.baseUrl() }),
          ...(result.grant ? { grant: grantView(result.grant, new Date()) } : {}),
        });
        return true;
      }
      // /grants
      if (id === undefined) {
        if (!allow(req, res, ['GET'])) return true;
        const approver = await authenticate(req, opts.verifier);
        const all = url.searchParams.get('all') === 'true';
        const now = new Date();
        const target = url.searchParams.get('target') ?? undefined;
        const principal = url.searchParams.get('principal') ?? undefined;
        const grants = await opts.service.grants(approver, {
          ...(all ? {} : { liveAt: now }),
          ...(target ? { target } : {}),
          ...(principal ? { principal } : {}),
          ...limitOf(url),
        });
        sendJson(res, 200, { grants: grants.map((g) => grantView(g, now)) });
        return true;
      }
      if (!ID.test(id) || action !== undefined) return notFound(res);
      if (!allow(req, res, ['DELETE'])) return true;
      const approver = await authenticate(req, opts.verifier);
      const body = await readJson(req);
      const reason = optionalString(body, 'reason') ?? url.searchParams.get('reason') ?? undefined;
      const grant = await opts.service.revoke(approver, id, reason);
      sendJson(res, 200, { grant: grantView(grant, new Date()) });
      return true;
    } catch (err) {
      if (err instanceof ApprovalError) {
        if (res.headersSent) {
          res.destroy();
          return true;
        }
        const headers: Record<string, string> = err.code === 'unauthorized' ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {};
        for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
        if (err.code === 'store_unavailable') log.error({ err: err.message, path: url.pathname }, 'approvals API: store unavailable');
        sendJson(res, STATUS_FOR[err.code], { error: err.message, code: err.code, ...err.details });
        return true;
      }
      throw err;
    }
  };

  function openStream(req: IncomingMessage, res: ServerResponse, approver: Approver, rules: readonly ApproverRule[]): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    res.write('retry: 3000\n: connected\n\n');
    const lastId = Number.parseInt(String(req.headers['last-event-id'] ?? ''), 10);
    const unsubscribe = opts.service.events.subscribe((e) => {
      // Only what the approver's rules cover, as GET /approvals lists.
      if (!opts.service.approvers.covering(rules, eventScope(e.data))) return;
      // A client that stops reading is cut off rather than buffered without bound; it can resume with Last-Event-ID.
      if (res.writableLength > MAX_STREAM_BUFFER) {
        res.destroy();
        return;
      }
      res.write(`id: ${e.seq}\nevent: ${e.event}\ndata: ${e.json}\n\n`);
    }, Number.isSafeInteger(lastId) ? lastId : undefined);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    // The stream lives no longer than the token that opened it.
    const expires = approver.identity.expiresAt ? approver.identity.expiresAt.getTime() - Date.now() : undefined;
    const expiry = expires !== undefined ? setTimeout(() => {
      res.write('event: token.expired\ndata: {}\n\n');
      res.end();
    }, Math.max(0, Math.min(expires, 2 ** 31 - 1))) : undefined;
    expiry?.unref();
    streams.add(res);
    const done = (): void => {
      unsubscribe();
      clearInterval(heartbeat);
      clearTimeout(expiry);
      streams.delete(res);
    };
    res.on('close', done);
    req.on('close', done);
  }

  return {
    route,
    close() {
      closed = true;
      for (const s of streams) s.end();
      streams.clear();
    },
  };
}

/** The target, statement rule and principal an event's request or grant is about. */
function eventScope(data: Record<string, unknown>): { target: string; rule: string; principal: string } {
  const item = (data.request ?? data.grant ?? {}) as { target?: unknown; rule?: unknown; principal?: { name?: unknown } };
  return { target: String(item.target ?? ''), rule: String(item.rule ?? ''), principal: String(item.principal?.name ?? '') };
}

function notFound(res: ServerResponse): true {
  sendJson(res, 404, { error: 'not found', code: 'not_found' });
  return true;
}

function allow(req: IncomingMessage, res: ServerResponse, methods: string[]): boolean {
  if (methods.includes(req.method ?? 'GET')) return true;
  res.setHeader('allow', methods.join(', '));
  sendJson(res, 405, { error: `method not allowed (use ${methods.join(' or ')})`, code: 'method_not_allowed' });
  return false;
}

/** The caller's verified identity, from `Authorization: Bearer …`. */
export async function authenticate(req: IncomingMessage, verifier: TokenVerifier): Promise<Approver> {
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) throw new ApprovalError('unauthorized', 'missing bearer token (send Authorization: Bearer <access token>)');
  const token = m[1] as string;
  let identity;
  try {
    identity = await verifier.verify(token, requestPathOf(req));
  } catch (err) {
    const reason = err instanceof AuthError ? err.reason : AUTH_REASONS.unverifiable;
    throw new ApprovalError('unauthorized', reason);
  }
  return { identity, ...displayNameOf(token) };
}

/** A human-readable name from the (already verified) token's claims. */
function displayNameOf(token: string): { displayName?: string } {
  try {
    const claims = decodeJwt(token);
    for (const c of DISPLAY_CLAIMS) {
      const v = claims[c];
      if (typeof v === 'string' && v.trim() !== '') return { displayName: v.trim().slice(0, 200) };
    }
  } catch {
    // verified already; no display claims then
  }
  return {};
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY_BYTES) throw new ApprovalError('bad_request', `request body is larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApprovalError('bad_request', `request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApprovalError('bad_request', 'request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ApprovalError('bad_request', 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApprovalError('bad_request', `${key} must be a string`);
  return v;
}

function decideInput(action: 'approve' | 'deny', body: Record<string, unknown>): DecideInput {
  const known = action === 'approve' ? ['reason', 'grant_minutes'] : ['reason'];
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new ApprovalError('bad_request', `unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')} (expected ${known.join(', ')})`);
  const reason = optionalString(body, 'reason');
  const input: DecideInput = { action, ...(reason !== undefined ? { reason } : {}) };
  const g = body.grant_minutes;
  if (g !== undefined && g !== null) {
    if (typeof g !== 'number') throw new ApprovalError('bad_request', 'grant_minutes must be a number of minutes');
    input.grantMinutes = g;
  }
  return input;
}

function limitOf(url: URL): { limit?: number } {
  const text = url.searchParams.get('limit');
  if (text === null) return {};
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ApprovalError('bad_request', 'limit must be a positive whole number');
  return { limit: n };
}

function requestFilter(url: URL): { status?: RequestStatus; target?: string; principal?: string; limit?: number } {
  const status = url.searchParams.get('status');
  if (status !== null && !(REQUEST_STATUSES as readonly string[]).includes(status)) {
    throw new ApprovalError('bad_request', `status must be one of ${REQUEST_STATUSES.join(', ')}`);
  }
  const target = url.searchParams.get('target');
  const principal = url.searchParams.get('principal');
  return {
    ...(status !== null ? { status: status as RequestStatus } : {}),
    ...(target ? { target } : {}),
    ...(principal ? { principal } : {}),
    ...limitOf(url),
  };
}
