// The TDS statement flow's side of holding a request, with a scripted approval service: what the
// client is sent (the INFO start of the response, then the error or the forward) for each way a
// hold ends, and that the flow fails closed when approvals are missing or their store is down.
import { describe, expect, it } from 'vitest';
import { decodeTokens, encodeSqlBatch, MessageAssembler, PACKET_STATUS, PACKET_TYPE, TDS_VERSION, transactionHeaders, type Token } from '../../protocols/tds/index.js';
import type { ApprovalService, Grant, Hold, HoldOutcome, HoldRequest } from '../../src/approvals/types.js';
import { createStatementPolicy } from '../../src/policy/statement-rules.js';
import type { Principal } from '../../src/identity/types.js';
import { silentLogger } from '../../src/log.js';
import { TdsStatementFlow } from '../../src/tds/flow.js';
import type { RequestOutcome, TdsRequest } from '../../src/tds/relay.js';

const principal: Principal = {
  name: 'agent', issuerName: 'dev', issuer: 'x', subject: 's', subjectClaim: 'azp', roles: [], groups: [], groupsOverage: false, audience: 'a',
};
const policy = createStatementPolicy([{ name: 'grants', match: { flags: ['privilege_change'] }, action: 'hold', message: 'grants need a DBA' }]);
const tdsVersion = TDS_VERSION.V7_4;

/** An approval service whose findGrant/hold behave as told; records what it was asked. */
function service(opts: { grant?: Grant; hold?: 'fails' | HoldOutcome }): ApprovalService & { asked: HoldRequest[]; withdrawn: string[] } {
  const asked: HoldRequest[] = [];
  const withdrawn: string[] = [];
  return {
    asked,
    withdrawn,
    findGrant: async (r) => {
      asked.push(r);
      return opts.grant;
    },
    hold: async (): Promise<Hold> => {
      if (opts.hold === 'fails' || opts.hold === undefined) throw new Error('store down');
      const outcome = opts.hold;
      let settle!: (o: HoldOutcome) => void;
      const p = new Promise<HoldOutcome>((r) => (settle = r));
      // The outcome arrives a moment later, unless the request is withdrawn first.
      setTimeout(() => settle(outcome), 20);
      return {
        id: 'apr_test1',
        url: 'http://warden.test/approvals/ui?request=apr_test1',
        expiresAt: new Date('2030-01-01T00:00:00Z'),
        outcome: p,
        withdraw: (reason) => {
          withdrawn.push(reason);
          settle({ decision: 'withdrawn', reason });
        },
      };
    },
    close: async () => undefined,
  };
}

function flow(approvals: ApprovalService | undefined): TdsStatementFlow {
  return new TdsStatementFlow({
    sessionId: 'sess', principal, target: 'shop', clientAddress: '127.0.0.1', instanceId: 'test', logger: silentLogger,
    policy, approvals, recorder: undefined, capture: { mode: 'none', firstRows: 0 }, durableBeforeForward: false,
    recordingHealthy: () => true, tdsVersion, answerOptions: () => ({ tdsVersion, packetSize: 4096, spid: 51, done: 'DONE' }),
    maxValueLength: 1 << 20, onQuery: () => undefined, onVerdict: () => undefined, onAttention: () => undefined,
  });
}

function batch(sql: string): TdsRequest {
  const payload = encodeSqlBatch({ sql, headers: transactionHeaders() }, { tdsVersion });
  return { type: PACKET_TYPE.SQL_BATCH, payload, packets: [], resetConnection: false };
}

/** What the flow did with the request: the messages sent to the client (tokens, EOM) and whether it forwarded. */
async function decide(f: TdsStatementFlow, sql: string, during?: () => void): Promise<{ sent: { tokens: Token[]; eom: boolean }[]; forwarded: boolean }> {
  const sent: { tokens: Token[]; eom: boolean }[] = [];
  let forwarded = false;
  const read = (m: Buffer): void => {
    const a = new MessageAssembler({ packetSize: 4096 });
    a.push(m);
    const packets = [];
    for (let p = a.nextPacket(); p; p = a.nextPacket()) packets.push(p);
    const eom = (packets[packets.length - 1]!.header.status & PACKET_STATUS.EOM) !== 0;
    sent.push({ tokens: decodeTokens(Buffer.concat(packets.map((p) => p.payload)), { tdsVersion }), eom });
  };
  const out: RequestOutcome = {
    forward: () => (forwarded = true),
    respond: read,
    begin: (m) => {
      read(m);
      during?.();
    },
  };
  await f.onRequest(batch(sql), out);
  return { sent, forwarded };
}

