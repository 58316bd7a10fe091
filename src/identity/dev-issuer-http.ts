// Serves the dev issuer's public keys and discovery document over HTTP, for the admin server:
//   GET <basePath>/jwks.json                          → DevIssuer.jwks()
//   GET <basePath>/.well-known/openid-configuration   → DevIssuer.openidConfiguration()
// basePath should be the path of the issuer URL (default "/dev-issuer"), so that
// <issuer>/jwks.json, the URL the verifier fetches, lands here.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DevIssuer } from './dev-issuer.js';

export const DEV_ISSUER_BASE_PATH = '/dev-issuer';

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'public, max-age=60',
  'x-content-type-options': 'nosniff',
} as const;

/** Returns a handler that answers the dev issuer's routes and returns false for any other path. */
export function devIssuerHttpHandler(
  devIssuer: DevIssuer,
  basePath: string = DEV_ISSUER_BASE_PATH,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const base = basePath.replace(/\/+$/, '');
  const routes: Record<string, () => unknown> = {
    [`${base}/jwks.json`]: () => devIssuer.jwks(),
    [`${base}/.well-known/openid-configuration`]: () => devIssuer.openidConfiguration(),
  };
  return (req, res) => {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return false;
    }
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (!route) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return true;
    }
    const body = JSON.stringify(route());
    res.writeHead(200, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
