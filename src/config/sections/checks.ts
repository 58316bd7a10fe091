// Value checks shared by sections. Each returns the reason a value is wrong, or undefined; the
// Field reader adds `, got "value"` (unless the value is secret or came from the environment).
import { isIP } from 'node:net';

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '::1']);

/** Names of targets, issuers and principals: they appear in connection strings, logs and rules. */
export function name(value: string): string | undefined {
  return NAME.test(value) ? undefined : 'must start with a letter and hold only letters, digits, "_" and "-" (at most 63)';
}

/** Where warden listens: a literal address, so it is unambiguous which interface is exposed. */
export function listenHost(value: string): string | undefined {
  if (value === 'localhost' || isIP(value) !== 0) return undefined;
  if (/^\[.*\]$/.test(value)) return 'must be an IP address or "localhost" (write IPv6 addresses without brackets)';
  return 'must be a literal IP address (such as 127.0.0.1, 0.0.0.0 or ::1) or "localhost"';
}

/** An upstream server: a DNS name or an IP address. */
export function hostName(value: string): string | undefined {
  if (isIP(value) !== 0) return undefined;
  const labels = value.split('.');
  const ok = value.length <= 253 && labels.every((label) => HOST_LABEL.test(label));
  return ok ? undefined : 'must be a host name or an IP address (without port or scheme)';
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return LOOPBACK_NAMES.has(bare) || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/** An absolute http(s) URL. */
export function httpUrl(value: string): string | undefined {
  return urlOf(value, ['https:', 'http:'], 'must be an absolute URL (https://…)', 'must be an http or https URL');
}

/** `value` parsed as a URL with one of `protocols`: undefined, or `unparsable` / `otherProtocol`. */
export function urlOf(value: string, protocols: readonly string[], unparsable: string, otherProtocol = unparsable): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return unparsable;
  }
  return protocols.includes(url.protocol) ? undefined : otherProtocol;
}

/**
 * A URL warden fetches keys from: https, or http to a loopback address only (anyone on the path
 * of a plain-http fetch could substitute their own keys and forge tokens).
 */
export function keyUrl(value: string): string | undefined {
  const reason = httpUrl(value);
  if (reason !== undefined) return reason;
  const url = new URL(value);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    return 'must use https (plain http is only allowed for loopback addresses such as 127.0.0.1)';
  }
  return undefined;
}
