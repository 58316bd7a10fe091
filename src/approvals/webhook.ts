// Announces each new approval request with a JSON POST (or a Slack-compatible {text, blocks}
// payload). Delivery never blocks the hold: requests are queued (bounded), sent a few at a time,
// and retried with exponential backoff on network errors, timeouts, 429 and 5xx answers. Other
// 4xx answers are configuration errors: logged, not retried. Bind parameters are never sent.
import { createHmac, randomUUID } from 'node:crypto';
import { silentLogger, type Logger } from '../log.js';
import type { WebhookConfig } from './config.js';
import type { ApprovalRequest } from './model.js';
import { requestUrls, requestView } from './views.js';
import { visibleText } from './visible.js';

const MAX_QUEUED = 1000;
const MAX_IN_FLIGHT = 4;
/** Slack section text is limited to 3000 characters. */
const SLACK_SQL_CHARS = 2500;
const SLACK_HEADER_CHARS = 150;

export interface Delivery {
  id: string;
  body: string;
  requestId: string;
}

export function jsonPayload(r: ApprovalRequest, baseUrl: string): Record<string, unknown> {
  const { url } = requestUrls(r.id, baseUrl);
  return {
    event: 'approval.requested',
    text: summary(r),
    request: requestView(r, { params: false, baseUrl }),
    approve_url: url,
  };
}

function summary(r: ApprovalRequest): string {
  const sql = r.normalized.length > 200 ? `${r.normalized.slice(0, 200)}…` : r.normalized;
  return `warden: ${r.principal.name} needs approval on ${r.target} (rule ${r.rule}): ${sql}`;
}

/** Slack mrkdwn: &, < and > are control characters and must be escaped. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function slackPayload(r: ApprovalRequest, baseUrl: string): Record<string, unknown> {
  const { url } = requestUrls(r.id, baseUrl);
  // A ``` inside the statement would end the code block early.
  // Characters that hide or reorder text (bidi controls, zero-width) are shown as <U+XXXX>, as on the review page.
  const sql = slackEscape(clip(visibleText(r.sql), SLACK_SQL_CHARS)).replace(/```/g, '`\u200b``');
  const expires = Math.floor(r.expiresAt.getTime() / 1000);
  const field = (label: string, value: string): Record<string, string> => ({ type: 'mrkdwn', text: `*${label}*\n${slackEscape(value)}` });
  return {
    text: slackEscape(summary(r)),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(`Approval needed: ${r.principal.name} on ${r.target}`, SLACK_HEADER_CHARS) } },
      {
        type: 'section',
        fields: [
          field('Principal', `${r.principal.name} (${r.principal.issuerName}:${r.principal.subject})`),
          field('Target', r.target),
          field('Rule', r.rule),
          { type: 'mrkdwn', text: `*Expires*\n<!date^${expires}^{time} ({date_short_pretty})|${r.expiresAt.toISOString()}>` },
        ],
      },
      { type: 'section', text: { type: 'mrkdwn', text: `*Why:* ${slackEscape(clip(r.reason, 300))}\n\`\`\`${sql}\`\`\`` } },
      { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Review' }, url, style: 'primary' }] },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: slackEscape(`request ${r.id} · warden approvals approve ${r.id} --reason "…"`) }],
      },
    ],
  };
}

export interface WebhookNotifierOptions {
  logger?: Logger;
  /** For tests: how to wait between attempts. */
  sleep?: (ms: number) => Promise<void>;
}

