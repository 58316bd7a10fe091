// `targets:` — the databases behind warden, by name. An agent names the target as the database in
// its connection string; warden connects upstream with the credential stored here, which the
// agent never sees.
//
//   targets:
//     shop:
//       protocol: postgres
//       host: db.internal
//       database: shop
//       user: warden_shop
//       password: ${env:SHOP_DB_PASSWORD}
//       tls: { mode: verify-full, ca_file: certs/db-ca.pem }
import type { TargetConfig, UpstreamTlsConfig, UpstreamTlsMode } from '../types.js';
import { HOUR, SECOND } from '../units.js';
import type { Field } from '../validate.js';
import { hostName, name } from './checks.js';
import { readCertificates } from './pem.js';

export const PROTOCOLS = ['postgres', 'tds'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const TLS_MODES: readonly UpstreamTlsMode[] = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'];

export const TARGET_DEFAULTS = {
  port: { postgres: 5432, tds: 1433 },
  /**
   * postgres: libpq's default. tds: encryption required, as current SQL Server drivers do
   * (Azure SQL refuses unencrypted logins anyway).
   */
  tlsMode: { postgres: 'prefer', tds: 'require' },
  connectTimeout: 10 * SECOND,
} as const satisfies {
  port: Record<Protocol, number>;
  tlsMode: Record<Protocol, UpstreamTlsMode>;
  connectTimeout: number;
};

const TARGET_KEYS = ['protocol', 'host', 'port', 'database', 'user', 'password', 'access_token', 'tls', 'connect_timeout'] as const;

export interface TargetsRead {
  targets: Map<string, TargetConfig>;
  /** Every name written, valid or not, so principals are checked against what the user meant. */
  names: ReadonlySet<string>;
}

export function readTargets(field: Field): TargetsRead | undefined {
  field.required(' (at least one database warden connects to)');
  const entries = field.entries({ check: name });
  if (!entries) return undefined;
  if (field.size === 0) field.fail('must name at least one target');
  const targets = new Map<string, TargetConfig>();
  const names = new Set<string>();
  /** Names folded to lower case: SQL Server logins name their database in any case (see TdsClientSession). */
  const folded = new Map<string, string>();
  for (const [targetName, f] of entries) {
    const same = folded.get(targetName.toLowerCase());
    if (same !== undefined) f.fail(`names the same target as "${same}" but for letter case; target names must differ in more than case`);
    else folded.set(targetName.toLowerCase(), targetName);
    names.add(targetName);
    const target = readTarget(f, targetName);
    if (target) targets.set(targetName, target);
  }
  return { targets, names };
}

function readTarget(field: Field, targetName: string): TargetConfig | undefined {
  const s = field.section(TARGET_KEYS);
  if (!s) return undefined;
  const protocol = s.need('protocol').oneOf(PROTOCOLS);
  const host = s.need('host').string({ check: hostName });
  const port = s.get('port').integer({ min: 1, max: 65535 }) ?? TARGET_DEFAULTS.port[protocol ?? 'postgres'];
  const database = s.need('database').string();
  const tls = readUpstreamTls(s.get('tls'), protocol);
  const connectTimeout = s.get('connect_timeout').duration({ min: 1, max: HOUR }) ?? TARGET_DEFAULTS.connectTimeout;
  const common = { name: targetName, port, connectTimeout };

  if (protocol === 'postgres') {
    s.forbid('access_token', 'is only for tds targets; postgres targets log in with user and password');
    const user = s.need('user').string();
    const password = s.need('password').string({ secret: true });
    if (host === undefined || database === undefined || tls === undefined || user === undefined || password === undefined) return undefined;
    return { ...common, protocol, host, database, user, password, tls };
  }
  if (protocol === 'tds') {
    const login = readTdsLogin(s.get('user'), s.get('password'), s.get('access_token'));
    if (host === undefined || database === undefined || tls === undefined || login === undefined) return undefined;
    return { ...common, protocol, host, database, tls, ...login };
  }
  return undefined;
}

/** SQL login (user + password) or an access token presented through FEDAUTH: exactly one. */
function readTdsLogin(userField: Field, passwordField: Field, tokenField: Field): { user: string; password: string } | { accessToken: string } | undefined {
  if (tokenField.present) {
    const accessToken = tokenField.string({ secret: true });
    if (userField.present || passwordField.present) {
      tokenField.fail('cannot be combined with user and password (a tds target logs in with one or the other)');
      return undefined;
    }
    return accessToken === undefined ? undefined : { accessToken };
  }
  const hint = ' (a tds target logs in with user and password, or with access_token)';
  const user = userField.required(hint).string();
  const password = passwordField.required(hint).string({ secret: true });
  return user === undefined || password === undefined ? undefined : { user, password };
}

function readUpstreamTls(field: Field, protocol: Protocol | undefined): UpstreamTlsConfig | undefined {
  const s = field.section(['mode', 'ca_file', 'server_name']);
  if (!s) return undefined;
  const modeField = s.get('mode');
  const mode = modeField.oneOf(TLS_MODES) ?? (modeField.present ? undefined : TARGET_DEFAULTS.tlsMode[protocol ?? 'postgres']);
  const caField = s.get('ca_file');
  const verifying = mode === 'verify-ca' || mode === 'verify-full';
  if (verifying) caField.required(` for mode ${mode} (the PEM certificates of the CA that signed the server's certificate)`);
  else if (mode !== undefined && caField.present) {
    caField.fail(`is only used with mode verify-ca or verify-full (mode is ${mode}, which does not check the server's certificate)`);
  }
  const ca = verifying ? readCertificates(caField, 'CA certificate') : undefined;
  const serverNameField = s.get('server_name');
  const serverName = serverNameField.string({ check: hostName });
  if (mode === 'disable' && serverNameField.present) serverNameField.fail('is not used with mode disable');
  if (mode === undefined || (verifying && ca === undefined)) return undefined;
  return {
    mode,
    ...(ca !== undefined ? { ca: ca.pem, caFile: ca.path } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
  };
}
