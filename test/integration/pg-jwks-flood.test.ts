// An Azure-shaped issuer behind a real JWKS server, through warden with node-postgres: a flood of
// logins naming made-up kids costs the identity provider a bounded number of key-set fetches, each
// login still gets FATAL 28000 'token signing key is unknown' and is counted.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuer, jwksOf, makeKey, sign, startJwksServer, TENANT, v2Claims, V2_ISS, PG_AUDIENCE, type JwksServer, type TestKey } from '../unit/identity-support.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let key: TestKey;
let jwks: JwksServer;
let w: TestWarden;

beforeAll(async () => {
  key = await makeKey('azure-key-1');
  jwks = await startJwksServer(jwksOf(key));
  w = await startTestWarden({
    principals: [{ name: 'azure-agent', match: { issuer: 'azure', roles: ['Reports.Read'] }, targets: ['shop'], onTokenExpiry: 'end' }],
    mutate: (config) => {
      config.identity.issuers.push(issuer({ name: 'azure', issuer: V2_ISS, jwksUri: jwks.url, tenant: TENANT, audiences: [PG_AUDIENCE], jwksRefreshInterval: 30_000 }));
    },
  });
});
afterAll(async () => {
  await w?.stop();
  await jwks?.close();
});

async function login(password: string): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port: w.port, user: 'agent', password, database: 'shop', ssl: { ca: w.ca } });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end();
    return 'ok';
  } catch (e) {
    return `${(e as pg.DatabaseError).code} ${(e as Error).message}`;
  }
}

describe('JWKS under attack, through warden', () => {
  it('accepts a real token, then 300 logins with made-up kids cause at most one more fetch', async () => {
    expect(await login(await sign(key, v2Claims({ roles: ['Reports.Read'] })))).toBe('ok');
    const before = jwks.requests();
    const results = new Set<string>();
    for (let batch = 0; batch < 10; batch++) {
      const tokens = await Promise.all(Array.from({ length: 30 }, (_, i) => sign(key, v2Claims({ roles: ['Reports.Read'] }), { kid: `forged-${batch}-${i}` })));
      for (const r of await Promise.all(tokens.map(login))) results.add(r);
    }
    expect([...results]).toEqual(['28000 token rejected: token signing key is unknown']);
    expect(jwks.requests() - before).toBeLessThanOrEqual(1);
    expect(w.warden.metrics.authFailuresTotal.get({ protocol: 'postgres', reason: 'token signing key is unknown' })).toBe(300);
  });
});
