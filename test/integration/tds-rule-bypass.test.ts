// Attempts to get a T-SQL statement past warden's statement rules by making the classifier read it
// otherwise than SQL Server runs it, through warden to the stand-in: WHERE clauses that belong to a
// subquery or CTE, or read no column; comments ended by a bare CR; EXEC (…) AS LOGIN; system
// procedures that rename, change owners or run a string (sp_rename, sp_sqlexec); RPC
// procedure names and ids the classifier did not resolve, statement parameters bound by name
// elsewhere; and a statement's own OUTPUT parameter taken for a prepared handle. Each must be
// refused by the rule it would have escaped. The tables named do not exist, so a statement that
// got through would fail at the stand-in (208) instead of changing the shop's data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DATA_TYPE,
  decodeTokens,
  encodeRpcRequest,
  PACKET_TYPE,
  PROC_ID,
  RPC_PARAM_STATUS,
  TDS_VERSION,
  transactionHeaders,
  type RpcCall,
  type RpcParameter,
  type Token,
} from '../../protocols/tds/index.js';
import { closeTedious, connectTedious, query, rawConnect, rawLogin, startTdsHarness, tediousConfig, type RawTds, type TdsHarness } from '../helpers/tds.js';
import { APPROVER_ROLE } from '../helpers/warden.js';

const RULES = `
rules:
  - name: probe-table
    match: { relations: [warden_probe_target] }
    action: deny
  - name: unparseable
    match: { unparseable: true }
    action: deny
  - name: server-escapes
    match: { flags: [session_escape, alter_system, copy_program, copy_to_file, copy_from_file] }
    action: deny
  - name: unbounded-writes
    match: { flags: [no_where, data_modifying_cte] }
    action: deny
  - name: privilege-changes
    match: { flags: [privilege_change] }
    action: deny
  - name: ddl
    match: { kinds: [create, alter, drop, truncate] }
    action: deny
  - name: orders-reviewed
    match: { relations: [orders] }
    action: hold
approvals:
  timeout: 3s
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [${APPROVER_ROLE}] }
`;

const V74 = { tdsVersion: TDS_VERSION.V7_4 };
const COLLATION = { lcid: 0x409, flags: 0xd, version: 0, sortId: 52 };

let h: TdsHarness;
let token = '';

beforeAll(async () => {
  h = await startTdsHarness({ yaml: RULES, plaintextTokens: 'loopback' });
  token = await h.tw.token();
});

afterAll(async () => {
  await h?.stop();
});

type SqlError = Error & { number?: number };

describe('SQL batches the classifier once read as harmless', () => {
  it.each([
    // The WHERE belongs to the subquery: every row is updated.
    ['UPDATE warden_probe_missing SET a = (SELECT 1 FROM customers WHERE customers.id = 1)', 'unbounded-writes'],
    // The WHERE belongs to a CTE the DELETE does not use.
    ['WITH c AS (SELECT id FROM customers WHERE id = 1) DELETE FROM warden_probe_missing', 'unbounded-writes'],
    // WHERE clauses that read no column.
    ['DELETE FROM warden_probe_missing WHERE EXISTS (SELECT 1)', 'unbounded-writes'],
    ['DELETE FROM warden_probe_missing WHERE CAST(1 AS int) = 1', 'unbounded-writes'],
    ["DELETE FROM warden_probe_missing WHERE CURRENT_USER = CURRENT_USER", 'unbounded-writes'],
    // A -- comment that a bare CR may end for SQL Server.
    ['SELECT 1 AS a -- note\rDELETE FROM warden_probe_missing', 'unparseable'],
    // Dynamic SQL run as another login.
    ["EXEC ('SELECT 1 AS a') AS LOGIN = 'sa'", 'server-escapes'],
    // System procedures that change the schema or owners, or run a string.
    ["EXEC sp_rename 'warden_probe_missing', 'warden_probe_other'", 'ddl'],
    ["EXEC sp_changeobjectowner 'warden_probe_missing', 'nobody'", 'privilege-changes'],
    ["EXEC sp_sqlexec 'DELETE FROM warden_probe_missing'", 'unbounded-writes'],
    // Names SQL Server resolves to the table a rule names: trailing spaces, full-width letters.
    ['DELETE FROM [warden_probe_target ] WHERE id = 1', 'probe-table'],
    ['DELETE FROM dbo.[ｗａｒｄｅｎ_ｐｒｏｂｅ_ｔａｒｇｅｔ] WHERE id = 1', 'probe-table'],
    // A table hint without WITH is no function call.
    ['SELECT * FROM warden_probe_target (NOLOCK)', 'probe-table'],
    // The first table of a parenthesised join.
    ['DELETE c FROM (warden_probe_target c JOIN customers o ON o.id = c.id) WHERE o.id = 1', 'probe-table'],
    // The legacy text statements name the table before the column.
    ["DECLARE @p varbinary(16); UPDATETEXT warden_probe_target.notes @p 0 NULL 'x'", 'probe-table'],
  ])('%s', async (sql, rule) => {
    const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: token } }));
    try {
      const err = (await query(c, sql).then(() => undefined, (e: SqlError) => e))!;
      expect(err?.number).toBe(229);
      expect(err.message).toContain(`statement refused by warden policy rule "${rule}"`);
      // The session goes on.
      expect((await query(c, 'SELECT 7 AS n')).sets[0]!.rows).toEqual([[7]]);
    } finally {
      await closeTedious(c);
    }
  });
});

