// How a section names a PostgreSQL database warden keeps its own state in (the approvals store,
// the shared transcript store): a libpq URL, or the parts with tls; and the schema it uses.
import type { PostgresConnection } from '../../approvals/config.js';
import type { Field, Section } from '../validate.js';
import { hostName, urlOf } from './checks.js';
import { readCertificates } from './pem.js';

export const STORE_TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

/** The keys of the parts form (written instead of `url`). */
export const PG_PART_KEYS = ['host', 'port', 'database', 'user', 'password', 'tls'] as const;

/** Lower-case so the schema needs no quoting. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

export function schemaName(v: string): string | undefined {
  return SCHEMA_NAME.test(v) ? undefined : 'must be a lower-case SQL name (letters, digits, "_"; at most 48)';
}

/**
 * Reads `url` or the parts (host, port, database, user, password, tls) of section `s` into
 * `into`. False when they are wrong (the problems are recorded at their keys).
 */
export function readPostgresConnection(s: Section<string>, into: PostgresConnection): boolean {
  if (s.has('url')) {
    for (const key of PG_PART_KEYS) s.forbid(key, 'cannot be combined with url (write the connection as a URL or as parts, not both)');
    const url = s.get('url').string({ secret: true, check: postgresUrl });
    if (url === undefined) return false;
    into.url = url;
    return true;
  }
  const hint = ' (or write the connection as url: postgres://…)';
  const host = s.need('host', hint).string({ check: hostName });
  const port = s.get('port').integer({ min: 1, max: 65535 }) ?? 5432;
  const database = s.need('database', hint).string();
  const user = s.need('user', hint).string();
  const password = s.need('password', hint).string({ secret: true });
  const tls = readStoreTls(s.get('tls'));
  if (host === undefined || database === undefined || user === undefined || password === undefined || tls === undefined) return false;
  Object.assign(into, { host, port, database, user, password, tls });
  return true;
}

function postgresUrl(value: string): string | undefined {
  // The value is a secret (it holds the password): the reason never quotes it.
  const unparsable = /^postgres(?:ql)?:\/\//i.test(value)
    ? 'is not a valid postgres:// URL: check the port (1-65535) and percent-encode "@", "/", ":", "#", "?" and "%" in the user name and password'
    : 'must be a postgres:// URL';
  return urlOf(value, ['postgres:', 'postgresql:'], unparsable, 'must be a postgres:// URL');
}

function readStoreTls(field: Field): PostgresConnection['tls'] | undefined {
  const s = field.section(['mode', 'ca_file']);
  if (!s) return undefined;
  const modeField = s.get('mode');
  const mode = modeField.oneOf(STORE_TLS_MODES) ?? (modeField.present ? undefined : 'disable');
  if (mode === undefined) return undefined;
  const caField = s.get('ca_file');
  const verifying = mode === 'verify-ca' || mode === 'verify-full';
  if (verifying) caField.required(` for mode ${mode} (the PEM certificates of the CA that signed the server's certificate)`);
  else if (caField.present) caField.fail(`is only used with mode verify-ca or verify-full (mode is ${mode})`);
  if (!verifying) return { mode };
  const ca = readCertificates(caField, 'CA certificate');
  return ca === undefined ? undefined : { mode, ca: ca.pem };
}
