// Shared by the transcript tests: temporary data directories, a store with small segments, a
// scripted session, and file surgery helpers for the tamper tests.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { transcriptConfig, type TranscriptConfig } from '../../src/audit/config.js';
import { loadVerifyKey } from '../../src/audit/keys.js';
import { TranscriptStore, type Recorder } from '../../src/audit/recorder.js';
import { parseSegmentFileName } from '../../src/audit/segment-files.js';
import { verify, type VerifyReport } from '../../src/audit/verify.js';

export function tempDataDir(prefix = 'warden-audit-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function testConfig(dataDir: string, overrides: Partial<TranscriptConfig> = {}): TranscriptConfig {
  return transcriptConfig(dataDir, { instanceId: 'w1', fsync: 'interval', checkpointEveryRecords: 10, ...overrides });
}

export async function openStore(dataDir: string, overrides: Partial<TranscriptConfig> = {}): Promise<TranscriptStore> {
  return TranscriptStore.open(testConfig(dataDir, overrides));
}

export const PRINCIPAL = {
  name: 'reporting-agent',
  issuer: 'https://login.example.test/tenant/v2.0',
  issuerName: 'dev',
  subject: 'app-1234',
  appId: 'app-1234',
  roles: ['reader'],
  groups: [],
};

/** Records one session of `statements` simple statements with results. Returns the recorder. */
export async function recordSession(store: TranscriptStore, sessionId: string, statements: number, target = 'shop'): Promise<Recorder> {
  const rec = store.recorder();
  await rec.sessionStart({ sessionId, protocol: 'postgres', target, principal: PRINCIPAL, client: { address: '127.0.0.1', port: 50000, tls: null } });
  for (let i = 0; i < statements; i++) {
    const st = await rec.statement({
      text: `SELECT id, email FROM customers WHERE id = $1 /* ${i} */`,
      params: [{ type: 'int4', value: String(i) }],
      classification: { class: 'read', relations: ['public.customers'] },
      verdict: 'mask',
    });
    await rec.result({
      statementId: st,
      columns: [
        { name: 'id', type: 'int4', masked: null },
        { name: 'email', type: 'text', masked: 'email-partial' },
      ],
      rows: 1,
      bytes: 40,
      capture: { mode: 'first', limit: 5, rows: [[String(i), 'j***@example.com']], truncated: false },
      tag: 'SELECT 1',
    });
  }
  return rec;
}

export function transcriptsDir(dataDir: string): string {
  return join(dataDir, 'transcripts');
}

/** Segment files of an instance in chain order (full paths). */
export function segmentFiles(dataDir: string, instance = 'w1'): string[] {
  const dir = transcriptsDir(dataDir);
  return readdirSync(dir)
    .map((n) => parseSegmentFileName(n))
    .filter((s): s is NonNullable<typeof s> => s !== undefined && s.instance === instance)
    .sort((a, b) => a.index - b.index)
    .map((s) => join(dir, s.name));
}

/** A file's lines without the final empty string (the text after the last '\n'). */
export function readLinesOf(path: string): string[] {
  const parts = readFileSync(path, 'utf8').split('\n');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export function writeLinesTo(path: string, lines: string[]): void {
  writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
}

export async function verifyStore(dataDir: string): Promise<VerifyReport> {
  const key = await loadVerifyKey(join(dataDir, 'keys', 'transcript-ed25519.pub.pem'));
  return verify(transcriptsDir(dataDir), { publicKey: key });
}

export function errorKinds(report: VerifyReport): string[] {
  return [...new Set(report.findings.filter((f) => f.severity === 'error').map((f) => f.kind))].sort();
}
