// Webhook announcements against a real HTTP server on 127.0.0.1 that fails on demand: retries
// with backoff on 5xx, 429 and dropped connections, no retry on other 4xx, the JSON and Slack
// payloads, the signature, and that holding never waits for delivery.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApproverPolicy } from '../../src/approvals/approvers.js';
import type { WebhookConfig } from '../../src/approvals/config.js';
import { ApprovalServiceImpl } from '../../src/approvals/service.js';
import { EmbeddedApprovalStore } from '../../src/approvals/store-embedded.js';
import { slackEscape, WebhookNotifier } from '../../src/approvals/webhook.js';
import { initSqlParser } from '../../src/sql/index.js';
import { holdRequest, request, tempDir } from './approvals-support.js';

interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
}

type Answer = number | 'drop' | 'hang';

interface Hook {
  url: string;
  received: Received[];
  /** Answers for the next requests, in order; then 200. */
  plan(...answers: Answer[]): void;
  close(): Promise<void>;
}

async function hook(): Promise<Hook> {
  const received: Received[] = [];
  let answers: Answer[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const answer = answers.shift() ?? 200;
      if (answer === 'drop') {
        req.socket.destroy();
        return;
      }
      if (answer === 'hang') return;
      res.writeHead(answer, answer === 429 ? { 'retry-after': '0' } : {}).end(answer < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/warden`,
    received,
    plan: (...a) => {
      answers = a;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function config(url: string, extra: Partial<WebhookConfig> = {}): WebhookConfig {
  return { url, format: 'json', retries: 4, backoff: 50, maxBackoff: 400, timeout: 1000, headers: {}, ...extra };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(): Promise<Hook> {
  const h = await hook();
  cleanups.push(() => h.close());
  return h;
}

function notifier(cfg: WebhookConfig): WebhookNotifier {
  const n = new WebhookNotifier(cfg);
  cleanups.push(() => n.close());
  return n;
}

beforeAll(async () => {
  await initSqlParser();
});

describe('delivery', () => {
  it('retries 5xx answers and dropped connections with doubling backoff, then stops at the first success', async () => {
    const h = await started();
    h.plan(503, 'drop', 500);
    const n = notifier(config(h.url));
    n.requestCreated(request(), 'http://warden.test:9187');
    await n.idle();
    expect(h.received).toHaveLength(4);
    const gaps = h.received.slice(1).map((r, i) => r.at - h.received[i]!.at);
    // 50, 100, 200 ms (timers may run late, never early).
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[1]).toBeGreaterThanOrEqual(95);
    expect(gaps[2]).toBeGreaterThanOrEqual(195);
    expect(h.received.map((r) => r.headers['x-warden-attempt'])).toEqual(['1', '2', '3', '4']);
    // Every attempt is the same delivery with the same body.
    expect(new Set(h.received.map((r) => r.headers['x-warden-delivery'])).size).toBe(1);
    expect(new Set(h.received.map((r) => r.body)).size).toBe(1);
  });

  it('gives up after the configured retries', async () => {
    const h = await started();
    h.plan(500, 500, 500, 500, 500, 500);
    const n = notifier(config(h.url, { retries: 2 }));
    n.requestCreated(request(), 'http://warden.test:9187');
    await n.idle();
    expect(h.received).toHaveLength(3);
  });

  it('retries 429 and timeouts, but not other 4xx answers', async () => {
    const h = await started();
    h.plan('hang', 429, 404);
    const n = notifier(config(h.url, { timeout: 200 }));
    n.requestCreated(request(), 'http://warden.test:9187');
    await n.idle();
    // hang (timed out) → 429 → 404 (a configuration error: no more attempts).
    expect(h.received).toHaveLength(3);
  });

  it('never makes a hold wait, even when the webhook hangs', async () => {
    const h = await started();
    h.plan('hang', 'hang', 'hang');
    const n = notifier(config(h.url, { timeout: 2000, retries: 0 }));
    const store = await EmbeddedApprovalStore.open({ dir: tempDir(), retentionMs: 86_400_000 });
    cleanups.push(() => store.close());
    const s = new ApprovalServiceImpl({
      store, approvers: new ApproverPolicy([]), instanceId: 'i', timeoutMs: 60_000, grantMaxMs: 3_600_000, storeGraceMs: 1000,
      baseUrl: () => 'http://warden.test:9187', notifier: n,
    });
    await s.start();
    cleanups.push(() => s.close());
    const t = Date.now();
    const hold = await s.hold(holdRequest());
    expect(Date.now() - t).toBeLessThan(500);
    await expect.poll(() => h.received.length).toBe(1);
    expect(JSON.parse(h.received[0]!.body)).toMatchObject({ request: { id: hold.id } });
  });
});

describe('payloads', () => {
  it('json: the request (without parameter values), the approve URL, headers and an HMAC signature', async () => {
    const h = await started();
    const n = notifier(config(h.url, { headers: { Authorization: 'Bearer hook-token' }, secret: 'hook-secret' }));
    const r = request({ params: ['42', null] });
    n.requestCreated(r, 'https://warden.example.com');
    await n.idle();
    const [got] = h.received;
    const body = JSON.parse(got!.body) as Record<string, unknown>;
    expect(body).toEqual({
      event: 'approval.requested',
      text: `warden: support-agent needs approval on shop (rule order-deletes): ${r.normalized}`,
      approve_url: `https://warden.example.com/approvals/ui?request=${r.id}`,
      request: {
        id: r.id,
        status: 'pending',
        created_at: r.createdAt.toISOString(),
        expires_at: r.expiresAt.toISOString(),
        principal: { name: 'support-agent', issuer: 'dev', subject: 'support-agent-app', object_id: 'oid-support-agent' },
        target: 'shop',
        protocol: 'postgres',
        session_id: 'sess-1',
        instance_id: 'instance-a',
        client_address: '127.0.0.1:50000',
        statement: r.sql,
        normalized: r.normalized,
        params_count: 2,
        fingerprint: 'fp-1',
        rule: 'order-deletes',
        reason: 'needs approval',
        url: `https://warden.example.com/approvals/ui?request=${r.id}`,
        api_url: `https://warden.example.com/approvals/${r.id}`,
      },
    });
    expect(got!.body).not.toContain('"42"');
    expect(got!.headers.authorization).toBe('Bearer hook-token');
    expect(got!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(got!.headers['x-warden-event']).toBe('approval.requested');
    const ts = String(got!.headers['x-warden-timestamp']);
    const expected = `sha256=${createHmac('sha256', 'hook-secret').update(`${ts}.${got!.body}`).digest('hex')}`;
    expect(got!.headers['x-warden-signature']).toBe(expected);
  });

  it('slack: text and blocks, with mrkdwn escaped and the SQL in a code block', async () => {
    const h = await started();
    const n = notifier(config(h.url, { format: 'slack' }));
    const r = request({ sql: "DELETE FROM orders WHERE note = '<@U123> & ```x```'", normalized: 'DELETE FROM orders WHERE note = $1' });
    n.requestCreated(r, 'https://warden.example.com');
    await n.idle();
    const body = JSON.parse(h.received[0]!.body) as { text: string; blocks: Array<Record<string, any>> };
    expect(Object.keys(body)).toEqual(['text', 'blocks']);
    expect(body.text).toBe('warden: support-agent needs approval on shop (rule order-deletes): DELETE FROM orders WHERE note = $1');
    expect(body.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'actions', 'context']);
    expect(body.blocks[0]!.text).toEqual({ type: 'plain_text', text: 'Approval needed: support-agent on shop' });
    expect(body.blocks[1]!.fields.map((f: { text: string }) => f.text.split('\n')[0])).toEqual(['*Principal*', '*Target*', '*Rule*', '*Expires*']);
    const sqlBlock = body.blocks[2]!.text.text as string;
    expect(sqlBlock).toContain('&lt;@U123&gt; &amp; ');
    expect(sqlBlock).not.toContain('<@U123>');
    // The statement's own ``` cannot close the code block early: exactly one opening and one closing fence.
    expect(sqlBlock.match(/```/g)).toHaveLength(2);
    expect(body.blocks[3]!.elements[0]).toMatchObject({ type: 'button', url: `https://warden.example.com/approvals/ui?request=${r.id}` });
    expect(body.blocks[4]!.elements[0].text).toContain(`warden approvals approve ${r.id}`);
  });

  it('slack: characters that hide or reorder the statement are shown as <U+XXXX>', async () => {
    const h = await started();
    const n = notifier(config(h.url, { format: 'slack' }));
    n.requestCreated(request({ sql: 'SELECT 1 /* \u202E */; DROP TABLE orders --\u200B' }), 'https://w');
    await n.idle();
    const body = JSON.parse(h.received[0]!.body) as { blocks: Array<Record<string, any>> };
    expect(body.blocks[2]!.text.text as string).toContain('SELECT 1 /* &lt;U+202E&gt; */; DROP TABLE orders --&lt;U+200B&gt;');
  });

  it('slack: long statements are cut to fit a section', async () => {
    const h = await started();
    const n = notifier(config(h.url, { format: 'slack' }));
    n.requestCreated(request({ sql: `SELECT ${'x, '.repeat(3000)}1` }), 'https://w');
    await n.idle();
    const body = JSON.parse(h.received[0]!.body) as { blocks: Array<Record<string, any>> };
    expect((body.blocks[2]!.text.text as string).length).toBeLessThanOrEqual(3000);
  });

  it('escapes exactly the three mrkdwn control characters', () => {
    expect(slackEscape('a<b>&c "d"')).toBe('a&lt;b&gt;&amp;c "d"');
  });
});
