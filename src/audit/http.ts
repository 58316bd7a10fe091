// The transcripts on the admin HTTP API, for auditors (the same data as `warden sessions`,
// `replay`, `review` and `audit verify`):
//
//   GET /sessions?principal=&target=&since=&until=&table=&verdict=   → { sessions: [...] }
//   GET /sessions/:id                                                 → the replay (timeline) as JSON
//   GET /review?principal=NAME&since=30d&until=now&format=json|html   → the access-review report
//   GET /transcripts/verify                                           → the integrity report
//   GET /transcripts/health                                           → the writer's (and shipper's) state
//
// With a shared store configured (transcripts.ship), the reads and verify use it — the sessions of
// every instance — unless `?source=local` asks for this instance's files.
//
// Every call needs `Authorization: Bearer <access token>` from a trusted issuer, matching one of
// `transcripts.auditors`. With no auditors configured nobody can read transcripts over HTTP.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PrincipalMatch, PrincipalRule } from '../config/types.js';
import { AuthError, type TokenVerifier, type VerifiedIdentity } from '../identity/types.js';
import type { Logger } from '../log.js';
import { ruleMatches } from '../policy/principals.js';
import { sendJson } from '../admin/server.js';
import { checkWindow, parseWhen } from './cli-support.js';
import { TranscriptReaderMemoryError, TranscriptReadError, TranscriptTooLargeError } from './errors.js';
import { runReadJobOffThread, type ReadAnswer } from './read-worker.js';
import { listSessions, type RecordSource, type SessionFilter } from './reader.js';
import { loadSession, replayJson } from './replay.js';
import { buildReview, renderReviewHtml } from './review.js';
import type { WriterHealth } from './segment-writer.js';
import type { ShipHealth } from './ship.js';
import type { PostgresTranscriptStore } from './store-postgres.js';
import { verifyStore } from './store-postgres-verify.js';
import type { Verdict } from './types.js';
import { requestPathOf } from '../admin/server.js';
import type { PriorityState } from '../pg/recording/priority.js';

export interface AuditorRule {
  name: string;
  match: PrincipalMatch;
}

export interface TranscriptsHttpOptions {
  dir: string;
  publicKeyFile: string;
  auditors: readonly AuditorRule[];
  verifier: TokenVerifier;
  /** Principal rules, so the review can list granted targets never used. */
  principals: readonly PrincipalRule[];
  /** All target names (to expand "*" grants). */
  targets: readonly string[];
  health(): WriterHealth | undefined;
  /** The recording thread's chain (src/pg/recording/), when there is one. */
  threadHealth?(): (WriterHealth & { pendingBytes: number; lagMs: number; priority: PriorityState }) | undefined;
  threadShipHealth?(): ShipHealth | undefined;
  /** The shared store the instances ship to: read by default when given. */
  shared?: PostgresTranscriptStore;
  shipHealth?(): ShipHealth | undefined;
  logger: Logger;
  /** The most records GET /sessions/:id holds in memory (default DEFAULT_HTTP_REPLAY_RECORDS). */
  maxReplayRecords?: number;
}

/**
 * A replay is built in memory, inside the proxy (on a worker thread): about 3 KB per record, so 50,000 records are some
 * 150 MB. Larger sessions are replayed with the CLI, in its own process.
 */
export const DEFAULT_HTTP_REPLAY_RECORDS = 50_000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const VERDICTS: readonly Verdict[] = ['allow', 'deny', 'hold', 'mask'];