export class WebhookNotifier {
  private readonly log: Logger;
  private readonly queue: Delivery[] = [];
  private inFlight = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly timers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  /** Aborts attempts in flight when closing. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly config: WebhookConfig,
    opts: WebhookNotifierOptions = {},
  ) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'approvals-webhook' });
    this.sleep = opts.sleep ?? ((ms) => this.wait(ms));
  }

  /** Queues the announcement of a new request; returns at once. */
  requestCreated(r: ApprovalRequest, baseUrl: string): void {
    if (this.closed) return;
    const payload = this.config.format === 'slack' ? slackPayload(r, baseUrl) : jsonPayload(r, baseUrl);
    if (this.queue.length >= MAX_QUEUED) {
      const dropped = this.queue.shift();
      this.log.warn({ request: dropped?.requestId }, 'webhook queue full; dropping the oldest announcement');
    }
    this.queue.push({ id: randomUUID(), body: JSON.stringify(payload), requestId: r.id });
    this.pump();
  }

  /** Resolves when nothing is queued or being sent. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops: queued announcements are dropped, attempts in flight and waits between retries end. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    if (this.queue.length > 0) this.log.warn({ dropped: this.queue.length }, 'closing with webhook announcements not sent');
    this.queue.length = 0;
    for (const t of this.timers) {
      clearTimeout(t.timer);
      t.wake();
    }
    await this.idle();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const d = this.queue.shift() as Delivery;
      this.inFlight++;
      void this.deliver(d).finally(() => {
        this.inFlight--;
        this.pump();
        if (this.queue.length === 0 && this.inFlight === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  private async deliver(d: Delivery): Promise<void> {
    const { retries, backoff, maxBackoff } = this.config;
    let delay = backoff;
    for (let attempt = 1; attempt <= retries + 1; attempt++) {
      const result = await this.attempt(d, attempt);
      if (result.ok) {
        this.log.info({ request: d.requestId, attempt }, 'webhook delivered');
        return;
      }
      if (!result.retry) {
        this.log.error({ request: d.requestId, attempt, why: result.why }, 'webhook refused the announcement; not retrying (check approvals.webhook)');
        return;
      }
      if (attempt > retries || this.closed) {
        this.log.error({ request: d.requestId, attempts: attempt, why: result.why }, 'webhook announcement failed; giving up');
        return;
      }
      const wait = Math.min(result.retryAfterMs ?? delay, maxBackoff);
      this.log.warn({ request: d.requestId, attempt, why: result.why, retryInMs: wait }, 'webhook attempt failed; retrying');
      await this.sleep(wait);
      delay = Math.min(delay * 2, maxBackoff);
    }
  }

  private async attempt(d: Delivery, attempt: number): Promise<{ ok: true } | { ok: false; retry: boolean; why: string; retryAfterMs?: number }> {
    const timestamp = Math.floor(Date.now() / 1000).toString();
    const headers: Record<string, string> = {
      ...this.config.headers,
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'warden-approvals',
      'x-warden-event': 'approval.requested',
      'x-warden-delivery': d.id,
      'x-warden-attempt': String(attempt),
      'x-warden-timestamp': timestamp,
    };
    if (this.config.secret !== undefined) {
      headers['x-warden-signature'] = `sha256=${createHmac('sha256', this.config.secret).update(`${timestamp}.${d.body}`).digest('hex')}`;
    }
    try {
      const res = await fetch(this.config.url, {
        method: 'POST',
        headers,
        body: d.body,
        redirect: 'error',
        signal: AbortSignal.any([AbortSignal.timeout(this.config.timeout), this.stopping.signal]),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { ok: true };
      const why = `HTTP ${res.status}`;
      if (res.status === 429 || res.status >= 500) {
        const after = Number.parseInt(res.headers.get('retry-after') ?? '', 10);
        return Number.isFinite(after) && after >= 0 ? { ok: false, retry: true, why, retryAfterMs: after * 1000 } : { ok: false, retry: true, why };
      }
      return { ok: false, retry: false, why };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${this.config.timeout} ms` : (e.cause?.code ?? e.message);
      return { ok: false, retry: true, why };
    }
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = { timer: setTimeout(() => done(), ms), wake: () => done() };
      const done = (): void => {
        this.timers.delete(entry);
        resolve();
      };
      entry.timer.unref();
      this.timers.add(entry);
    });
  }
}
