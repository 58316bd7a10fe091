// parseConfig / loadConfig: every section's rules, defaults, cross-references, positions, env
// interpolation, and the example policy.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, loadConfig, parseConfig, type Problem } from '../../src/config/load.js';
import { DEV_TENANT_ID } from '../../src/config/sections/identity.js';
import { fixturePath, projectRoot } from '../../src/embedded/seed.js';
import { lineCol, valueOf } from './config-helpers.js';

/** A small valid configuration; tests replace one part of it. */
const parts = {
  listen: 'listen:\n  postgres: { host: 127.0.0.1, port: 6432 }\n',
  tls: 'plaintext_tokens: loopback\n',
  identity: 'identity:\n  dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9187/dev-issuer" }\n',
  targets: 'targets:\n  shop: { protocol: postgres, host: 127.0.0.1, database: shop, user: u, password: p }\n',
  principals: 'principals:\n  - name: dev-agent\n    match: { issuer: dev }\n    targets: [shop]\n',
};

function config(overrides: Partial<Record<keyof typeof parts, string>> = {}, extra = ''): string {
  return Object.entries({ ...parts, ...overrides })
    .map(([, text]) => text)
    .join('') + extra;
}

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): Problem[] {
  try {
    parseConfig(text, { source: 'warden.yaml', env, baseDir: '/etc/warden' });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected the configuration to be rejected');
}

/** "path: reason" for each problem, in file order. */
function reasons(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  return problemsOf(text, env).map((p) => `${p.path}: ${p.reason}`);
}

const parse = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(text, { source: 'warden.yaml', env, baseDir: '/etc/warden' });

describe('a valid configuration', () => {
  it('gets every default', () => {
    const c = parse(config());
    expect(c.source).toBe('warden.yaml');
    expect(c.dataDir).toBe('/etc/warden/.warden');
    expect(c.listen).toEqual({ postgres: { host: '127.0.0.1', port: 6432 } });
    expect(c.tls).toBeUndefined();
    expect(c.plaintextTokens).toBe('loopback');
    expect(c.log).toEqual({ level: 'info' });
    expect(c.identity).toEqual({
      issuers: [],
      devIssuer: { enabled: true, issuer: 'http://127.0.0.1:9187/dev-issuer', keyFile: '/etc/warden/.warden/keys/dev-issuer.pem', audience: 'api://warden', tenant: DEV_TENANT_ID },
    });
    expect(c.targets.get('shop')).toEqual({
      name: 'shop',
      protocol: 'postgres',
      host: '127.0.0.1',
      port: 5432,
      database: 'shop',
      user: 'u',
      password: 'p',
      tls: { mode: 'prefer' },
      connectTimeout: 10_000,
    });
    expect(c.principals).toEqual([{ name: 'dev-agent', match: { issuer: 'dev' }, targets: ['shop'], onTokenExpiry: 'end' }]);
    expect(c.sessions).toEqual({ shutdownGrace: 30_000, maxMessageBytes: 1024 ** 3, loginTimeout: 30_000, maxBufferedBytes: 4 * 1024 ** 3 });
  });

  it('reads an issuer with its defaults', () => {
    const c = parse(
      config({
        identity: `identity:
  issuers:
    - name: azure
      issuer: https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0
      jwks_uri: https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys
      audiences: [api://warden]
      tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
`,
        principals: 'principals: []\n',
      }),
    );
    expect(c.identity.issuers).toEqual([
      {
        name: 'azure',
        issuer: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
        jwksUri: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys',
        audiences: ['api://warden'],
        algorithms: ['RS256'],
        tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47',
        subjectClaims: ['azp', 'appid', 'oid', 'sub'],
        clockSkew: 60_000,
        jwksRefreshInterval: 30_000,
        jwksCacheMaxAge: 600_000,
      },
    ]);
    expect(c.identity.devIssuer).toBeUndefined();
    expect(c.principals).toEqual([]);
  });

  it('reads every key when written out', () => {
    const c = parse(`
data_dir: /var/lib/warden
listen:
  postgres: { host: 0.0.0.0, port: 5432 }
  tds: { host: "::", port: 1433 }
  admin: { host: localhost, port: 9187 }
tls: { self_signed: true }
plaintext_tokens: never
log: { level: debug }
identity:
  issuers:
    - name: corp
      issuer: https://idp.example.com/
      jwks_uri: http://127.0.0.1:8080/keys
      audiences: [a, b]
      algorithms: [RS256, ES256, EdDSA]
      subject_claims: [oid]
      clock_skew: 0
      jwks_refresh_interval: 5s
      jwks_cache_max_age: 1h
  dev_issuer:
    enabled: false
    issuer: http://127.0.0.1:9999/dev
    key_file: keys/dev.pem
    audience: api://other
    tenant: t1
targets:
  pg:
    protocol: postgres
    host: db.internal
    port: 6543
    database: app
    user: warden
    password: pw
    tls: { mode: require, server_name: db.example.com }
    connect_timeout: 2500ms
  ms:
    protocol: tds
    host: sql.internal
    database: app
    access_token: tok
principals:
  - name: everyone-in-group
    match: { issuer: corp, subject: s, roles: [r1], groups: [g1, g2] }
    targets: ["*"]
    on_token_expiry: continue
sessions: { shutdown_grace: 2m, max_message_bytes: 64MiB, login_timeout: 5s, max_buffered_bytes: 512MiB }
`);
    expect(c.dataDir).toBe('/var/lib/warden');
    expect(c.listen).toEqual({ postgres: { host: '0.0.0.0', port: 5432 }, tds: { host: '::', port: 1433 }, admin: { host: 'localhost', port: 9187 } });
    expect(c.tls).toEqual({ selfSigned: true });
    expect(c.plaintextTokens).toBe('never');
    expect(c.log.level).toBe('debug');
    expect(c.identity.issuers[0]).toMatchObject({
      algorithms: ['RS256', 'ES256', 'EdDSA'],
      subjectClaims: ['oid'],
      clockSkew: 0,
      jwksRefreshInterval: 5000,
      jwksCacheMaxAge: 3_600_000,
    });
    expect(c.identity.devIssuer).toEqual({ enabled: false, issuer: 'http://127.0.0.1:9999/dev', keyFile: '/etc/warden/keys/dev.pem', audience: 'api://other', tenant: 't1' });
    expect(c.targets.get('pg')).toMatchObject({ port: 6543, tls: { mode: 'require', serverName: 'db.example.com' }, connectTimeout: 2500 });
    expect(c.targets.get('ms')).toEqual({
      name: 'ms',
      protocol: 'tds',
      host: 'sql.internal',
      port: 1433,
      database: 'app',
      accessToken: 'tok',
      tls: { mode: 'require' },
      connectTimeout: 10_000,
    });
    expect(c.principals[0]).toEqual({
      name: 'everyone-in-group',
      match: { issuer: 'corp', subject: 's', roles: ['r1'], groups: ['g1', 'g2'] },
      targets: ['*'],
      onTokenExpiry: 'continue',
    });
    expect(c.sessions).toEqual({ shutdownGrace: 120_000, maxMessageBytes: 64 * 1024 ** 2, loginTimeout: 5000, maxBufferedBytes: 512 * 1024 ** 2 });
  });

  it('derives the dev issuer URL from the admin listener', () => {
    const admin = 'listen:\n  postgres: { host: 127.0.0.1, port: 6432 }\n  admin: { host: 0.0.0.0, port: 9187 }\n';
    const identity = 'identity:\n  dev_issuer: { enabled: true }\n';
    expect(parse(config({ listen: admin, identity })).identity.devIssuer?.issuer).toBe('http://127.0.0.1:9187/dev-issuer');
    const v6 = 'listen:\n  admin: { host: "::1", port: 9000 }\n';
    expect(parse(config({ listen: v6, identity })).identity.devIssuer?.issuer).toBe('http://[::1]:9000/dev-issuer');
    const ephemeral = 'listen:\n  admin: { host: 127.0.0.1, port: 0 }\n';
    expect(parse(config({ listen: ephemeral, identity })).identity.devIssuer?.issuer).toBeUndefined();
  });

  it('refuses an enabled dev issuer that nothing serves: no admin listener and no issuer URL', () => {
    const identity = 'identity:\n  dev_issuer: { enabled: true }\n';
    expect(reasons(config({ identity }))).toEqual([
      'identity.dev_issuer.enabled: the development issuer serves its keys on the admin port: add listen.admin, or set identity.dev_issuer.issuer to a URL where they are served',
    ]);
    // A listen section that cannot be read says nothing about the admin port: only its own error.
    expect(reasons(config({ identity, listen: 'listen: 5\n' }))).toEqual([expect.stringMatching(/^listen: /)]);
  });

  it('validates the example policy with the variables it documents', async () => {
    const env = { SHOP_PG_PASSWORD: 'pg-secret', SHOP_MSSQL_PASSWORD: 'ms-secret' };
    const path = fixturePath('policies', 'example.yaml');
    const c = await loadConfig(path, { env });
    expect(c.source).toBe(path);
    expect(c.dataDir).toBe(join(dirname(path), '.warden'));
    expect([...c.targets.keys()]).toEqual(['shop', 'shop_mssql']);
    expect(c.targets.get('shop')).toMatchObject({ protocol: 'postgres', database: 'shop', password: 'pg-secret' });
    expect(c.targets.get('shop_mssql')).toMatchObject({ protocol: 'tds', port: 1433, password: 'ms-secret', tls: { mode: 'require' } });
    expect(c.identity.issuers.map((i) => i.name)).toEqual(['azure']);
    expect(c.identity.issuers[0]?.audiences).toContain('https://database.windows.net/');
    expect(c.identity.devIssuer?.enabled).toBe(true);
    expect(c.principals.map((p) => p.name)).toEqual(['reporting-agent', 'support-agent', 'security-team', 'local-developer']);
    expect(c.principals.find((p) => p.name === 'security-team')?.targets).toEqual(['*']);
    expect(c.tls).toEqual({ selfSigned: true });
  });

  it('accepts the smallest useful file shown in docs/configuration.md', () => {
    const doc = readFileSync(join(projectRoot(), 'docs', 'configuration.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## The smallest useful file'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(yaml).toBeDefined();
    const c = parse(yaml ?? '', { SHOP_PASSWORD: 'pw' });
    expect([...c.targets.keys()]).toEqual(['shop']);
    expect(c.principals.map((p) => p.name)).toEqual(['my-agent']);
  });

  it('rejects the example without its variables, naming each key and variable', async () => {
    const err = await loadConfig(fixturePath('policies', 'example.yaml'), { env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => `${p.path}: ${p.reason}`)).toEqual([
      'targets.shop.password: environment variable SHOP_PG_PASSWORD is not set',
      'targets.shop_mssql.password: environment variable SHOP_MSSQL_PASSWORD is not set',
    ]);
  });
});

describe('target names', () => {
  it('refuses two that differ only in letter case (SQL Server drivers send the database name as typed)', () => {
    const text = config({
      targets: 'targets:\n  shop: { protocol: postgres, host: 127.0.0.1, database: shop, user: u, password: p }\n  SHOP: { protocol: tds, host: 127.0.0.1, database: shop, user: u, password: p }\n',
    });
    expect(problemsOf(text)).toEqual([
      {
        source: 'warden.yaml',
        path: 'targets.SHOP',
        reason: 'names the same target as "shop" but for letter case; target names must differ in more than case',
        ...valueOf(text, 'SHOP: {'),
      },
    ]);
  });
});

describe('problems are reported together, with positions', () => {
  const broken = `listen:
  postgres: { host: 127.0.0.1, port: abc }
plaintext_tokens: loopback
identity:
  dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9187/dev-issuer" }
targets:
  shop:
    protocol: postgres
    host: 127.0.0.1
    port: 70000
    database: shop
    user: u
    pasword: p
principals:
  - name: dev-agent
    match: { issuer: dev }
    targets: [shopp]
sesions: {}
`;

  it('lists every problem, each at the offending value, in file order', () => {
    const problems = problemsOf(broken);
    expect(problems).toEqual([
      { source: 'warden.yaml', path: 'listen.postgres.port', reason: 'must be an integer between 0 and 65535, got "abc"', ...valueOf(broken, 'port: abc') },
      { source: 'warden.yaml', path: 'targets.shop.password', reason: 'is required', ...lineCol(broken, 'shop:') },
      { source: 'warden.yaml', path: 'targets.shop.port', reason: 'must be an integer between 1 and 65535, got 70000', ...valueOf(broken, 'port: 70000') },
      { source: 'warden.yaml', path: 'targets.shop.pasword', reason: 'unknown key (did you mean "password"?)', ...lineCol(broken, 'pasword') },
      {
        source: 'warden.yaml',
        path: 'principals[0].targets[0]',
        reason: 'unknown target "shopp" (did you mean "shop"?); known targets: shop (or "*" for all)',
        ...lineCol(broken, 'shopp'),
      },
      { source: 'warden.yaml', path: 'sesions', reason: 'unknown key (did you mean "sessions"?)', ...lineCol(broken, 'sesions') },
    ]);
  });

  it('renders them one per line as file:line:col: key.path: reason', () => {
    let message = '';
    try {
      parseConfig(broken, { source: 'conf/warden.yaml', env: {} });
    } catch (err) {
      message = (err as Error).message;
    }
    const lines = message.split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[0]).toBe('conf/warden.yaml:2:38: listen.postgres.port: must be an integer between 0 and 65535, got "abc"');
    expect(lines[5]).toBe('conf/warden.yaml:18:1: sesions: unknown key (did you mean "sessions"?)');
  });

  it('reports YAML syntax errors with their position', () => {
    const text = 'listen:\n  postgres: { host: 127.0.0.1, port: 6432\ntargets: {}\n';
    const problems = problemsOf(text);
    expect(problems[0]).toMatchObject({ source: 'warden.yaml', line: 3, col: 1 });
    expect(problems[0]?.reason).toMatch(/^YAML: /);
    const tabs = problemsOf('listen:\n\tpostgres: {}\n');
    expect(tabs[0]).toMatchObject({ line: 2, col: 1 });
  });

  it('says to quote an ${env:…} value in a flow map or list, once, not every token after it', () => {
    const map = config({ listen: 'listen:\n  postgres: { host: 127.0.0.1, port: ${env:PG_PORT} }\n' });
    expect(problemsOf(map, { PG_PORT: '6432' })).toEqual([
      {
        source: 'warden.yaml',
        path: '',
        reason: 'YAML: Unexpected flow-map-start at node end; inside { … } or [ … ] a ${env:…} value must be quoted: "${env:PG_PORT}"',
        ...lineCol(map, '${env:PG_PORT}', { shift: 1 }),
      },
    ]);
    const list = config({ principals: 'principals:\n  - name: a\n    match: { issuer: dev }\n    targets: [${env:TARGET}]\n' });
    expect(reasons(list, { TARGET: 'shop' })).toEqual([
      ': YAML: Missing , or : between flow sequence items; inside { … } or [ … ] a ${env:…} value must be quoted: "${env:TARGET}"',
    ]);
    // Quoted, it works.
    const quoted = map.replace('${env:PG_PORT}', '"${env:PG_PORT}"');
    expect(parseConfig(quoted, { source: 'warden.yaml', env: { PG_PORT: '6432' }, baseDir: '/etc/warden' }).listen.postgres?.port).toBe(6432);
  });

  it('says why a postgres:// store URL does not parse, without quoting it', () => {
    for (const url of ['postgres://w:s3cret@db:99999/a', 'postgres://w:s3c#ret@db/a', 'postgresql://w:s3c/ret@db/a']) {
      expect(reasons(config({}, `approvals:\n  store: { type: postgres, url: "${url}" }\n`))).toEqual([
        'approvals.store.url: is not a valid postgres:// URL: check the port (1-65535) and percent-encode "@", "/", ":", "#", "?" and "%" in the user name and password',
      ]);
    }
    expect(reasons(config({}, 'approvals:\n  store: { type: postgres, url: "mysql://w:s3cret@db/a" }\n'))).toEqual(['approvals.store.url: must be a postgres:// URL']);
  });

  it('reports duplicate keys at every level with the first line', () => {
    const text = config({}, 'log: { level: info }\nlog: { level: debug }\n').replace('user: u,', 'user: u, user: v,');
    expect(problemsOf(text)).toEqual([
      {
        source: 'warden.yaml',
        path: 'targets.shop.user',
        reason: `duplicate key (first written at line ${lineCol(text, 'user: u').line})`,
        ...lineCol(text, 'user: v'),
      },
      { source: 'warden.yaml', path: 'log', reason: `duplicate key (first written at line ${lineCol(text, 'log').line})`, ...lineCol(text, 'log', { nth: 1 }) },
    ]);
  });

  it('refuses an empty file, a list, and more than one document', () => {
    expect(reasons('')).toEqual([': the configuration is empty; see docs/configuration.md and fixtures/policies/example.yaml']);
    expect(reasons('# only a comment\n')).toHaveLength(1);
    expect(reasons('- a\n- b\n')).toEqual([': must be a map of keys and values, got a list']);
    expect(reasons(`${config()}---\nlog: {}\n`)[0]).toMatch(/^: YAML: Source contains multiple documents/);
  });

  it('suggests the right spelling for unknown keys at every level', () => {
    const text = config({}, 'sessions: { shutdown_grace_period: 5s }\nlogging: {}\n');
    expect(reasons(text)).toEqual([
      'sessions.shutdown_grace_period: unknown key (did you mean "shutdown_grace"?)',
      'logging: unknown key (did you mean "log"?)',
    ]);
    expect(reasons(config({}, 'audit: {}\n'))).toEqual(['audit: unknown key']);
    expect(reasons(config({}, 'transcripts:\n  recording_threads: true\n'))).toEqual(['transcripts.recording_threads: unknown key (did you mean "recording_thread"?)']);
  });
});

describe('listen', () => {
  it.each(['localhost', '::1', '0.0.0.0', '"::"'])('accepts host %s', (host) => {
    const text = config({ listen: `listen:\n  postgres: { host: ${host}, port: 6432 }\n` });
    expect(parse(text).listen.postgres?.host).toBe(host.replace(/"/g, ''));
  });

  it.each([
    ['example.com', 'must be a literal IP address (such as 127.0.0.1, 0.0.0.0 or ::1) or "localhost", got "example.com"'],
    ['"[::1]"', 'must be an IP address or "localhost" (write IPv6 addresses without brackets), got "[::1]"'],
    ['127.0.0.1:6432', 'must be a literal IP address (such as 127.0.0.1, 0.0.0.0 or ::1) or "localhost", got "127.0.0.1:6432"'],
  ])('refuses host %s', (host, reason) => {
    const text = config({ listen: `listen:\n  postgres: { host: ${host}, port: 6432 }\n` });
    expect(problemsOf(text)).toEqual([
      { source: 'warden.yaml', path: 'listen.postgres.host', reason, ...lineCol(text, host) },
    ]);
  });

  it('defaults the host to 127.0.0.1 and requires the port', () => {
    expect(parse(config({ listen: 'listen:\n  postgres: { port: 1 }\n' })).listen.postgres).toEqual({ host: '127.0.0.1', port: 1 });
    expect(reasons(config({ listen: 'listen:\n  postgres: { host: 127.0.0.1 }\n' }))).toEqual(['listen.postgres.port: is required']);
    expect(reasons(config({ listen: 'listen:\n  postgres: { port: 65536 }\n' }))).toEqual([
      'listen.postgres.port: must be an integer between 0 and 65535, got 65536',
    ]);
    expect(reasons(config({ listen: 'listen:\n  mysql: { port: 3306 }\n' }))).toEqual(['listen.mysql: unknown key']);
  });

  it('refuses two listeners on one address', () => {
    const text = config({ listen: 'listen:\n  postgres: { host: 0.0.0.0, port: 7000 }\n  tds: { host: 127.0.0.1, port: 7001 }\n  admin: { host: localhost, port: 7001 }\n' });
    expect(problemsOf(text)).toEqual([
      {
        source: 'warden.yaml',
        path: 'listen.admin.port',
        reason: 'is already used by listen.tds (127.0.0.1:7001)',
        ...lineCol(text, '7001', { nth: 1 }),
      },
    ]);
    const ephemeral = config({ listen: 'listen:\n  postgres: { port: 0 }\n  tds: { port: 0 }\n' });
    expect(parse(ephemeral).listen).toEqual({ postgres: { host: '127.0.0.1', port: 0 }, tds: { host: '127.0.0.1', port: 0 } });
  });

  it('refuses token listeners that could never accept a login (no TLS, plaintext never)', () => {
    const text = config({ tls: '' });
    expect(problemsOf(text)).toEqual([
      expect.objectContaining({ path: 'listen.postgres', ...valueOf(text, 'postgres: {'), reason: expect.stringContaining('only accepted over TLS') }),
    ]);
    expect(parse(config({ tls: 'tls: { self_signed: true }\n' })).plaintextTokens).toBe('never');
    expect(parse(config({ tls: '', listen: 'listen:\n  admin: { port: 9187 }\n' })).listen.admin?.port).toBe(9187);
  });
});

describe('tls, plaintext_tokens, log, data_dir', () => {
  it('self_signed excludes files, and files are required without it', () => {
    expect(reasons(config({ tls: 'tls: { self_signed: true, cert_file: a.pem }\n' }))).toEqual([
      'tls.cert_file: cannot be combined with self_signed: true (use one or the other)',
    ]);
    expect(reasons(config({ tls: 'tls: { self_signed: false }\n' }))).toEqual([
      'tls.cert_file: is required (or set self_signed: true)',
      'tls.key_file: is required (or set self_signed: true)',
    ]);
    expect(reasons(config({ tls: 'tls: { self_signed: yes }\n' }))).toEqual(['tls.self_signed: must be true or false, got "yes"']);
    // Missing keys point at the section's key (column 1), so they come first.
    expect(reasons(config({ tls: 'tls: { cert: a.pem }\n' }))).toEqual([
      'tls.cert_file: is required (or set self_signed: true)',
      'tls.key_file: is required (or set self_signed: true)',
      'tls.cert: unknown key (did you mean "cert_file"?)',
    ]);
  });

  it('plaintext_tokens and log.level are closed sets', () => {
    expect(reasons(config({ tls: 'plaintext_tokens: always\n' }))).toEqual(['plaintext_tokens: must be one of never, loopback, got "always"']);
    expect(reasons(config({}, 'log: { level: verbose }\n'))).toEqual([
      'log.level: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
    ]);
    expect(reasons(config({}, 'log: { level: warning }\n'))).toEqual([
      'log.level: must be one of fatal, error, warn, info, debug, trace, silent, got "warning" (did you mean "warn"?)',
    ]);
  });

  it('data_dir is resolved against the config file directory', () => {
    expect(parse(config({}, 'data_dir: state\n')).dataDir).toBe('/etc/warden/state');
    expect(parse(config({}, 'data_dir: /srv/w\n')).dataDir).toBe('/srv/w');
    expect(parse(config({}, 'data_dir: ${env:STATE}/w\n'), { STATE: '/run' }).dataDir).toBe('/run/w');
    expect(reasons(config({}, 'data_dir: 5\n'))).toEqual(['data_dir: must be a string, got 5; put it in quotes']);
  });
});

describe('identity', () => {
  const issuer = (body: string): string =>
    config({ identity: `identity:\n  dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9187/dev-issuer" }\n  issuers:\n    - name: corp\n${body}` });
  const base = '      issuer: https://idp.example.com/\n      audiences: [api://warden]\n';

  it('needs exactly one of jwks_uri and jwks_file', () => {
    expect(reasons(issuer(base))).toEqual(['identity.issuers[0]: needs jwks_uri (the key set URL) or jwks_file (a local JWKS file)']);
    const both = issuer(`${base}      jwks_uri: https://idp.example.com/keys\n      jwks_file: ${fixturePath('policies', 'example.yaml')}\n`);
    expect(reasons(both)).toEqual(['identity.issuers[0].jwks_file: cannot be combined with jwks_uri (use one or the other)']);
  });

  it('fetches keys over https only, except from loopback', () => {
    expect(reasons(issuer(`${base}      jwks_uri: http://idp.example.com/keys\n`))).toEqual([
      'identity.issuers[0].jwks_uri: must use https (plain http is only allowed for loopback addresses such as 127.0.0.1), got "http://idp.example.com/keys"',
    ]);
    expect(parse(issuer(`${base}      jwks_uri: http://[::1]:8080/keys\n`)).identity.issuers[0]?.jwksUri).toBe('http://[::1]:8080/keys');
    expect(reasons(issuer(`${base}      jwks_uri: idp.example.com/keys\n`))).toEqual([
      'identity.issuers[0].jwks_uri: must be an absolute URL (https://…), got "idp.example.com/keys"',
    ]);
  });

  it('requires a non-empty list of audiences', () => {
    const keys = '      jwks_uri: https://idp.example.com/keys\n      issuer: https://idp.example.com/\n';
    expect(reasons(issuer(keys))).toEqual(['identity.issuers[0].audiences: is required']);
    expect(reasons(issuer(`${keys}      audiences: []\n`))).toEqual(['identity.issuers[0].audiences: must not be an empty list']);
    expect(reasons(issuer(`${keys}      audience: api://warden\n`))).toEqual([
      'identity.issuers[0].audiences: is required',
      'identity.issuers[0].audience: unknown key (did you mean "audiences"?)',
    ]);
  });

  it('refuses none and HMAC algorithms, and unknown ones', () => {
    const text = issuer(`${base}      jwks_uri: https://idp.example.com/keys\n      algorithms: [RS256, none, HS256, RS999]\n`);
    expect(reasons(text)).toEqual([
      'identity.issuers[0].algorithms[1]: must not be "none": unsigned tokens can be forged by anyone, got "none"',
      'identity.issuers[0].algorithms[2]: must not be an HMAC algorithm: warden verifies public-key signatures from the JWKS (RFC 8725 s3.1), got "HS256"',
      'identity.issuers[0].algorithms[3]: must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519, got "RS999"',
    ]);
    expect(reasons(issuer(`${base}      jwks_uri: https://idp.example.com/keys\n      algorithms: []\n`))).toEqual([
      'identity.issuers[0].algorithms: must not be an empty list',
    ]);
  });

  it('checks Azure AD issuer URLs against the tenant', () => {
    const tid = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    const azure = (iss: string, tenant: string) =>
      issuer(`      issuer: ${iss}\n      jwks_uri: https://login.microsoftonline.com/common/discovery/v2.0/keys\n      audiences: [a]\n      tenant: ${tenant}\n`);
    expect(parse(azure(`https://sts.windows.net/${tid}/`, tid)).identity.issuers[0]?.tenant).toBe(tid);
    expect(reasons(azure(`https://login.microsoftonline.com/${tid}/v2.0`, '00000000-0000-0000-0000-000000000001'))).toEqual([
      `identity.issuers[0].tenant: does not match the tenant in issuer ("${tid}")`,
    ]);
    expect(reasons(azure('https://login.microsoftonline.com/common/v2.0', tid))).toEqual([
      'identity.issuers[0].issuer: names the "common" endpoint, but Azure AD tokens carry their tenant id in iss; use https://login.microsoftonline.com/<tenant-id>/v2.0',
    ]);
  });

  it('keeps issuer names unique, reserves "dev", and refuses the same iss twice', () => {
    const one = (name: string, iss: string) => `    - name: ${name}\n      issuer: ${iss}\n      jwks_uri: https://k.example.com/\n      audiences: [a]\n`;
    const text = config({
      identity: `identity:\n  dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9187/dev-issuer" }\n  issuers:\n${one('corp', 'https://a.example.com/')}${one('corp', 'https://b.example.com/')}${one('dev', 'https://c.example.com/')}${one('other', 'https://a.example.com/')}`,
    });
    expect(problemsOf(text)).toEqual([
      expect.objectContaining({
        path: 'identity.issuers[1].name',
        reason: `duplicate issuer name "corp" (first used at line ${lineCol(text, 'corp').line})`,
        ...lineCol(text, 'corp', { nth: 1 }),
      }),
      expect.objectContaining({ path: 'identity.issuers[2].name', reason: '"dev" is reserved for the development issuer (identity.dev_issuer)' }),
      expect.objectContaining({ path: 'identity.issuers[3].issuer', reason: 'is the same issuer as identity.issuers[0].issuer; list each issuer once' }),
    ]);
  });

  it('bounds durations', () => {
    const text = issuer(`${base}      jwks_uri: https://k.example.com/\n      clock_skew: 1h\n      jwks_refresh_interval: 10ms\n      jwks_cache_max_age: 2d\n`);
    expect(reasons(text)).toEqual([
      'identity.issuers[0].clock_skew: must be at most 10m, got "1h"',
      'identity.issuers[0].jwks_refresh_interval: must be between 1s and 1h, got "10ms"',
      'identity.issuers[0].jwks_cache_max_age: must be between 1s and 1d, got "2d"',
    ]);
  });

  it('requires some issuer', () => {
    const text = config({ identity: '', principals: '' });
    expect(reasons(text)).toEqual([
      'identity: no token issuer is configured: add identity.issuers, or set identity.dev_issuer.enabled: true for local use',
    ]);
    expect(reasons(config({ identity: 'identity:\n  dev_issuer: { enabled: false }\n', principals: '' }))).toEqual([
      'identity: no token issuer is configured: add identity.issuers, or set identity.dev_issuer.enabled: true for local use',
    ]);
  });
});

describe('targets', () => {
  const target = (body: string) => config({ targets: `targets:\n  db:\n${body}`, principals: '' });
  const pg = '    protocol: postgres\n    host: db.internal\n    database: app\n    user: u\n    password: p\n';

  it('requires at least one target, with valid names', () => {
    expect(reasons(config({ targets: '', principals: '' }))).toEqual(['targets: is required (at least one database warden connects to)']);
    expect(reasons(config({ targets: 'targets: {}\n', principals: '' }))).toEqual(['targets: must name at least one target']);
    const text = config({ targets: `targets:\n  "shop db":\n${pg}  2shop:\n${pg}`, principals: '' });
    const rule = 'must start with a letter and hold only letters, digits, "_" and "-" (at most 63)';
    expect(problemsOf(text)).toEqual([
      { source: 'warden.yaml', path: 'targets."shop db"', reason: `${rule}, got "shop db"`, ...lineCol(text, '"shop db"') },
      { source: 'warden.yaml', path: 'targets.2shop', reason: `${rule}, got "2shop"`, ...lineCol(text, '2shop') },
    ]);
  });

  it('requires protocol, host, database and credentials', () => {
    expect(reasons(target('    port: 5432\n'))).toEqual([
      'targets.db.protocol: is required',
      'targets.db.host: is required',
      'targets.db.database: is required',
    ]);
    expect(reasons(target(pg.replace('postgres', 'mysql')))).toEqual([
      'targets.db.protocol: must be one of postgres, tds, got "mysql"',
    ]);
    expect(reasons(target(pg.replace('    password: p\n', '')))).toEqual(['targets.db.password: is required']);
    expect(reasons(target(pg.replace('db.internal', 'https://db.internal')))).toEqual([
      'targets.db.host: must be a host name or an IP address (without port or scheme), got "https://db.internal"',
    ]);
  });

  it('defaults the port by protocol', () => {
    expect(parse(target(pg)).targets.get('db')?.port).toBe(5432);
    expect(parse(target('    protocol: tds\n    host: h\n    database: d\n    user: u\n    password: p\n')).targets.get('db')?.port).toBe(1433);
  });

  it('tds targets log in with user and password or with an access token, not both', () => {
    const tds = '    protocol: tds\n    host: h\n    database: d\n';
    expect(reasons(target(tds))).toEqual([
      'targets.db.user: is required (a tds target logs in with user and password, or with access_token)',
      'targets.db.password: is required (a tds target logs in with user and password, or with access_token)',
    ]);
    expect(reasons(target(`${tds}    user: u\n    access_token: t\n`))).toEqual([
      'targets.db.access_token: cannot be combined with user and password (a tds target logs in with one or the other)',
    ]);
    expect(reasons(target(`${pg}    access_token: t\n`))).toEqual([
      'targets.db.access_token: is only for tds targets; postgres targets log in with user and password',
    ]);
  });

  it('checks tls modes and the CA file they need', () => {
    expect(reasons(target(`${pg}    tls: { mode: verify_full }\n`))).toEqual([
      'targets.db.tls.mode: must be one of disable, prefer, require, verify-ca, verify-full, got "verify_full" (did you mean "verify-full"?)',
    ]);
    expect(reasons(target(`${pg}    tls: { mode: verify-ca }\n`))).toEqual([
      "targets.db.tls.ca_file: is required for mode verify-ca (the PEM certificates of the CA that signed the server's certificate)",
    ]);
    expect(reasons(target(`${pg}    tls: { mode: require, ca_file: ca.pem }\n`))).toEqual([
      "targets.db.tls.ca_file: is only used with mode verify-ca or verify-full (mode is require, which does not check the server's certificate)",
    ]);
    expect(reasons(target(`${pg}    tls: { mode: disable, server_name: db }\n`))).toEqual(['targets.db.tls.server_name: is not used with mode disable']);
    expect(parse(target(`${pg}    tls: { mode: disable }\n`)).targets.get('db')?.tls).toEqual({ mode: 'disable' });
  });

  it('bounds connect_timeout', () => {
    expect(reasons(target(`${pg}    connect_timeout: 2h\n`))).toEqual(['targets.db.connect_timeout: must be between 1ms and 1h, got "2h"']);
  });
});

describe('principals', () => {
  const rules = (body: string) => config({ principals: `principals:\n${body}` });

  it('match must name at least one field, and no field may be empty', () => {
    const text = rules('  - name: a\n    match: {}\n    targets: [shop]\n');
    expect(problemsOf(text)).toEqual([
      expect.objectContaining({ path: 'principals[0].match', reason: 'must name at least one of issuer, subject, roles, groups', ...lineCol(text, '{}') }),
    ]);
    expect(reasons(rules('  - name: a\n    match: { roles: [], groups: [g] }\n    targets: [shop]\n'))).toEqual([
      'principals[0].match.roles: must not be an empty list',
    ]);
    expect(reasons(rules('  - name: a\n    targets: [shop]\n'))).toEqual(['principals[0].match: is required']);
  });

  it('refers only to existing issuers and targets', () => {
    const text = config({
      identity: 'identity:\n  issuers:\n    - { name: azure, issuer: "https://i.example.com/", jwks_uri: "https://i.example.com/k", audiences: [a] }\n',
      principals: 'principals:\n  - name: a\n    match: { issuer: azur }\n    targets: [shop, "*", crm]\n  - name: b\n    match: { issuer: dev }\n    targets: [shop]\n',
    });
    expect(reasons(text)).toEqual([
      'principals[0].match.issuer: unknown issuer "azur" (did you mean "azure"?); known issuers: azure',
      'principals[0].targets[2]: unknown target "crm"; known targets: shop (or "*" for all)',
      'principals[1].match.issuer: refers to the development issuer, which is not enabled (set identity.dev_issuer.enabled: true)',
    ]);
  });

  it('does not report references twice when the referred section is itself broken', () => {
    const text = config({ targets: 'targets: [shop]\n' });
    expect(reasons(text)).toEqual(['targets: must be a map of keys and values, got a list']);
  });

  it('names are unique; targets non-empty; on_token_expiry is end or continue', () => {
    const text = rules(
      '  - { name: a, match: { issuer: dev }, targets: [shop] }\n  - { name: a, match: { issuer: dev }, targets: [], on_token_expiry: renew }\n',
    );
    expect(reasons(text)).toEqual([
      `principals[1].name: duplicate principal name "a" (first used at line ${lineCol(text, 'name: a').line})`,
      'principals[1].targets: must not be an empty list',
      'principals[1].on_token_expiry: must be one of end, continue, got "renew"',
    ]);
    expect(reasons(config({ principals: 'principals:\n  name: a\n' }))).toEqual([
      'principals: must be a list, got a map',
    ]);
  });
});

describe('sessions', () => {
  it('bounds every limit', () => {
    const text = config({}, 'sessions:\n  shutdown_grace: 2h\n  max_message_bytes: 2GiB\n  login_timeout: 0\n  max_buffered_bytes: 1KiB\n');
    expect(reasons(text)).toEqual([
      'sessions.shutdown_grace: must be at most 1h, got "2h"',
      'sessions.max_message_bytes: must be between 64KiB and 1GiB, got "2GiB"',
      'sessions.login_timeout: must be between 1s and 10m, got 0',
      'sessions.max_buffered_bytes: must be between 64KiB and 1TiB, got "1KiB"',
    ]);
    expect(reasons(config({}, 'sessions: { max_message_bytes: 16MB }\n'))).toEqual([
      'sessions.max_message_bytes: must be a size such as "64KiB", "16MiB", "1GiB" or a number of bytes; "MB" is ambiguous, warden uses binary units (did you mean 16MiB?), got "16MB"',
    ]);
    expect(parse(config({}, 'sessions: { shutdown_grace: 5, max_message_bytes: 65536 }\n')).sessions).toEqual({
      shutdownGrace: 5000,
      maxMessageBytes: 65536,
      loginTimeout: 30_000,
      maxBufferedBytes: 4 * 1024 ** 3,
    });
  });
});

describe('secrets from the environment', () => {
  const withPassword = (password: string) => config({ targets: `targets:\n  shop: { protocol: postgres, host: h, database: d, user: u, password: ${password} }\n` });

  it('resolves whole and embedded references', () => {
    const c = parse(withPassword('"${env:PW}"'), { PW: 'hunter2' });
    expect(c.targets.get('shop')).toMatchObject({ password: 'hunter2' });
    const host = config({ targets: 'targets:\n  shop: { protocol: postgres, host: "db-${env:REGION}.internal", database: d, user: u, password: p }\n' });
    expect(parse(host, { REGION: 'eu1' }).targets.get('shop')?.host).toBe('db-eu1.internal');
    expect(parse(withPassword('"a$${b}"')).targets.get('shop')).toMatchObject({ password: 'a${b}' });
  });

  it('names the key and the variable when it is missing', () => {
    const text = withPassword('"${env:SHOP_PASSWORD}"');
    expect(problemsOf(text)).toEqual([
      {
        source: 'warden.yaml',
        path: 'targets.shop.password',
        reason: 'environment variable SHOP_PASSWORD is not set',
        ...lineCol(text, '"${env:SHOP_PASSWORD}"'),
      },
    ]);
  });

  it('never prints a resolved value or a secret', () => {
    const env = { PORT: 'not-a-port-hunter2', HOST: 'bad host hunter2', PW: '' };
    const text = config({
      listen: 'listen:\n  postgres: { host: 127.0.0.1, port: "${env:PORT}" }\n',
      targets: 'targets:\n  shop: { protocol: postgres, host: "${env:HOST}", database: d, user: u, password: "${env:PW}" }\n',
    });
    const problems = problemsOf(text, env);
    expect(problems.map((p) => `${p.path}: ${p.reason}`)).toEqual([
      'listen.postgres.port: must be an integer between 0 and 65535, got the value from "${env:PORT}"',
      'targets.shop.host: must be a host name or an IP address (without port or scheme), got the value from "${env:HOST}"',
      'targets.shop.password: must not be empty (the value from "${env:PW}" is empty)',
    ]);
    expect(JSON.stringify(problems)).not.toContain('hunter2');
    const literal = reasons(withPassword('12345'));
    expect(literal).toEqual(['targets.shop.password: must be a string; put it in quotes']);
    const malformed = reasons(withPassword('"pa${ss"'));
    expect(malformed).toEqual(['targets.shop.password: contains "${" that is not an ${env:NAME} reference (write "$${" for a literal "${")']);
  });

  it('reads integers and booleans from variables', () => {
    const text = config({ listen: 'listen:\n  postgres: { host: 127.0.0.1, port: "${env:PORT}" }\n', tls: 'tls: { self_signed: "${env:SS}" }\n' });
    const c = parse(text, { PORT: '7432', SS: 'true' });
    expect(c.listen.postgres?.port).toBe(7432);
    expect(c.tls).toEqual({ selfSigned: true });
  });
});

describe('loadConfig', () => {
  it('names the file when it cannot be read', async () => {
    const missing = resolve('/nonexistent-warden-dir/warden.yaml');
    const err = (await loadConfig(missing).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(`${missing}: cannot read the configuration file: no such file`);
    const dir = (await loadConfig(fixturePath('policies')).catch((e: unknown) => e)) as ConfigError;
    expect(dir.message).toBe(`${fixturePath('policies')}: is not a file`);
  });
});

describe('transcripts: the recording thread', () => {
  it('is on by default with a lag limit of 100 ms; recording_thread_max_lag sets it', () => {
    expect(parse(config()).transcripts).toMatchObject({ recordingThread: true, recordingThreadMaxLagMs: 100 });
    expect(parse(config({}, 'transcripts:\n  recording_thread_max_lag: 2s\n')).transcripts).toMatchObject({ recordingThreadMaxLagMs: 2000 });
  });

  it('bounds recording_thread_max_lag, naming the line', () => {
    const text = config({}, 'transcripts:\n  recording_thread_max_lag: 10ms\n');
    expect(problemsOf(text)).toEqual([
      expect.objectContaining({ path: 'transcripts.recording_thread_max_lag', reason: 'must be between 50ms and 1m, got "10ms"', ...lineCol(text, '10ms') }),
    ]);
    expect(reasons(config({}, 'transcripts:\n  recording_thread_max_lag: soon\n'))).toEqual([
      expect.stringMatching(/^transcripts\.recording_thread_max_lag: /),
    ]);
  });

  it('hands bytes to the thread in batches of 20 ms; recording_thread_batch sets it, at most a quarter of the lag limit, naming the line', () => {
    expect(parse(config()).transcripts).toMatchObject({ recordingThreadBatchMs: 20 });
    expect(parse(config({}, 'transcripts:\n  recording_thread_max_lag: 1s\n  recording_thread_batch: 250ms\n')).transcripts).toMatchObject({
      recordingThreadBatchMs: 250,
      recordingThreadMaxLagMs: 1000,
    });
    const text = config({}, 'transcripts:\n  recording_thread_batch: 50ms\n');
    expect(problemsOf(text)).toEqual([
      expect.objectContaining({
        path: 'transcripts.recording_thread_batch',
        reason: 'must be at most a quarter of recording_thread_max_lag (100 ms): raise that too',
        ...lineCol(text, '50ms'),
      }),
    ]);
    expect(reasons(config({}, 'transcripts:\n  recording_thread_batch: 1ms\n'))).toEqual(['transcripts.recording_thread_batch: must be between 5ms and 30s, got "1ms"']);
  });

  it('for the transcript readers, an unset ${env:…} stands in for a string, a number, a duration or a choice; for warden it is an error', () => {
    const text = config(
      { targets: 'targets:\n  shop: { protocol: postgres, host: "${env:SHOP_HOST}", port: "${env:SHOP_PORT}", database: shop, user: u, password: "${env:SHOP_PW}", connect_timeout: "${env:SHOP_TIMEOUT}", tls: { mode: "${env:SHOP_TLS}" } }\n' },
      'transcripts:\n  retention: "${env:KEEP_FOR}"\n',
    );
    const readers = parseConfig(text, { source: 'warden.yaml', env: {}, baseDir: '/etc/warden', forReaders: true });
    expect(readers.targets.get('shop')).toMatchObject({ host: '(SHOP_HOST not set)', port: 1, password: '(SHOP_PW not set)', tls: { mode: 'disable' } });
    expect(readers.transcripts?.retentionMs).toBe(3600_000);
    expect(reasons(text)).toEqual(
      ['SHOP_HOST', 'SHOP_PORT', 'SHOP_PW', 'SHOP_TIMEOUT', 'SHOP_TLS', 'KEEP_FOR'].map((n) => expect.stringContaining(`environment variable ${n} is not set`)),
    );
  });

  it('keeps transcripts for ever by default; retention sets how long, at least an hour, naming the line', () => {
    expect(parse(config()).transcripts?.retentionMs).toBeUndefined();
    expect(parse(config({}, 'transcripts:\n  retention: 400d\n')).transcripts).toMatchObject({ retentionMs: 400 * 24 * 3600 * 1000 });
    const text = config({}, 'transcripts:\n  retention: 30m\n');
    expect(problemsOf(text)).toEqual([expect.objectContaining({ path: 'transcripts.retention', ...lineCol(text, '30m') })]);
    expect(reasons(text)[0]).toMatch(/^transcripts\.retention: must be between 1h and /);
  });

  it('takes a thread that acknowledges nothing for 30 s to be stuck; recording_thread_stall_timeout sets it, bounded, naming the line', () => {
    expect(parse(config()).transcripts).toMatchObject({ recordingThreadStallMs: 30_000 });
    expect(parse(config({}, 'transcripts:\n  recording_thread_stall_timeout: 2m\n')).transcripts).toMatchObject({ recordingThreadStallMs: 120_000 });
    const text = config({}, 'transcripts:\n  recording_thread_stall_timeout: 500ms\n');
    expect(problemsOf(text)).toEqual([
      expect.objectContaining({ path: 'transcripts.recording_thread_stall_timeout', reason: 'must be between 1s and 10m, got "500ms"', ...lineCol(text, '500ms') }),
    ]);
  });

  it('takes a disk whose fsync has not returned for 30 s to be stuck; sync_stall_timeout sets it, bounded, naming the line', () => {
    expect(parse(config()).transcripts).toMatchObject({ syncStallMs: 30_000 });
    expect(parse(config({}, 'transcripts:\n  sync_stall_timeout: 90s\n')).transcripts).toMatchObject({ syncStallMs: 90_000 });
    const text = config({}, 'transcripts:\n  sync_stall_timeout: 11m\n');
    expect(problemsOf(text)).toEqual([
      expect.objectContaining({ path: 'transcripts.sync_stall_timeout', reason: 'must be between 1s and 10m, got "11m"', ...lineCol(text, '11m') }),
    ]);
  });
});