const nvarchar = (name: string, value: string | null, status = 0): RpcParameter => ({ name, status, typeInfo: { type: DATA_TYPE.NVARCHAR, length: 8000, collation: COLLATION }, value });
const int = (name: string, value: number | null, status = 0): RpcParameter => ({ name, status, typeInfo: { type: DATA_TYPE.INTN, length: 4 }, value });

async function session(): Promise<RawTds> {
  const raw = await rawConnect(h.port);
  expect((await rawLogin(raw, token)).some((t) => t.kind === 'LOGINACK')).toBe(true);
  return raw;
}

async function rpc(raw: RawTds, call: RpcCall): Promise<Token[]> {
  raw.send(PACKET_TYPE.RPC, encodeRpcRequest({ headers: transactionHeaders(), calls: [call] }, V74));
  return decodeTokens((await raw.next(20_000)).payload, V74);
}

const refusal = (tokens: Token[]): string | undefined => {
  const e = tokens.find((t) => t.kind === 'ERROR') as { number: number; message: string } | undefined;
  return e?.number === 229 ? e.message : undefined;
};

describe('RPC calls the classifier once did not resolve', () => {
  const DELETE_ALL = 'DELETE FROM warden_probe_missing';

  it.each([
    ['sp_executesql named with a trailing space', { procName: '[sp_executesql ]', options: 0, parameters: [nvarchar('', DELETE_ALL)] }, 'unbounded-writes'],
    ['sp_executesql named in double quotes', { procName: 'sys."sp_executesql"', options: 0, parameters: [nvarchar('', DELETE_ALL)] }, 'unbounded-writes'],
    ['a procedure name warden cannot read', { procName: 'sys . sp_executesql', options: 0, parameters: [nvarchar('', DELETE_ALL)] }, 'unparseable'],
    ['a procedure id warden does not know', { procId: 16, options: 0, parameters: [nvarchar('', DELETE_ALL)] }, 'unparseable'],
    // Named arguments bind by name: the statement is not the first parameter.
    ['sp_executesql with @stmt second', { procId: PROC_ID.SP_EXECUTESQL, options: 0, parameters: [nvarchar('@params', ''), nvarchar('@stmt', DELETE_ALL)] }, 'unparseable'],
  ] as [string, RpcCall, string][])('%s', async (_what, call, rule) => {
    const raw = await session();
    try {
      expect(refusal(await rpc(raw, call))).toContain(`statement refused by warden policy rule "${rule}"`);
    } finally {
      raw.socket.destroy();
    }
  });

  it('does not take a statement\'s OUTPUT parameter for a prepared handle', async () => {
    const raw = await session();
    const admin = async (method: string, path: string): Promise<string> => {
      const approver = await h.tw.token({ subject: 'dba-bob', roles: [APPROVER_ROLE] });
      const res = await fetch(`${h.tw.warden.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${approver}`, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
      return res.text();
    };
    try {
      // 1. sp_prepare of a statement on orders: it runs nothing, so it is not held (its executions are).
      raw.send(PACKET_TYPE.RPC, encodeRpcRequest({ headers: transactionHeaders(), calls: [{ procId: PROC_ID.SP_PREPARE, options: 0, parameters: [
        int('', null, RPC_PARAM_STATUS.BY_REF_VALUE), nvarchar('', '@id int'), nvarchar('', 'SELECT id, status FROM orders WHERE id = @id'),
      ] }] }, V74));
      const prepared = decodeTokens((await raw.next(20_000)).payload, V74);
      expect(await admin('GET', '/approvals?status=pending')).not.toMatch(/apr_/);
      const handle = (prepared.find((t) => t.kind === 'RETURNVALUE') as { value: number }).value;
      expect(handle).toBeGreaterThan(0);
      // 2. An allowed sp_prepexec whose own OUTPUT parameter comes back holding that handle's number.
      const other = await rpc(raw, { procId: PROC_ID.SP_PREPEXEC, options: 0, parameters: [
        int('', null, RPC_PARAM_STATUS.BY_REF_VALUE), nvarchar('', '@o int OUTPUT'), nvarchar('', 'SET @o = @o'), int('@o', handle, RPC_PARAM_STATUS.BY_REF_VALUE),
      ] });
      expect(other.filter((t) => t.kind === 'RETURNVALUE').map((t) => (t as { value: number }).value)).toContain(handle);
      // 3. sp_execute of the first handle still runs the statement on orders: held again, and
      //    nobody approves it this time.
      const executed = await rpc(raw, { procId: PROC_ID.SP_EXECUTE, options: 0, parameters: [int('', handle), int('@id', 1)] });
      expect(executed.some((t) => t.kind === 'ROW' || t.kind === 'NBCROW')).toBe(false);
      expect(refusal(executed)).toMatch(/statement was not approved in time \(request apr_/);
    } finally {
      raw.socket.destroy();
    }
  });
});
