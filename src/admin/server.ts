// The admin HTTP server: /healthz, /metrics, the dev issuer's JWKS, and (as features land) the
// approvals and audit APIs. It listens on loopback by default; routes are plain functions that
// return true when they handled the request.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { ListenConfig } from '../config/types.js';
import { isLoopbackHost } from '../config/sections/checks.js';
import type { Metrics } from './metrics.js';

/** The path of an admin request, without its query string: what log lines about it name. */
export function requestPathOf(req: http.IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] as string;
}

export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;

export interface AdminServerOptions {
  metrics: Metrics;
  logger: Logger;
  /** Extra facts for /healthz. */
  health(): Record<string, unknown>;
}

export class AdminServer {
  private readonly server: http.Server;
  private readonly routes: Route[] = [];

  constructor(private readonly opts: AdminServerOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
    this.routes.push((req, res) => this.builtin(req, res));
  }

  /** Adds a route; routes are tried in the order they were added. */
  use(route: Route): void {
    this.routes.push(route);
  }

  private builtin(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok', ...this.opts.health() });
      return true;
    }
    if (path === '/metrics') {
      const body = this.opts.metrics.render();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return true;
    }
    return false;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      for (const route of this.routes) {
        if (await route(req, res)) return;
      }
      sendJson(res, 404, { error: 'not found' });
    } catch (err) {
      this.opts.logger.error({ err, path: req.url }, 'admin request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  }

  listen(cfg: ListenConfig): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(cfg.port, cfg.host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-content-type-options': 'nosniff' });
  res.end(text);
}

/** Base URL for a listening address, e.g. http://127.0.0.1:9187 */
export function httpBase(addr: AddressInfo): string {
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `http://${host}:${addr.port}`;
}

/**
 * The warning logged at start for an admin listener other hosts can reach: it speaks plain HTTP,
 * and approvers, auditors and agents exchanging tickets send it bearer tokens.
 */
export function adminExposureWarning(host: string): string | undefined {
  if (isLoopbackHost(host)) return undefined;
  return `the admin listener on ${host} can be reached from other hosts and speaks plain HTTP: bearer tokens (approvers, auditors, POST /tickets) would cross the network in clear; keep it on 127.0.0.1 or put a TLS-terminating proxy in front of it`;
}
