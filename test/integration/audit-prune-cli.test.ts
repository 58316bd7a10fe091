// `warden audit prune` through the real CLI in a child process: a dry run changes nothing, a real
// run removes the old segments of a stopped chain after signing its new beginning (audit verify
// stays INTACT), a chain whose writer runs is skipped, and bad ages are usage errors.
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { wardenCli, type CliResult } from '../helpers/warden-cli.js';
import { TranscriptStore } from '../../src/audit/recorder.js';
import { manualClock, recordSession, recordThenRotate, segmentFiles, tempDataDir, testConfig } from '../unit/audit-support.js';

const DAY = 24 * 60 * 60 * 1000;

const cli = (args: string[]): Promise<CliResult> => wardenCli(args);

let data: ReturnType<typeof tempDataDir> | undefined;
afterEach(() => data?.cleanup());

/** Four daily segments of instance w1, from 1 January 2026; the writer stopped (sealed) on the 4th. */
async function fourDays(dir: string): Promise<void> {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const store = await TranscriptStore.open(testConfig(dir, { segmentMaxAgeMs: 60 * 60 * 1000, fsyncIntervalMs: 20 }), { clock: clock.now });
  for (let n = 0; n < 3; n++) await recordThenRotate(store, clock, `sess-${n}`, 2, DAY);
  await recordSession(store, 'sess-3', 2);
  await store.close();
}

const names = (dir: string): string[] => segmentFiles(dir).map((p) => p.slice(p.lastIndexOf('/') + 1));

describe('warden audit prune', () => {
  it('says what would go, then removes it from a stopped chain; verify stays INTACT', async () => {
    data = tempDataDir();
    await fourDays(data.dir);
    expect(names(data.dir)).toHaveLength(4);

    const dry = await cli(['audit', 'prune', '--data-dir', data.dir, '--older-than', '2026-01-03T00:00:00Z', '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/would remove segments whose records are all older than 2026-01-03T00:00:00\.000Z/);
    expect(dry.stdout).toMatch(/w1: would remove 2 segments \(w1_00000001_20260101T000000Z\.jsonl … w1_00000002_20260102T000000Z\.jsonl, seq 1–\d+\); the chain would begin at w1_00000003_20260103T000000Z\.jsonl/);
    expect(names(data.dir)).toHaveLength(4);

    const run = await cli(['audit', 'prune', '--data-dir', data.dir, '--older-than', '2026-01-03T00:00:00Z']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/w1: removed 2 segments; the chain now begins at seq \d+ \(w1_00000003_20260103T000000Z\.jsonl\)/);
    const left = names(data.dir);
    expect(left.slice(0, 2)).toEqual(['w1_00000003_20260103T000000Z.jsonl', 'w1_00000004_20260104T000000Z.jsonl']);
    // The chain went on in a new, sealed segment, whose checkpoint names the new beginning.
    expect(left).toHaveLength(3);

    const verify = await cli(['audit', 'verify', '--data-dir', data.dir]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^INTACT/);
    expect(verify.stdout).toMatch(/older removed by retention/);
    expect(verify.stdout).toMatch(/info +retention/);

    // Nothing older the second time: no new segment either.
    const again = await cli(['audit', 'prune', '--data-dir', data.dir, '--older-than', '2026-01-03T00:00:00Z']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/w1: nothing older/);
    expect(names(data.dir)).toEqual(left);
  });

  it('leaves a chain signed with another key alone', async () => {
    data = tempDataDir();
    await fourDays(data.dir);
    const before = names(data.dir);
    // The key in the data directory replaced: its checkpoint would not verify against the pinned one.
    const keys = join(data.dir, 'keys');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(keys, 'transcript-ed25519.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(keys, 'transcript-ed25519.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const run = await cli(['audit', 'prune', '--data-dir', data.dir, '--older-than', '2026-01-03T00:00:00Z']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/w1: skipped: its chain is signed with key \S+, not with this key \(\S+\); prune it with the key that signs it/);
    expect(names(data.dir)).toEqual(before);
  });

  it('skips a chain whose writer is running, and refuses ages under an hour or a missing age', async () => {
    data = tempDataDir();
    await fourDays(data.dir);
    const live = await TranscriptStore.open(testConfig(data.dir, { instanceId: 'w2' }));
    try {
      const before = readdirSync(join(data.dir, 'transcripts')).sort();
      const run = await cli(['audit', 'prune', '--data-dir', data.dir, '--older-than', '2026-01-03T00:00:00Z', '--instance', 'w2']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/w2: skipped: its lock is held/);
      expect(readdirSync(join(data.dir, 'transcripts')).sort()).toEqual(before);
    } finally {
      await live.close();
    }
    const short = await cli(['audit', 'prune', '--data-dir', data.dir, '--older-than', '30m']);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/--older-than must be at least an hour ago/);
    const none = await cli(['audit', 'prune', '--data-dir', data.dir]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/give --older-than AGE, or --config with transcripts\.retention/);
    const empty = tempDataDir();
    try {
      const none = await cli(['audit', 'prune', '--data-dir', empty.dir, '--older-than', '1d']);
      expect(none.code).toBe(0);
      expect(none.stdout).toMatch(/no transcript directory at .*: nothing to prune/);
    } finally {
      empty.cleanup();
    }
    const unknown = await cli(['audit', 'prune', '--data-dir', data.dir, '--older-than', '1d', '--instance', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no chain of instance 'nope'/);
  });
});
