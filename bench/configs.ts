// Configuration sections the benchmarks load, as a user would write them.

/** The recommended statement rules from docs/approvals.md (the example policy's). */
export const RECOMMENDED_RULES = `
rules:
  - { name: unparseable, match: { unparseable: true }, action: hold }
  - { name: server-escapes, match: { flags: [session_escape, alter_system, copy_program, copy_to_file, copy_from_file] }, action: deny }
  - { name: privilege-changes, match: { flags: [privilege_change] }, action: hold }
  - { name: dangerous-functions, match: { dangerous_functions: true }, action: hold }
  - { name: do-blocks, match: { kinds: [do] }, action: hold }
  - { name: unbounded-writes, match: { flags: [no_where, data_modifying_cte] }, action: hold }
  - { name: ddl, match: { kinds: [create, alter, drop, truncate] }, action: hold }
  - { name: account-writes, match: { relations: [pgbench_accounts], access: [truncate] }, action: hold }
`;

/** Two masked columns of the large-result benchmark's table. */
export const TWO_MASKED_COLUMNS = `
masking:
  rules:
    - { name: national-ids, columns: [people.ssn], strategy: partial, options: { keep_last: 4 } }
    - { name: emails, columns: [people.email], strategy: email }
`;