const GRANT = 'GRANT SELECT ON customers TO somebody';

describe('holding a TDS request', () => {
  it('refuses it when no approval service is configured (fail closed)', async () => {
    const r = await decide(flow(undefined), GRANT);
    expect(r.forwarded).toBe(false);
    expect(r.sent).toEqual([{ eom: true, tokens: [expect.objectContaining({ kind: 'ERROR', number: 50000, class: 16, message: 'statement requires approval (rule "grants") but approvals are not configured' }), expect.objectContaining({ kind: 'DONE' })] }]);
  });

  it('refuses it when the approval store cannot be reached (fail closed), without an INFO', async () => {
    const r = await decide(flow(service({ hold: 'fails' })), GRANT);
    expect(r.forwarded).toBe(false);
    expect(r.sent).toHaveLength(1);
    expect(r.sent[0]!.tokens[0]).toMatchObject({ kind: 'ERROR', number: 50000, message: 'statement requires approval (rule "grants") but the approval store cannot be reached (try again later)' });
  });

  it('sends the INFO without EOM first, then forwards once approved', async () => {
    const s = service({ hold: { decision: 'approved', approver: 'dev:dba', scope: 'once' } });
    const r = await decide(flow(s), GRANT);
    expect(r.forwarded).toBe(true);
    expect(r.sent).toEqual([{ eom: false, tokens: [expect.objectContaining({ kind: 'INFO', number: 50000, class: 10 })] }]);
    expect((r.sent[0]!.tokens[0] as { message: string }).message).toBe(
      'warden: statement held for approval (request apr_test1, rule "grants"); grants need a DBA (a privilege change (GRANT)). Waiting until 2030-01-01T00:00:00.000Z for an approver. (approve or deny at http://warden.test/approvals/ui?request=apr_test1)',
    );
    // The grant unit is the approvals' fingerprint of the T-SQL classification.
    expect(s.asked[0]).toMatchObject({ protocol: 'tds', sql: GRANT, rule: 'grants', fingerprint: expect.any(String) });
  });

  it('ends the message with error 229 when denied, and with a store failure as warden\'s own refusal', async () => {
    const denied = await decide(flow(service({ hold: { decision: 'denied', approver: 'dev:dba', reason: 'no' } })), GRANT);
    expect(denied.forwarded).toBe(false);
    expect(denied.sent[1]).toEqual({ eom: true, tokens: [expect.objectContaining({ kind: 'ERROR', number: 229, class: 14, message: 'statement denied by dev:dba (request apr_test1); reason: no' }), expect.objectContaining({ kind: 'DONE' })] });
    const failed = await decide(flow(service({ hold: { decision: 'error', message: 'gone' } })), GRANT);
    expect(failed.sent[1]!.tokens[0]).toMatchObject({ number: 50000, message: 'approval request apr_test1 failed: the approval store cannot be reached (try again later)' });
  });

  it('withdraws the request on ATTENTION and ends the message with a plain DONE', async () => {
    const s = service({ hold: { decision: 'approved', approver: 'dev:dba', scope: 'once' } });
    const f = flow(s);
    const r = await decide(f, GRANT, () => f.onAttention());
    expect(s.withdrawn).toEqual(['cancelled']);
    expect(r.forwarded).toBe(false);
    expect(r.sent[1]).toEqual({ eom: true, tokens: [expect.objectContaining({ kind: 'DONE', status: 0 })] });
  });

  it('withdraws the request when the session ends', async () => {
    const s = service({ hold: { decision: 'approved', approver: 'dev:dba', scope: 'once' } });
    const f = flow(s);
    await decide(f, GRANT, () => expect(f.close('disconnected')).toBe(true));
    expect(s.withdrawn).toEqual(['disconnected']);
    expect(f.close('disconnected')).toBe(false);
  });

  it('runs it at once under a grant', async () => {
    const grant: Grant = { id: 'grt_1', principal: 'p', target: 'shop', fingerprint: 'f', expiresAt: new Date(), approver: 'dev:dba' };
    const r = await decide(flow(service({ grant })), GRANT);
    expect(r).toEqual({ sent: [], forwarded: true });
  });
});
