// Session tickets: a short opaque credential exchanged for a validated OIDC access token, for
// clients that cannot carry a token as their password (FreeTDS truncates every LOGIN7 string,
// the password included, to 128 characters; a JWT is longer).
//
//   POST /tickets   Authorization: Bearer <access token>   [{"ttl_seconds": 900}]
//   → {"ticket": "wdt_…", "expires_at": "…"}
//
// The agent then presents the ticket as its password. A ticket carries exactly the identity of
// the token it was exchanged for, never outlives that token, expires after its own ttl (default
// 15 minutes), and lives only in this warden process's memory (hashed), so it works on the
// instance that issued it. Tickets follow the same rule as tokens: TLS only, unless the
// configuration allows plaintext tokens from loopback.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestPathOf, sendJson } from '../admin/server.js';
import type { Logger } from '../log.js';
import { AuthError, type TokenVerifier, type VerifiedIdentity } from './types.js';

export const TICKET_PREFIX = 'wdt_';
const DEFAULT_TTL_SECONDS = 15 * 60;
const MAX_TTL_SECONDS = 12 * 3600;
/** A POST /tickets body is at most {"ttl_seconds": N}. */
const MAX_BODY_BYTES = 4096;
/** More live tickets than this means misuse: the oldest are dropped. */
const MAX_TICKETS = 100_000;

interface Entry {
  digest: Buffer;
  identity: VerifiedIdentity;
  expiresAt: number;
}

export class TicketStore {
  private readonly byDigest = new Map<string, Entry>();

  /** Issues a ticket for an identity already verified from a token. */
  issue(identity: VerifiedIdentity, ttlSeconds = DEFAULT_TTL_SECONDS): { ticket: string; expiresAt: Date } {
    const now = Date.now();
    const tokenEnd = identity.expiresAt?.getTime() ?? now;
    const expiresAt = Math.min(now + Math.min(Math.max(ttlSeconds, 1), MAX_TTL_SECONDS) * 1000, tokenEnd);
    if (expiresAt <= now) throw new AuthError('token expired');
    const ticket = `${TICKET_PREFIX}${randomBytes(24).toString('base64url')}`;
    const digest = createHash('sha256').update(ticket).digest();
    this.prune(now);
    if (this.byDigest.size >= MAX_TICKETS) {
      const oldest = this.byDigest.keys().next().value;
      if (oldest !== undefined) this.byDigest.delete(oldest);
    }
    // The ticket's identity expires with the ticket, so sessions opened with it end on time.
    this.byDigest.set(digest.toString('hex'), { digest, identity: { ...identity, expiresAt: new Date(expiresAt) }, expiresAt });
    return { ticket, expiresAt: new Date(expiresAt) };
  }

  /** The identity a ticket stands for; AuthError when it is unknown or expired. */
  redeem(ticket: string): VerifiedIdentity {
    const digest = createHash('sha256').update(ticket).digest();
    const entry = this.byDigest.get(digest.toString('hex'));
    if (!entry || !timingSafeEqual(entry.digest, digest)) throw new AuthError('ticket is unknown or expired', 'no such ticket on this warden instance');
    if (entry.expiresAt <= Date.now()) {
      this.byDigest.delete(digest.toString('hex'));
      throw new AuthError('ticket is unknown or expired', 'ticket expired');
    }
    return entry.identity;
  }

  get size(): number {
    return this.byDigest.size;
  }

  private prune(now: number): void {
    for (const [k, e] of this.byDigest) if (e.expiresAt <= now) this.byDigest.delete(k);
  }
}

/** A verifier that accepts tickets as well as tokens. */
export function withTickets(verifier: TokenVerifier, tickets: TicketStore): TokenVerifier {
  return {
    verify: async (credential) => (credential.startsWith(TICKET_PREFIX) ? tickets.redeem(credential) : verifier.verify(credential)),
  };
}

/** `POST /tickets` on the admin server. */
export function ticketsHttp(verifier: TokenVerifier, tickets: TicketStore, logger: Logger): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/tickets') return false;
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'method not allowed (use POST)' });
      return true;
    }
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m || (m[1] as string).startsWith(TICKET_PREFIX)) {
      sendJson(res, 401, { error: 'send the access token to exchange: Authorization: Bearer <access token>' });
      return true;
    }
    let ttl = DEFAULT_TTL_SECONDS;
    const body = await readBody(req);
    if (body === undefined) {
      // Answered, not dropped: the client learns why, and an unauthenticated caller cannot
      // write error-level log lines by sending large bodies.
      res.setHeader('connection', 'close');
      sendJson(res, 413, { error: `the body is larger than ${MAX_BODY_BYTES} bytes` });
      return true;
    }
    if (body.length) {
      try {
        const parsed = JSON.parse(body) as { ttl_seconds?: unknown };
        if (parsed.ttl_seconds !== undefined) {
          if (typeof parsed.ttl_seconds !== 'number' || !Number.isInteger(parsed.ttl_seconds) || parsed.ttl_seconds < 1) throw new Error('bad ttl');
          ttl = parsed.ttl_seconds;
        }
      } catch {
        sendJson(res, 400, { error: 'the body must be JSON like {"ttl_seconds": 900}' });
        return true;
      }
    }
    try {
      const identity = await verifier.verify(m[1] as string, requestPathOf(req));
      const issued = tickets.issue(identity, ttl);
      logger.info({ issuer: identity.issuerName, subject: identity.subject, expiresAt: issued.expiresAt.toISOString() }, 'ticket issued');
      sendJson(res, 200, { ticket: issued.ticket, expires_at: issued.expiresAt.toISOString() });
    } catch (err) {
      sendJson(res, 401, { error: err instanceof AuthError ? `token rejected: ${err.reason}` : 'token rejected' });
    }
    return true;
  };
}

/** The body as text, or undefined when it is larger than MAX_BODY_BYTES (the rest is not kept). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? '0') > MAX_BODY_BYTES) {
      req.resume();
      resolve(undefined);
      return;
    }
    let size = 0;
    const chunks: Buffer[] = [];
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(c);
        return;
      }
      // Answer at once; the rest is read and dropped until the connection closes.
      req.off('data', onData);
      req.resume();
      resolve(undefined);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