export function transcriptsHttp(opts: TranscriptsHttpOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const auditorOf = async (req: IncomingMessage): Promise<{ identity: VerifiedIdentity; rule: AuditorRule }> => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m) throw new HttpError(401, 'missing bearer token (send Authorization: Bearer <access token>)');
    let identity: VerifiedIdentity;
    try {
      identity = await opts.verifier.verify(m[1] as string, requestPathOf(req));
    } catch (err) {
      throw new HttpError(401, err instanceof AuthError ? err.reason : 'token could not be verified');
    }
    const rule = opts.auditors.find((a) => ruleMatches(identity, a.match));
    if (!rule) {
      throw new HttpError(403, opts.auditors.length === 0 ? 'no auditors are configured (transcripts.auditors)' : 'this identity is not an auditor');
    }
    return { identity, rule };
  };

  const grantedTargets = (principal: string): string[] | undefined => {
    const rule = opts.principals.find((p) => p.name === principal);
    if (!rule) return undefined;
    return rule.targets.includes('*') ? [...opts.targets] : [...rule.targets];
  };

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const isOurs = path === '/sessions' || path.startsWith('/sessions/') || path === '/review' || path.startsWith('/transcripts/');
    if (!isOurs) return false;
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method not allowed (use GET)');
      const auditor = await auditorOf(req);
      opts.logger.info({ auditor: auditor.rule.name, subject: auditor.identity.subject, path }, 'transcript access');
      const now = new Date();
      const q = (k: string): string | undefined => url.searchParams.get(k) ?? undefined;
      const sourceParam = q('source');
      if (sourceParam !== undefined && sourceParam !== 'local' && sourceParam !== 'store') throw new HttpError(400, 'source must be local or store');
      if (sourceParam === 'store' && !opts.shared) throw new HttpError(400, 'no shared store is configured (transcripts.ship)');
      const shared = sourceParam === 'local' ? undefined : opts.shared;
      const source: string | RecordSource = shared ? shared.source() : opts.dir;
      const window = (fallbackSince?: string, fallbackUntil?: string): { since?: Date; until?: Date } => {
        try {
          const v = { since: q('since') ?? fallbackSince, until: q('until') ?? fallbackUntil };
          const since = v.since === undefined ? undefined : parseWhen(v.since, now, 'since');
          const until = v.until === undefined ? undefined : parseWhen(v.until, now, 'until');
          checkWindow(since, until, 'since', 'until');
          return { ...(since ? { since } : {}), ...(until ? { until } : {}) };
        } catch (err) {
          throw new HttpError(400, (err as Error).message);
        }
      };
      if (path === '/sessions') {
        const verdict = q('verdict');
        if (verdict !== undefined && !(VERDICTS as readonly string[]).includes(verdict)) throw new HttpError(400, `verdict must be one of ${VERDICTS.join(', ')}`);
        const { since, until } = window();
        const filter: SessionFilter = {
          ...(q('principal') ? { principal: q('principal') as string } : {}),
          ...(q('target') ? { target: q('target') as string } : {}),
          ...(q('table') ? { table: q('table') as string } : {}),
          ...(verdict ? { verdict: verdict as Verdict } : {}),
          ...(since ? { since } : {}),
          ...(until ? { until } : {}),
        };
        if (typeof source === 'string') send(res, 200, await runReadJobOffThread({ op: 'sessions', dir: source, filter }));
        else sendJson(res, 200, { sessions: await listSessions(source, filter) });
        return true;
      }
      if (path.startsWith('/sessions/')) {
        let id = '';
        try {
          id = decodeURIComponent(path.slice('/sessions/'.length));
        } catch {
          // Not percent-encoded UTF-8: no session id looks like that.
        }
        if (!/^[A-Za-z0-9._:-]{4,128}$/.test(id)) throw new HttpError(400, 'invalid session id');
        const maxRecords = opts.maxReplayRecords ?? DEFAULT_HTTP_REPLAY_RECORDS;
        try {
          if (typeof source === 'string') send(res, 200, await runReadJobOffThread({ op: 'session', dir: source, id, maxRecords }));
          else sendJson(res, 200, replayJson(await loadSession(source, id, { maxRecords })));
        } catch (err) {
          if (!(err instanceof TranscriptTooLargeError)) throw err;
          throw new HttpError(413, `session ${id} has more than ${maxRecords} records, too many to replay inside warden; use warden replay ${id} --format json on the transcript files`);
        }
        return true;
      }
      if (path === '/review') {
        const principal = q('principal');
        if (!principal) throw new HttpError(400, 'principal is required (?principal=NAME)');
        const format = q('format') ?? 'json';
        if (format !== 'json' && format !== 'html') throw new HttpError(400, 'format must be json or html');
        const granted = grantedTargets(principal);
        const period = window('30d', 'now');
        const options = {
          principal,
          since: period.since as Date,
          until: period.until as Date,
          ...(granted ? { grantedTargets: granted } : {}),
        };
        if (typeof source === 'string') {
          send(res, 200, await runReadJobOffThread({ op: 'review', dir: source, options, format }), format);
          return true;
        }
        const report = await buildReview(source, options);
        if (format === 'html') send(res, 200, { body: renderReviewHtml(report), ok: true }, 'html');
        else sendJson(res, 200, report);
        return true;
      }
      if (path === '/transcripts/verify') {
        if (shared) {
          const report = await verifyStore(shared);
          sendJson(res, report.ok ? 200 : 409, report);
        } else {
          const answer = await runReadJobOffThread({ op: 'verify', dir: opts.dir, publicKeyFile: opts.publicKeyFile });
          send(res, answer.ok ? 200 : 409, answer);
        }
        return true;
      }
      if (path === '/transcripts/health') {
        const shipping = opts.shipHealth?.();
        const thread = opts.threadHealth?.();
        const threadShipping = opts.threadShipHealth?.();
        sendJson(res, 200, {
          ...(opts.health() ?? { recording: false }),
          ...(shipping ? { shipping } : {}),
          ...(thread ? { recordingThread: { ...thread, ...(threadShipping ? { shipping: threadShipping } : {}) } } : {}),
        });
        return true;
      }
      throw new HttpError(404, 'not found');
    } catch (err) {
      if (err instanceof HttpError) {
        sendJson(res, err.status, { error: err.message });
        return true;
      }
      if (err instanceof TranscriptReaderMemoryError) {
        opts.logger.warn({ err: err.message, path }, 'transcript read failed');
        sendJson(res, 413, { error: `${err.message}; use the command line (warden sessions, replay, review, audit verify) on the transcript files` });
        return true;
      }
      if (err instanceof TranscriptReadError) {
        // Its message may name server paths: log it, answer without them.
        opts.logger.warn({ err: err.message, path }, 'transcript read failed');
        sendJson(res, 404, { error: err.message.split(opts.dir).join('the transcript store') });
        return true;
      }
      throw err;
    }
  };
}

/** Sends a body the reader already serialized: JSON (as sendJson writes it) or the review's HTML page. */
function send(res: ServerResponse, status: number, answer: ReadAnswer, format: 'json' | 'html' = 'json'): void {
  res.writeHead(status, {
    'content-type': format === 'html' ? 'text/html; charset=utf-8' : 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(answer.body),
    ...(format === 'html' ? { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'" } : {}),
    'x-content-type-options': 'nosniff',
  });
  res.end(answer.body);
}
