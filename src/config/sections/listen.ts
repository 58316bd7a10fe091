// `listen:` — where warden accepts connections: the PostgreSQL and TDS listeners for agents and
// the admin HTTP port. Each is optional; a listener that is not configured is not started.
//
//   listen:
//     postgres: { host: 127.0.0.1, port: 6432 }
//     tds:      { host: 127.0.0.1, port: 11433 }
//     admin:    { host: 127.0.0.1, port: 8080 }
import type { ListenConfig, WardenConfig } from '../types.js';
import type { Field } from '../validate.js';
import { listenHost } from './checks.js';

export const LISTENERS = ['postgres', 'tds', 'admin'] as const;
export type ListenerName = (typeof LISTENERS)[number];

export const DEFAULT_LISTEN_HOST = '127.0.0.1';

export interface ListenOptions {
  /**
   * Agents' token logins need TLS (no tls section and plaintext_tokens: never): a postgres or tds
   * listener would then refuse every login, which is reported here rather than at the first client.
   */
  tokensNeedTls: boolean;
}

export function readListen(field: Field, opts: ListenOptions): WardenConfig['listen'] | undefined {
  const s = field.section(LISTENERS);
  if (!s) return undefined;
  const listen: WardenConfig['listen'] = {};
  const taken: Array<{ name: ListenerName; config: ListenConfig }> = [];
  for (const name of LISTENERS) {
    const f = s.get(name);
    if (!f.present) continue;
    const listener = readListener(f);
    if (!listener) continue;
    listen[name] = listener.config;
    const clash = taken.find((t) => sameSocket(t.config, listener.config));
    if (clash) listener.port.fail(`is already used by listen.${clash.name} (${clash.config.host}:${clash.config.port})`);
    taken.push({ name, config: listener.config });
    if (opts.tokensNeedTls && name !== 'admin') {
      f.fail(
        'agents log in with tokens, which are only accepted over TLS (plaintext_tokens: never), but there is no tls section; ' +
          'add tls.cert_file and tls.key_file (or tls.self_signed: true), or set plaintext_tokens: loopback for local use',
      );
    }
  }
  return listen;
}

function readListener(field: Field): { config: ListenConfig; port: Field } | undefined {
  const s = field.section(['host', 'port']);
  if (!s) return undefined;
  const host = s.get('host').string({ check: listenHost }) ?? DEFAULT_LISTEN_HOST;
  const portField = s.need('port');
  // 0 asks the system for a free port (tests); the bound port is logged at start.
  const port = portField.integer({ min: 0, max: 65535 });
  return port === undefined ? undefined : { config: { host, port }, port: portField };
}

const WILDCARDS: ReadonlySet<string> = new Set(['0.0.0.0', '::']);
const LOCAL_V4: ReadonlySet<string> = new Set(['localhost', '127.0.0.1']);

function sameSocket(a: ListenConfig, b: ListenConfig): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  return a.host === b.host || WILDCARDS.has(a.host) || WILDCARDS.has(b.host) || (LOCAL_V4.has(a.host) && LOCAL_V4.has(b.host));
}
