// TLS for TDS, both ways: inside PRELOGIN (TDS 7.x, TLS 1.2, through PreloginTlsAdapter) or on the
// bare socket before any TDS byte (TDS 8.0 "strict", ALPN tds/8.0).
import net from 'node:net';
import tls from 'node:tls';
import { PACKET_TYPE } from '../../protocols/tds/index.js';
import type { TdsTargetConfig } from '../config/types.js';
import { PreloginTlsAdapter } from './prelogin-tls.js';
import { ConnectionClosedError, DeadlineError } from './message-reader.js';

export const TDS8_ALPN = 'tds/8.0';

/** warden's certificate for TDS clients, in the two shapes TDS needs. */
export interface TdsServerTls {
  /** TLS 1.2 only, for handshakes inside PRELOGIN (SQL Server offers no more there). */
  prelogin: tls.SecureContext;
  /** TLS 1.2 and 1.3, for TDS 8.0 strict connections. */
  strict: tls.SecureContext;
}

export function tdsServerTls(pair: { cert: string; key: string }): TdsServerTls {
  return {
    prelogin: tls.createSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }),
    strict: tls.createSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' }),
  };
}

export interface TlsSessionInfo {
  protocol: string | null;
  cipher: string | null;
  alpn?: string;
}

function info(s: tls.TLSSocket): TlsSessionInfo {
  const alpn = s.alpnProtocol;
  return { protocol: s.getProtocol(), cipher: s.getCipher()?.name ?? null, ...(typeof alpn === 'string' ? { alpn } : {}) };
}

function handshake<T>(secure: tls.TLSSocket, event: 'secure' | 'secureConnect', deadline: number, done: () => T, failure: (err: Error) => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new DeadlineError('TLS handshake timed out'));
    }, Math.max(0, deadline - Date.now()));
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(failure(err));
    };
    secure.once('error', onError);
    secure.once(event, () => {
      clearTimeout(timer);
      secure.off('error', onError);
      secure.setNoDelay?.(true);
      secure.pause();
      try {
        resolve(done());
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

/** Server side, TDS 7.x: the client's handshake arrives in PRELOGIN packets. */
export async function acceptPreloginTls(raw: net.Socket, ctx: TdsServerTls, deadline: number): Promise<{ secure: tls.TLSSocket; adapter: PreloginTlsAdapter; info: TlsSessionInfo }> {
  const adapter = new PreloginTlsAdapter(raw, { acceptTypes: [PACKET_TYPE.PRELOGIN] });
  const secure = new tls.TLSSocket(adapter, { isServer: true, secureContext: ctx.prelogin });
  secure.on('error', () => undefined); // the session owns errors from here; see handshake() for the first
  return handshake(secure, 'secure', deadline, () => ({ secure, adapter, info: info(secure) }), (err) => new ConnectionClosedError(`TLS handshake failed: ${err.message}`));
}

/** Server side, TDS 8.0: TLS first, on the bare socket, with ALPN tds/8.0. */
export async function acceptStrictTls(raw: net.Socket, ctx: TdsServerTls, deadline: number): Promise<{ secure: tls.TLSSocket; info: TlsSessionInfo }> {
  const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx.strict, ALPNProtocols: [TDS8_ALPN] });
  secure.on('error', () => undefined);
  return handshake(secure, 'secure', deadline, () => ({ secure, info: info(secure) }), (err) => new ConnectionClosedError(`TLS handshake failed: ${err.message}`));
}

/** Why TLS with a target failed; `kind` matches UpstreamError's. */
export class UpstreamTlsError extends Error {
  override readonly name = 'UpstreamTlsError';
}

/** tls.connect options for a target: its CA, server name, and verification mode. */
export function clientTlsOptions(target: TdsTargetConfig): tls.ConnectionOptions {
  const mode = target.tls.mode;
  const verify = mode === 'verify-ca' || mode === 'verify-full';
  const servername = target.tls.serverName ?? (net.isIP(target.host) ? undefined : target.host);
  const options: tls.ConnectionOptions = {
    rejectUnauthorized: verify,
    ...(target.tls.ca !== undefined ? { ca: target.tls.ca } : {}),
    ...(servername !== undefined ? { servername } : {}),
  };
  if (mode === 'verify-ca') options.checkServerIdentity = () => undefined;
  if (mode === 'verify-full') {
    const name = target.tls.serverName ?? target.host;
    options.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(name, cert);
  }
  return options;
}

/** Client side, TDS 7.x: warden's handshake goes out in PRELOGIN packets. */
export async function connectPreloginTls(raw: net.Socket, target: TdsTargetConfig, deadline: number): Promise<{ secure: tls.TLSSocket; adapter: PreloginTlsAdapter; info: TlsSessionInfo }> {
  const adapter = new PreloginTlsAdapter(raw, { acceptTypes: [PACKET_TYPE.PRELOGIN, PACKET_TYPE.TABULAR_RESULT] });
  const secure = tls.connect({ ...clientTlsOptions(target), socket: adapter, maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2' });
  secure.on('error', () => undefined);
  return handshake(secure, 'secureConnect', deadline, () => ({ secure, adapter, info: info(secure) }), (err) => new UpstreamTlsError(err.message));
}

/** Client side, TDS 8.0: TLS first, ALPN tds/8.0. */
export async function connectStrictTls(raw: net.Socket, target: TdsTargetConfig, deadline: number): Promise<{ secure: tls.TLSSocket; info: TlsSessionInfo }> {
  const secure = tls.connect({ ...clientTlsOptions(target), socket: raw, ALPNProtocols: [TDS8_ALPN], minVersion: 'TLSv1.2' });
  secure.on('error', () => undefined);
  return handshake(secure, 'secureConnect', deadline, () => ({ secure, info: info(secure) }), (err) => new UpstreamTlsError(err.message));
}
