// warden cannot rewrite SQL Server rows yet, so a principal that masking rules cover must not read
// a SQL Server target at all (fail closed); a principal no rule covers connects as usual.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeTedious, connectTedious, query, startTdsHarness, tediousConfig, type TdsHarness } from '../helpers/tds.js';

let h: TdsHarness;
beforeAll(async () => {
  h = await startTdsHarness({
    yaml: `
masking:
  rules:
    - { name: national-ids, columns: [customers.ssn], strategy: partial, applies_to: { roles: [Masked.Reader] } }
`,
  });
});
afterAll(async () => {
  await h?.stop();
});

describe('masking and SQL Server targets', () => {
  it('refuses a principal that masking rules cover', async () => {
    const token = await h.tw.token({ roles: ['Warden.Agent', 'Masked.Reader'] });
    const err = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: token } })).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/Login failed for user 'agent'\. Reason: masking rules apply to principal "agent", and warden cannot mask SQL Server results yet/);
  });

  it('lets a principal no rule covers read as usual', async () => {
    const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
    const r = await query(c, 'SELECT TOP 1 ssn FROM customers ORDER BY id');
    expect(r.sets[0]?.rows[0]?.[0]).toBe('941-74-7468');
    await closeTedious(c);
  });
});
