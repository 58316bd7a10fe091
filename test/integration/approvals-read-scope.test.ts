// What an approver may read through the approvals API: only requests and grants their approver
// rules cover (target, statement rule, principal), in the list, one by one, in grants and on the
// event stream; an approver for every target still sees everything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApproverRule } from '../../src/approvals/config.js';
import type { HoldRequest } from '../../src/approvals/types.js';
import { api, APPROVER_ROLE, eventually, holdRequest, sse, startApprovalsServer, TEST_APPROVERS, type ApprovalsServer } from '../unit/approvals-support.js';

const CRM_ROLE = 'Crm.Approver';
const CRM_APPROVERS: ApproverRule = { name: 'crm-only', match: { issuer: 'dev', roles: [CRM_ROLE] }, targets: ['crm'], rules: ['*'], principals: ['*'], mayGrant: true };

let server: ApprovalsServer;
let everything: string;
let crmOnly: string;
let shopRequest: HoldRequest;

beforeAll(async () => {
  server = await startApprovalsServer({ approvals: { approvers: [...TEST_APPROVERS, CRM_APPROVERS] } });
  everything = await server.token('alice', { roles: [APPROVER_ROLE] });
  crmOnly = await server.token('carl', { roles: [CRM_ROLE] });
  shopRequest = holdRequest({ principal: await server.agent('agent-app'), params: ['123-45-6789'] });
});

afterAll(async () => {
  await server?.stop();
});

describe('an approver whose rules cover another target only', () => {
  it('does not see a shop request or its parameters: not listed, 403 by id, not in the event stream; its grant neither', async () => {
    const stream = await sse(server.url, crmOnly);
    const allStream = await sse(server.url, everything);
    try {
      const hold = await server.approvals.service.hold(shopRequest);
      const listed = await api(server.url, 'GET', '/approvals?status=pending', crmOnly);
      expect(listed.status).toBe(200);
      expect(listed.body.requests.map((r: { id: string }) => r.id)).not.toContain(hold.id);
      const one = await api(server.url, 'GET', `/approvals/${hold.id}`, crmOnly);
      expect(one.status).toBe(403);
      expect(one.body.error).toBe('your approver rules do not cover this request (target "shop", rule "order-deletes", principal "support-agent")');
      expect(JSON.stringify(one.body)).not.toContain('123-45-6789');
      // An approver of every target sees it, and grants it.
      expect((await api(server.url, 'GET', '/approvals?status=pending', everything)).body.requests.map((r: { id: string }) => r.id)).toContain(hold.id);
      expect((await api(server.url, 'POST', `/approvals/${hold.id}/approve`, everything, { grant_minutes: 5 })).status).toBe(200);
      await eventually(() => allStream.events.some((e) => e.event === 'grant.created'), 5000, 'grant.created for the approver of everything');
      expect((await api(server.url, 'GET', '/grants', everything)).body.grants).toHaveLength(1);
      expect((await api(server.url, 'GET', '/grants', crmOnly)).body.grants).toEqual([]);
      expect(stream.events.filter((e) => e.event !== 'token.expired')).toEqual([]);
    } finally {
      stream.close();
      allStream.close();
    }
  });
});
