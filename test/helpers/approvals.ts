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

/** The id of the first pending approval request, once one appears (fails after `timeoutMs`). */
export async function firstPendingId(api: (method: string, path: string) => Promise<ApiAnswer>, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const id = ((await api('GET', '/approvals?status=pending')).json?.requests as { id: string }[] | undefined)?.[0]?.id;
    if (id) return id;
    if (Date.now() > deadline) throw new Error('no request was held');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** warden_buffered_bytes from warden's /metrics at `adminUrl`. */
export async function bufferedBytes(adminUrl: string | undefined): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const m = /^warden_buffered_bytes (\d+)$/m.exec(text);
  if (!m) throw new Error('no warden_buffered_bytes in /metrics');
  return Number(m[1]);
}
