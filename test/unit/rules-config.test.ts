// The `rules:` and `approvals:` sections through the real loader: defaults, every value, every
// problem with its key path and position, references to targets, principals, issuers and rules.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type Problem } from '../../src/config/load.js';
import { lineCol, valueOf } from './config-helpers.js';

const base =
  'listen:\n  postgres: { host: 127.0.0.1, port: 6432 }\n' +
  'plaintext_tokens: loopback\n' +
  'identity:\n  dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9187/dev-issuer" }\n' +
  'targets:\n  shop: { protocol: postgres, host: 127.0.0.1, database: shop, user: u, password: p }\n' +
  'principals:\n  - name: dev-agent\n    match: { issuer: dev }\n    targets: [shop]\n';

const parse = (extra: string, env: NodeJS.ProcessEnv = {}) => parseConfig(base + extra, { source: 'warden.yaml', env, baseDir: '/etc/warden' });

function problemsOf(extra: string, env: NodeJS.ProcessEnv = {}): Problem[] {
  try {
    parse(extra, env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected the configuration to be rejected');
}

const reasons = (extra: string, env: NodeJS.ProcessEnv = {}): string[] => problemsOf(extra, env).map((p) => `${p.path}: ${p.reason}`);

describe('defaults', () => {
  it('without rules: or approvals: there is no statement control', () => {
    const c = parse('');
    expect(c.rules).toBeUndefined();
    expect(c.approvals).toBeUndefined();
  });

  it('an approvals: section alone means no rules, and an embedded store under data_dir', () => {
    const c = parse('approvals: {}');
    expect(c.rules).toEqual([]);
    expect(c.approvals).toEqual({
      timeout: 300_000,
      grantMax: 3_600_000,
      approvers: [],
      store: { type: 'embedded', dir: '/etc/warden/.warden/approvals', retention: 30 * 86_400_000 },
      storeGrace: 3000,
    });
  });
});

describe('rules:', () => {
  it('reads every match key, scope and action', () => {
    const c = parse(`rules:
  - name: all-keys
    principals: [dev-agent]
    roles: [Db.Writer]
    groups: [g1]
    targets: [shop]
    match:
      kinds: [drop, truncate]
      flags: [no_where, privilege_change]
      dangerous_functions: [pg_sleep, "dblink*"]
      functions: [app.purge_tenant]
      relations: [public.customers, "payroll.*", '"Audit"']
      access: [update, delete]
      read_only: false
    action: hold
    message: ask the DBA
  - name: any-dangerous
    match: { dangerous_functions: true }
    action: deny
  - name: garbage
    match: { unparseable: true }
    action: deny
  - name: everything
    match: { all: true }
    action: allow
`);
    expect(c.rules).toEqual([
      {
        name: 'all-keys',
        principals: ['dev-agent'],
        roles: ['Db.Writer'],
        groups: ['g1'],
        targets: ['shop'],
        match: {
          kinds: ['drop', 'truncate'],
          flags: ['no_where', 'privilege_change'],
          dangerousFunctions: ['pg_sleep', 'dblink*'],
          functions: ['app.purge_tenant'],
          relations: ['public.customers', 'payroll.*', '"Audit"'],
          access: ['update', 'delete'],
          readOnly: false,
        },
        action: 'hold',
        message: 'ask the DBA',
      },
      { name: 'any-dangerous', match: { dangerousFunctions: true }, action: 'deny' },
      { name: 'garbage', match: { unparseable: true }, action: 'deny' },
      { name: 'everything', match: { all: true }, action: 'allow' },
    ]);
  });

  it('reports each problem at its place', () => {
    const extra = `rules:
  - name: one
    match: { kinds: [drops] }
    action: hold
  - name: one
    match: { flags: [nowhere] }
    action: block
  - name: three
    match: {}
    action: hold
  - name: four
    match: { unparseable: true }
    action: allow
  - name: five
    match: { unparseable: true, kinds: [drop] }
    action: hold
  - name: six
    targets: [shoq]
    principals: [nobody]
    match: { relations: ["a.b.c.d"], functions: ["x y"], unparseable: false }
    action: hold
`;
    const text = base + extra;
    const problems = problemsOf(extra);
    expect(problems.map((p) => `${p.path}: ${p.reason}`)).toEqual([
      'rules[0].match.kinds[0]: must be one of select, insert, update, delete, merge, copy, create, alter, drop, truncate, grant, revoke, role, set, set_role, set_session_authorization, reset, show, transaction, do, call, explain, prepare, execute, deallocate, listen, notify, unlisten, discard, vacuum, analyze, lock, declare_cursor, fetch, close_cursor, alter_system, comment, security_label, refresh_matview, other, got "drops" (did you mean "drop"?)',
      'rules[1].name: duplicate rule name "one" (first used at line 13)',
      'rules[1].match.flags[0]: must be one of no_where, data_modifying_cte, privilege_change, session_escape, alter_system, do_block, copy_program, copy_to_file, copy_from_file, got "nowhere" (did you mean "no_where"?)',
      'rules[1].action: must be one of allow, deny, hold, got "block"',
      'rules[2].match: must name at least one of unparseable, all, kinds, flags, dangerous_functions, functions, relations, access, read_only (write all: true to match every statement)',
      'rules[3].action: cannot be allow for unparseable statements: what the parser cannot read is never allowed (use hold or deny)',
      'rules[4].match: unparseable stands alone: write the other keys (kinds) in a separate rule',
      'rules[5].targets[0]: unknown target "shoq" (did you mean "shop"?); known targets: shop (or "*" for all)',
      'rules[5].principals[0]: unknown principal "nobody"; known principals: dev-agent (or "*" for all)',
      'rules[5].match: unparseable stands alone: write the other keys (functions, relations) in a separate rule',
    ]);
    expect(problems[0]).toMatchObject(lineCol(text, 'drops'));
    expect(problems[3]).toMatchObject(valueOf(text, 'action: block'));
  });

  it('checks patterns, booleans and lists', () => {
    expect(reasons(`rules:
  - name: p
    match: { relations: ["a.b.c.d", "ok"], functions: ["x y"], read_only: maybe, dangerous_functions: false, access: [write] }
    action: hold
  - name: q
    match: { all: false }
    action: hold
  - name: r
    roles: []
    match: { kinds: [] }
    action: hold
`)).toEqual([
      'rules[0].match.relations[0]: must be a relation name, optionally qualified, with "*" as a wildcard, got "a.b.c.d"',
      'rules[0].match.functions[0]: must be a function name, optionally qualified, with "*" as a wildcard, got "x y"',
      'rules[0].match.read_only: must be true or false, got "maybe"',
      'rules[0].match.dangerous_functions: must be true (leave the key out otherwise)',
      'rules[0].match.access[0]: must be one of read, insert, update, delete, truncate, ddl, lock, copy, got "write"',
      'rules[1].match.all: must be true (leave the key out otherwise)',
      'rules[2].roles: must not be an empty list',
      'rules[2].match.kinds: must not be an empty list',
    ]);
  });
});

describe('approvals:', () => {
  it('reads approvers, a postgres store with secrets from the environment, and a webhook', () => {
    const c = parse(`rules:
  - name: ddl
    match: { kinds: [drop] }
    action: hold
approvals:
  timeout: 90s
  grant_max: 8h
  store_grace: 10s
  base_url: https://warden.example.com:9187/
  instance_id: warden-a
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [Warden.Approver] }
      targets: [shop]
      rules: [ddl]
      principals: [dev-agent]
      may_grant: false
    - name: anyone-in-group
      match: { groups: [g-approvers] }
  store:
    type: postgres
    url: \${env:STORE_URL}
    schema: warden_approvals
    timeout: 2s
    poll_interval: 500ms
  webhook:
    url: https://hooks.example.com/warden
    format: slack
    retries: 3
    backoff: 200ms
    max_backoff: 5s
    timeout: 2s
    headers: { Authorization: "Bearer \${env:HOOK_TOKEN}" }
    secret: \${env:HOOK_SECRET}
`, { STORE_URL: 'postgres://w:pw@db.internal/warden', HOOK_TOKEN: 'tok', HOOK_SECRET: 's3cret' });
    expect(c.approvals).toEqual({
      timeout: 90_000,
      grantMax: 8 * 3_600_000,
      storeGrace: 10_000,
      baseUrl: 'https://warden.example.com:9187',
      instanceId: 'warden-a',
      approvers: [
        { name: 'dbas', match: { issuer: 'dev', roles: ['Warden.Approver'] }, targets: ['shop'], rules: ['ddl'], principals: ['dev-agent'], mayGrant: false },
        { name: 'anyone-in-group', match: { groups: ['g-approvers'] }, targets: ['*'], rules: ['*'], principals: ['*'], mayGrant: true },
      ],
      store: { type: 'postgres', url: 'postgres://w:pw@db.internal/warden', schema: 'warden_approvals', timeout: 2000, pollInterval: 500 },
      webhook: {
        url: 'https://hooks.example.com/warden',
        format: 'slack',
        retries: 3,
        backoff: 200,
        maxBackoff: 5000,
        timeout: 2000,
        headers: { Authorization: 'Bearer tok' },
        secret: 's3cret',
      },
    });
  });

  it('reads a postgres store written as parts', () => {
    const c = parse('approvals:\n  store: { type: postgres, host: db.internal, database: warden, user: w, password: "${env:PW}", tls: { mode: require } }\n', { PW: 'pw' });
    expect(c.approvals?.store).toEqual({
      type: 'postgres', host: 'db.internal', port: 5432, database: 'warden', user: 'w', password: 'pw', tls: { mode: 'require' },
      schema: 'warden', timeout: 5000, pollInterval: 1000,
    });
  });

  it('reports each problem, never quoting secrets', () => {
    const extra = `approvals:
  timeout: 0s
  approvers:
    - name: a
      match: {}
    - name: b
      match: { issuer: azure }
      rules: [nope]
      targets: [shoq]
    - name: a
      match: { subject: x }
  store:
    type: postgres
    url: mysql://secret@db
    host: db.internal
    dir: ./x
  webhook:
    url: ftp://hooks
    format: teams
    headers: { content-type: text/plain }
`;
    const problems = reasons(extra);
    expect(problems).toEqual([
      'approvals.timeout: must be between 1s and 1d, got "0s"',
      'approvals.approvers[0].match: must name at least one of issuer, subject, roles, groups',
      'approvals.approvers[1].match.issuer: unknown issuer "azure"; known issuers: dev',
      'approvals.approvers[1].rules[0]: unknown rule "nope"; none are configured (or "*" for all)',
      'approvals.approvers[1].targets[0]: unknown target "shoq" (did you mean "shop"?); known targets: shop (or "*" for all)',
      'approvals.approvers[2].name: duplicate approver name "a" (first used at line 15)',
      'approvals.store.url: must be a postgres:// URL',
      'approvals.store.host: cannot be combined with url (write the connection as a URL or as parts, not both)',
      'approvals.store.dir: is only used with type: embedded',
      'approvals.webhook.url: must be an http or https URL, got "ftp://hooks"',
      'approvals.webhook.format: must be one of json, slack, got "teams"',
      'approvals.webhook.headers.content-type: is set by warden itself, got "content-type"',
    ]);
    expect(problems.join('\n')).not.toContain('secret@db');
  });

  it('refuses a dev approver when the dev issuer is off, and postgres parts without a password', () => {
    const text = base.replace('  dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9187/dev-issuer" }\n', '  issuers:\n    - { name: azure, issuer: "https://sts.windows.net/t/", jwks_uri: "https://login.microsoftonline.com/t/discovery/keys", audiences: [api://warden] }\n')
      .replace('match: { issuer: dev }', 'match: { issuer: azure }');
    const problems = (() => {
      try {
        parseConfig(`${text}approvals:\n  approvers:\n    - { name: x, match: { issuer: dev } }\n  store: { type: postgres, host: db, database: d, user: u }\n`, { source: 'w.yaml', env: {} });
      } catch (err) {
        return (err as ConfigError).problems.map((p) => `${p.path}: ${p.reason}`);
      }
      return [];
    })();
    expect(problems).toEqual([
      'approvals.approvers[0].match.issuer: refers to the development issuer, which is not enabled (set identity.dev_issuer.enabled: true)',
      'approvals.store.password: is required (or write the connection as url: postgres://…)',
    ]);
  });
});
