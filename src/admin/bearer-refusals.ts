// The admin API's bearer tokens (auditors, approvers, agents exchanging tickets) are checked by the
// same verifier as agents' logins; this wrapper makes a refusal there as visible as a refused login:
// a log line with the request path, reason and detail (never the token) and
// warden_auth_failures_total{protocol="http"}.
import type { Logger } from '../log.js';
import { AuthError, type TokenVerifier } from '../identity/types.js';
import type { Metrics } from './metrics.js';

export function loggedBearerVerifier(verifier: TokenVerifier, metrics: Metrics, logger: Logger): TokenVerifier {
  return {
    verify: async (token, presentedAt) => {
      try {
        return await verifier.verify(token);
      } catch (err) {
        if (err instanceof AuthError) {
          metrics.authFailuresTotal.inc({ protocol: 'http', reason: err.reason });
          logger.warn({ path: presentedAt, reason: err.reason, detail: err.detail }, 'bearer token refused');
        }
        throw err;
      }
    },
  };
}
