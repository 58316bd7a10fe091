// The approvers' side of tests of held statements: the approvals HTTP API with a bearer token.
// (Statements straight to the test server, to set up and check what ran: direct() in pg-env.ts.)

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
