// GET /approvals/ui: one self-contained page to review held statements and decide them. It holds
// no data itself: the approver pastes an access token (kept in this tab's sessionStorage at most),
// and the page calls the same JSON API with it, following the event stream (read with fetch, as
// EventSource cannot send an Authorization header). Every value from the server is put into the
// page with textContent, never as HTML, with hidden and reordering characters (bidi controls,
// zero-width characters) shown as <U+XXXX> (visible.ts); the CSP allows only this page's own
// inline code.
import { randomBytes } from 'node:crypto';
import { visibleText } from './visible.js';

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}
header{background:#1d232b;color:#fff;padding:10px 16px;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
header h1{font-size:16px;margin:0 12px 0 0}
input,button{font:inherit}input[type=password]{width:28em}
main{padding:16px;max-width:1100px}
#status{margin:8px 0;min-height:1.4em}.err{color:#b00020}.ok{color:#05612b}
.card{background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:12px;margin:0 0 12px}
.card.focus{border-color:#2f6fde;box-shadow:0 0 0 2px #2f6fde33}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0}
.meta dt{color:#5a6472}.meta dd{margin:0;word-break:break-all}
pre{background:#f0f2f5;padding:8px;white-space:pre-wrap;word-break:break-word;margin:6px 0}
.minutes{width:7em}
.actions{display:flex;gap:8px;flex-wrap:wrap;align-items:center}
.badge{display:inline-block;padding:0 6px;border-radius:4px;background:#e4e7ec;font-size:12px}
.approved{background:#d3f3df}.denied{background:#fbd5d9}.expired,.withdrawn{background:#eee}
`;

const SCRIPT = `
'use strict';
const visibleText = ${visibleText.toString()};
const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem('warden-token') || '', requests: new Map(), abort: null };
const focusId = new URLSearchParams(location.search).get('request');
const el = (tag, props, ...children) => {
  const n = document.createElement(tag);
  if (props) for (const [k, v] of Object.entries(props)) { if (k === 'class') n.className = v; else n[k] = v; }
  for (const c of children) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : document.createTextNode(visibleText(String(c))));
  return n;
};
function status(text, cls) { const s = $('#status'); s.textContent = text; s.className = cls || ''; }
async function api(method, path, body) {
  const res = await fetch(path, { method, headers: Object.assign({ authorization: 'Bearer ' + state.token }, body ? { 'content-type': 'application/json' } : {}), body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error('HTTP ' + res.status + ': ' + (data.error || res.statusText));
  return data;
}
function render() {
  const list = $('#list');
  list.replaceChildren();
  const shown = [...state.requests.values()].filter((r) => r.status === 'pending' || r.id === focusId)
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  if (shown.length === 0) list.append(el('p', null, state.token ? 'No pending requests.' : 'Paste an access token to see pending requests.'));
  for (const r of shown) list.append(card(r));
}
function card(r) {
  const meta = el('dl', { class: 'meta' });
  const row = (k, v) => { meta.append(el('dt', null, k), el('dd', null, v)); };
  row('Principal', r.principal.name + ' (' + r.principal.issuer + ':' + r.principal.subject + ')');
  row('Target', r.target);
  row('Rule', r.rule);
  row('Why', r.reason);
  row('Client', r.client_address + ' · session ' + r.session_id);
  row('Created', new Date(r.created_at).toLocaleString());
  row('Expires', new Date(r.expires_at).toLocaleString());
  if (r.params && r.params.length) row('Parameters', r.params.map((p, i) => '$' + (i + 1) + ' = ' + (p === null ? 'NULL' : p)).join('\\n'));
  if (r.decision) row('Decision', (r.decision.by ? r.decision.by.label + ': ' : '') + (r.decision.reason || '') + (r.decision.grant_id ? ' (grant ' + r.decision.grant_id + ')' : ''));
  const c = el('div', { class: 'card' + (r.id === focusId ? ' focus' : '') },
    el('div', null, el('strong', null, r.id), ' ', el('span', { class: 'badge ' + r.status }, r.status)),
    meta, el('pre', null, r.statement));
  if (r.status === 'pending') {
    const reason = el('input', { type: 'text', placeholder: 'reason', size: 30 });
    const minutes = el('input', { type: 'number', min: 1, placeholder: 'minutes', class: 'minutes' });
    const act = (action) => async () => {
      const body = { reason: reason.value || undefined };
      if (action === 'grant') body.grant_minutes = Number(minutes.value);
      try {
        await api('POST', '/approvals/' + encodeURIComponent(r.id) + '/' + (action === 'deny' ? 'deny' : 'approve'), body);
        status('Request ' + r.id + ' ' + (action === 'deny' ? 'denied' : 'approved') + '.', 'ok');
      } catch (e) { status(e.message, 'err'); }
    };
    c.append(el('div', { class: 'actions' }, reason,
      el('button', { onclick: act('approve') }, 'Approve once'), minutes,
      el('button', { onclick: act('grant') }, 'Approve with grant'),
      el('button', { onclick: act('deny') }, 'Deny')));
  }
  return c;
}
async function load() {
  const data = await api('GET', '/approvals?status=pending');
  state.requests.clear();
  for (const r of data.requests) state.requests.set(r.id, r);
  if (focusId && !state.requests.has(focusId)) {
    try { const one = await api('GET', '/approvals/' + encodeURIComponent(focusId)); state.requests.set(one.request.id, one.request); } catch (e) { status(e.message, 'err'); }
  }
  render();
}
async function follow() {
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  state.abort = abort;
  const res = await fetch('/approvals/events', { headers: { authorization: 'Bearer ' + state.token }, signal: abort.signal });
  if (!res.ok) throw new Error('event stream: HTTP ' + res.status);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\\n\\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message', data = '';
      for (const line of block.split('\\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (!data) continue;
      const payload = JSON.parse(data);
      if (payload.request) { state.requests.set(payload.request.id, payload.request); render(); }
      if (event === 'token.expired') status('Your token expired; paste a fresh one.', 'err');
    }
  }
}
async function connect() {
  state.token = $('#token').value.trim();
  if ($('#remember').checked) sessionStorage.setItem('warden-token', state.token); else sessionStorage.removeItem('warden-token');
  try {
    await load();
    status('Connected; following new requests.', 'ok');
    follow().catch((e) => { if (e.name !== 'AbortError') status(e.message, 'err'); });
  } catch (e) { status(e.message, 'err'); }
}
$('#connect').addEventListener('click', connect);
$('#token').value = state.token;
if (state.token) connect(); else render();
`;

export interface Page {
  html: string;
  csp: string;
}

export function approvalsPage(): Page {
  const nonce = randomBytes(16).toString('base64');
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>warden approvals</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header>
<h1>warden approvals</h1>
<input id="token" type="password" placeholder="approver access token" autocomplete="off" aria-label="access token">
<label><input id="remember" type="checkbox"> keep in this tab</label>
<button id="connect">Connect</button>
</header>
<main>
<div id="status" role="status"></div>
<div id="list"></div>
</main>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
  return { html, csp };
}
