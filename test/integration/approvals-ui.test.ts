// The review page at /approvals/ui in a real browser (headless Chromium through playwright-core):
// an approver pastes a token, sees the held statement, and decides with the buttons; statement
// text from the agent is shown as text, with the characters that hide or reorder text on screen
// (bidi controls, zero-width characters, terminal controls) made visible.
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HoldRequest } from '../../src/approvals/types.js';
import { findClient, missingClient } from '../helpers/clients.js';
import { APPROVER_ROLE, holdRequest, startApprovalsServer, type ApprovalsServer } from '../unit/approvals-support.js';

const CHROMIUM = findClient('chromium');

let server: ApprovalsServer;
let browser: Browser;
let token: string;
let agentRequest: HoldRequest;

beforeAll(async () => {
  if (!CHROMIUM) return;
  server = await startApprovalsServer();
  token = await server.token('dana', { roles: [APPROVER_ROLE] });
  agentRequest = holdRequest({ principal: await server.agent('agent-app') });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** The page, connected with the approver's token, showing the card of request `id`. */
async function review(id: string): Promise<Page> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/approvals/ui?request=${id}`);
  await page.fill('#token', token);
  await page.click('#connect');
  await page.locator('.card', { hasText: id }).waitFor();
  expect(errors).toEqual([]);
  return page;
}

describe.skipIf(missingClient('chromium'))('the review page in Chromium', () => {
  it('shows hidden and reordering characters of a statement as <U+XXXX>, and markup as text', async () => {
    // U+202E reverses the rest of the line on screen; U+2066 … U+2069 isolate and reorder; U+200B is invisible.
    const sql = 'SELECT 1 /* \u202E */; DROP TABLE customers; -- \u2066<img src=x onerror="window.pwned=1">\u2069\u200B';
    const hold = await server.approvals.service.hold({ ...agentRequest, sql, params: ['a\u202Eb', null] });
    const page = await review(hold.id);
    const card = page.locator('.card', { hasText: hold.id });
    expect(await card.locator('pre').textContent()).toBe(
      'SELECT 1 /* <U+202E> */; DROP TABLE customers; -- <U+2066><img src=x onerror="window.pwned=1"><U+2069><U+200B>',
    );
    expect(await card.locator('dd', { hasText: '$1 = ' }).textContent()).toBe('$1 = a<U+202E>b\n$2 = NULL');
    expect(await page.evaluate('typeof window.pwned')).toBe('undefined');
    expect(await card.locator('img').count()).toBe(0);
    hold.withdraw('cancelled');
    await page.close();
  });

  it('Approve once and Deny decide the request as the approver', async () => {
    const approved = await server.approvals.service.hold(agentRequest);
    const page = await review(approved.id);
    await page.locator('.card', { hasText: approved.id }).getByRole('button', { name: 'Approve once' }).click();
    await page.locator('#status', { hasText: `Request ${approved.id} approved.` }).waitFor();
    expect(await approved.outcome).toMatchObject({ decision: 'approved', approver: 'dev:dana' });

    const denied = await server.approvals.service.hold(agentRequest);
    await page.goto(`${server.url}/approvals/ui?request=${denied.id}`);
    await page.fill('#token', token);
    await page.click('#connect');
    const card = page.locator('.card', { hasText: denied.id });
    await card.locator('input[placeholder=reason]').fill('not now');
    await card.getByRole('button', { name: 'Deny' }).click();
    await page.locator('#status', { hasText: `Request ${denied.id} denied.` }).waitFor();
    expect(await denied.outcome).toEqual({ decision: 'denied', approver: 'dev:dana', reason: 'not now' });
    await page.close();
  });
});
