// The approvers' side of tests of held statements: the approvals HTTP API with a bearer token,
// and statements straight to the test server (no warden) to set up and check what ran.
import pg from 'pg';
import { directUrl } from './pg-env.js';

export interface ApiAnswer {
  status: number;
  json: any;
}

/** Calls warden's approvals API at `adminUrl` with `token`. */
export function approvalsApi(adminUrl: () => string | undefined, token: () => string): (method: string, path: string, body?: unknown) => Promise<ApiAnswer> {
  return async (method, path, body) => {
    const res = await fetch(`${adminUrl() ?? 'http://no-admin-listener'}${path}`, {
      method,
      headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: await res.json().catch(() => null) };
  };
}

/** Runs `sql` on the test server directly, as the scram role. */
export async function direct(sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: directUrl() });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}
