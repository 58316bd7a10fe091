// Every way of altering a transcript store is found, named, and located (file, line, seq).
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/audit/frame.js';
import { signMark, peekMark } from '../../src/audit/jws.js';
import { keyId } from '../../src/audit/keys.js';
import type { TranscriptStore } from '../../src/audit/recorder.js';
import { errorKinds, openStore, readLinesOf, recordSession, segmentFiles, tempDataDir, transcriptsDir, verifyStore, writeLinesTo } from './audit-support.js';

let data: { dir: string; cleanup: () => void };

/** Three or more sealed segments of one instance, checkpoints every 10 records. */
async function buildStore(): Promise<string[]> {
  const store = await openStore(data.dir, { segmentMaxBytes: 11 * 1024 });
  await (await recordSession(store, 'sess-a', 20)).sessionEnd('client closed');
  await (await recordSession(store, 'sess-b', 20)).sessionEnd('client closed');
  await store.close();
  const files = segmentFiles(data.dir);
  expect(files.length).toBeGreaterThanOrEqual(3);
  return files;
}

function lineOf(path: string, index: number): { seq: number; prev: string; hash: string; k: string } {
  return JSON.parse(readLinesOf(path)[index] as string) as { seq: number; prev: string; hash: string; k: string };
}

beforeEach(() => {
  data = tempDataDir();
});
afterEach(() => data.cleanup());

describe('verify on an untouched store', () => {
  it('finds nothing wrong and describes the chain', async () => {
    const files = await buildStore();
    const report = await verifyStore(data.dir);
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.segments.map((s) => s.status)).toEqual(files.map(() => 'intact'));
    expect(report.segments.every((s) => s.checkpoints > 0)).toBe(true);
    const [instance] = report.instances;
    expect(instance?.segments).toBe(files.length);
    expect(instance?.firstSeq).toBe(1);
    expect(instance?.lastSeq).toBe(report.records);
    expect(instance?.head?.typ).toBe('seal');
    expect(instance?.unsigned).toBe(0);
  });
});

describe('verify names each alteration precisely', () => {
  it('edited: one byte of a record changed', async () => {
    const [, second] = await buildStore();
    const lines = readLinesOf(second as string);
    const i = lines.findIndex((l) => l.includes('"k":"statement"'));
    const target = lineOf(second as string, i);
    lines[i] = (lines[i] as string).replace('SELECT id', 'SELECT ID');
    writeLinesTo(second as string, lines);
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(false);
    expect(errorKinds(report)).toEqual(['edited']);
    expect(report.findings[0]).toMatchObject({ kind: 'edited', file: basename(second as string), line: i + 1, seq: target.seq });
  });

  it('removed: one record deleted', async () => {
    const [, second] = await buildStore();
    const lines = readLinesOf(second as string);
    const gone = lineOf(second as string, 4);
    lines.splice(4, 1);
    writeLinesTo(second as string, lines);
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(false);
    const removed = report.findings.find((f) => f.kind === 'removed');
    expect(removed).toMatchObject({ file: basename(second as string), seq: gone.seq });
    expect(removed?.message).toContain(`seq ${gone.seq} is missing`);
    // The signed counts after it disagree too; nothing is called an edit.
    expect(errorKinds(report)).not.toContain('edited');
  });

  it('reordered: two records swapped', async () => {
    const [, second] = await buildStore();
    const lines = readLinesOf(second as string);
    const a = lineOf(second as string, 3);
    const b = lineOf(second as string, 4);
    [lines[3], lines[4]] = [lines[4] as string, lines[3] as string];
    writeLinesTo(second as string, lines);
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual(['reordered']);
    expect(report.findings[0]?.message).toContain(`line 4 holds seq ${b.seq} but the next line, 5, holds seq ${a.seq}`);
  });

  it('inserted: a well-formed record spliced into the chain', async () => {
    const [, second] = await buildStore();
    const lines = readLinesOf(second as string);
    const before = lineOf(second as string, 3);
    const forged = encodeRecord(before.seq + 1, new Date().toISOString(), before.hash, 'statement', 'sess-a', {
      st: 99,
      text: 'SELECT 1',
      cls: { class: 'read', relations: [] },
      verdict: 'allow',
    });
    lines.splice(4, 0, forged.line.trimEnd());
    writeLinesTo(second as string, lines);
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual(['inserted']);
    expect(report.findings[0]).toMatchObject({ kind: 'inserted', line: 5, seq: before.seq + 1 });
  });

  it('truncated: a record in the middle cut short', async () => {
    const [, second] = await buildStore();
    const lines = readLinesOf(second as string);
    const cut = lineOf(second as string, 6);
    lines[6] = (lines[6] as string).slice(0, 60);
    writeLinesTo(second as string, lines);
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(false);
    const f = report.findings.find((x) => x.kind === 'truncated');
    expect(f).toMatchObject({ file: basename(second as string), line: 7, seq: cut.seq });
    // The unreadable line explains the gap: it is not also reported as a removal.
    expect(errorKinds(report)).not.toContain('removed');
  });

  it('truncated: the end of the newest segment cut off inside a record (not a torn tail)', async () => {
    const files = await buildStore();
    const newest = files[files.length - 1] as string;
    truncateSync(newest, statSync(newest).size - 150);
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(false);
    expect(report.findings.find((f) => f.kind === 'truncated')?.message).toContain('the newest records were removed');
    expect(report.findings.some((f) => f.kind === 'torn-tail')).toBe(false);
  });

  it('truncated: the end of a middle segment cut off at a line boundary', async () => {
    const [first] = await buildStore();
    const lines = readLinesOf(first as string);
    writeLinesTo(first as string, lines.slice(0, -3));
    const report = await verifyStore(data.dir);
    const f = report.findings.find((x) => x.kind === 'truncated');
    expect(f).toMatchObject({ file: basename(first as string) });
    expect(f?.message).toContain('was cut off');
  });

  it('missing-segment: a whole middle segment deleted', async () => {
    const files = await buildStore();
    const middle = files[1] as string;
    const lines = readLinesOf(middle);
    const firstSeq = (JSON.parse(lines[0] as string) as { seq: number }).seq;
    rmSync(middle);
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual(['missing-segment']);
    expect(report.findings[0]).toMatchObject({ kind: 'missing-segment', seq: firstSeq });
    expect(report.findings[0]?.message).toContain('segment 2 of instance w1 is missing');
  });

  it('missing-segment: the first segment deleted', async () => {
    const files = await buildStore();
    rmSync(files[0] as string);
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual(['missing-segment']);
    expect(report.findings[0]?.message).toContain("the start of instance w1's chain is missing");
  });

  it('missing-segment: segments deleted before an empty newest file (a crash while creating it is only the next number)', async () => {
    const files = await buildStore();
    const n = files.length;
    const empty = (i: number) => join(transcriptsDir(data.dir), `w1_${String(i).padStart(8, '0')}_20990101T000000Z.jsonl`);
    writeFileSync(empty(n + 1), '');
    const crashed = await verifyStore(data.dir);
    expect(crashed.ok).toBe(true);
    expect(crashed.findings.find((f) => f.kind === 'torn-tail')?.severity).toBe('warning');
    rmSync(empty(n + 1));
    writeFileSync(empty(n + 4), '');
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual(['missing-segment']);
    expect(report.findings.find((f) => f.kind === 'missing-segment')?.message).toContain(`segment(s) ${n + 1}, ${n + 2}, ${n + 3} of instance w1 are missing`);
  });

  it('truncated: the newest segment deleted (the head names it)', async () => {
    const files = await buildStore();
    rmSync(files[files.length - 1] as string);
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual(['truncated']);
    expect(report.findings[0]?.message).toContain('the newest records were removed');
  });

  it('segment-order: two segment files swapped', async () => {
    const files = await buildStore();
    const [a, b] = [files[1] as string, files[2] as string];
    renameSync(a, `${a}.x`);
    renameSync(b, a);
    renameSync(`${a}.x`, b);
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual(['segment-order']);
    expect(report.findings.map((f) => f.file).sort()).toEqual([basename(a), basename(b)].sort());
  });

  it('bad-signature: a seal re-signed with another key', async () => {
    const [, second] = await buildStore();
    const lines = readLinesOf(second as string);
    const sealIndex = lines.length - 1;
    const seal = JSON.parse(lines[sealIndex] as string) as { seq: number; ts: string; prev: string; d: { jws: string } };
    const other = generateKeyPairSync('ed25519');
    const mark = peekMark(seal.d.jws);
    expect(mark).toBeDefined();
    const otherKey = { privateKey: other.privateKey, publicKey: other.publicKey, kid: await keyId(other.publicKey), keyFile: '', publicKeyFile: '' };
    const forged = encodeRecord(seal.seq, seal.ts, seal.prev, 'seal', undefined, { jws: signMark(otherKey, mark!) });
    lines[sealIndex] = forged.line.trimEnd();
    writeLinesTo(second as string, lines);
    const report = await verifyStore(data.dir);
    const bad = report.findings.find((f) => f.kind === 'bad-signature');
    expect(bad).toMatchObject({ file: basename(second as string), line: sealIndex + 1, seq: seal.seq });
    expect(bad?.message).toContain(`signed by key ${otherKey.kid}`);
  });

  it('checkpoint-mismatch: a record rewritten and the rest of the segment re-hashed', async () => {
    const [, second] = await buildStore();
    const lines = readLinesOf(second as string);
    const i = lines.findIndex((l) => l.includes('"k":"statement"'));
    // Re-chain every record from i on, as an attacker without the signing key would.
    let prev = (JSON.parse(lines[i - 1] as string) as { hash: string }).hash;
    for (let j = i; j < lines.length; j++) {
      const r = JSON.parse(lines[j] as string) as { seq: number; ts: string; k: 'statement'; sid?: string; d: { text?: string } };
      if (j === i) r.d.text = 'SELECT 1';
      const enc = encodeRecord(r.seq, r.ts, prev, r.k, r.sid, r.d);
      lines[j] = enc.line.trimEnd();
      prev = enc.hash;
    }
    writeLinesTo(second as string, lines);
    const report = await verifyStore(data.dir);
    const kinds = errorKinds(report);
    expect(kinds).toContain('checkpoint-mismatch');
    expect(kinds).toContain('seal-mismatch');
    expect(kinds).not.toContain('edited');
    expect(report.findings.find((f) => f.kind === 'checkpoint-mismatch')?.message).toContain('were rewritten after they were signed');
  });

  it('corrupt and foreign files are reported, not thrown on', async () => {
    await buildStore();
    const dir = transcriptsDir(data.dir);
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    writeFileSync(join(dir, 'w1_00000099_20260101T000000Z.jsonl'), Buffer.from([0, 1, 2, 10, 255, 254, 10]));
    const report = await verifyStore(data.dir);
    expect(report.findings.find((f) => f.kind === 'foreign-file')).toMatchObject({ severity: 'warning', file: 'notes.txt' });
    expect(report.findings.find((f) => f.kind === 'corrupt')).toMatchObject({ file: 'w1_00000099_20260101T000000Z.jsonl' });
    expect(report.ok).toBe(false);
  });

  it('a file dropped in with a high segment number is reported while there, and the numbers the next writer skipped over it are not missing once it is gone', async () => {
    const files = await buildStore();
    const dir = transcriptsDir(data.dir);
    const foreign = join(dir, 'w1_00000099_20260101T000000Z.jsonl');
    writeFileSync(foreign, '{"not":"a record"}\n');
    // The next writer numbers its segment after the highest-numbered file present.
    const store = await openStore(data.dir);
    await recordSession(store, 'sess-c', 2);
    await store.close();
    expect(basename(segmentFiles(data.dir).at(-1) as string)).toMatch(/^w1_00000100_/);
    const withFile = await verifyStore(data.dir);
    expect(errorKinds(withFile)).toEqual(['corrupt']);
    expect(withFile.findings.find((f) => f.kind === 'corrupt')).toMatchObject({ file: basename(foreign) });
    rmSync(foreign);
    const without = await verifyStore(data.dir);
    expect(errorKinds(without)).toEqual([]);
    expect(without.ok).toBe(true);
    // The same gap with records gone from it is still missing segments: delete the newest
    // pre-existing segment, whose records the new segment's link names.
    rmSync(files.at(-1) as string);
    const cut = await verifyStore(data.dir);
    expect(errorKinds(cut)).toContain('missing-segment');
  });

  it('a head file spoiled or removed before a restart is reported by the segments the restarted writer opens', async () => {
    const files = await buildStore();
    const dir = transcriptsDir(data.dir);
    const head = join(dir, 'w1.head.json');
    const newest = files.at(-1) as string;
    // Cut the newest segment's last records (its seal with them) and spoil the head that named the seal.
    writeLinesTo(newest, readLinesOf(newest).slice(0, 3));
    writeFileSync(head, 'x\n');
    const store = await openStore(data.dir);
    await recordSession(store, 'sess-c', 1);
    await store.close();
    const report = await verifyStore(data.dir);
    const spoiled = report.findings.find((f) => f.kind === 'corrupt');
    expect(errorKinds(report)).toEqual(['corrupt']);
    expect(spoiled?.message).toContain('the head file of instance w1 was not a transcript head file');
    expect(spoiled?.file).toBe(basename(segmentFiles(data.dir).at(-1) as string));

    // Removed after a clean stop: a warning (the head is written after the seal is durable, so a
    // sealed chain without one lost it afterwards), not a silent pass.
    rmSync(head);
    const again = await openStore(data.dir);
    await recordSession(again, 'sess-d', 1);
    await again.close();
    const later = await verifyStore(data.dir);
    expect(later.findings.filter((f) => f.kind === 'head-missing').map((f) => f.message)).toEqual([
      expect.stringContaining('the head file of instance w1 was absent although the chain ended in a seal'),
    ]);
  });

  it('a stray file named like a segment, with a line that is no record, is corrupt, not a writer that died creating it', async () => {
    await buildStore();
    const dir = transcriptsDir(data.dir);
    writeFileSync(join(dir, 'other_00000001_20261130T000000Z.jsonl'), '{"seq":1}\n');
    const report = await verifyStore(data.dir);
    const about = report.findings.filter((f) => f.file === 'other_00000001_20261130T000000Z.jsonl');
    expect(about.map((f) => f.kind)).toContain('corrupt');
    expect(about.map((f) => f.kind)).not.toContain('torn-tail');
    // A writer that died creating a segment leaves it empty or with one partial record: a warning, with its size.
    const partial = '{"seq":1,"ts":17';
    writeFileSync(join(dir, 'another_00000001_20261130T000000Z.jsonl'), partial);
    const torn = (await verifyStore(data.dir)).findings.find((f) => f.file === 'another_00000001_20261130T000000Z.jsonl');
    expect(torn).toMatchObject({ kind: 'torn-tail', severity: 'warning' });
    expect(torn?.message).toContain(`holds no whole record (${partial.length} bytes)`);
  });

  it('a segment stuffed with 200,000 bad lines is reported with counted findings, not a crash', async () => {
    const files = await buildStore();
    const victim = files[1] as string;
    appendFileSync(victim, 'x\n'.repeat(200_000));
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(false);
    const corrupt = report.findings.filter((f) => f.kind === 'corrupt' && f.file === basename(victim));
    expect(corrupt).toHaveLength(21);
    expect(corrupt[0]?.message).toMatch(/^line \d+ is not a transcript record$/);
    expect(corrupt[20]?.message).toBe('… and 199980 more corrupt finding(s) in this file');
  });

  it('names a looping or dangling symlink named like a segment instead of passing over it', async () => {
    await buildStore();
    const dir = transcriptsDir(data.dir);
    const loop = join(dir, 'w1_00000098_20260101T000000Z.jsonl');
    symlinkSync(loop, loop);
    symlinkSync(join(dir, 'gone'), join(dir, 'w1_00000099_20260101T000000Z.jsonl'));
    const report = await verifyStore(data.dir);
    const foreign = report.findings.filter((f) => f.kind === 'foreign-file').map((f) => f.message);
    expect(foreign).toEqual([
      'w1_00000098_20260101T000000Z.jsonl is not a transcript file (cannot be read: ELOOP); ignored',
      'w1_00000099_20260101T000000Z.jsonl is not a transcript file (cannot be read: ENOENT); ignored',
    ]);
  });

  it('a head file signed by another key is a bad signature', async () => {
    await buildStore();
    const headPath = join(transcriptsDir(data.dir), 'w1.head.json');
    const head = JSON.parse(readFileSync(headPath, 'utf8')) as { format: string; jws: string };
    const other = generateKeyPairSync('ed25519');
    const otherKey = { privateKey: other.privateKey, publicKey: other.publicKey, kid: await keyId(other.publicKey), keyFile: '', publicKeyFile: '' };
    writeFileSync(headPath, JSON.stringify({ ...head, jws: signMark(otherKey, { ...peekMark(head.jws)!, seq: 1 }) }));
    const report = await verifyStore(data.dir);
    expect(report.findings.find((f) => f.kind === 'bad-signature')).toMatchObject({ file: 'w1.head.json' });
  });
});

describe('several instances in one directory', () => {
  it('verifies each chain on its own', async () => {
    const one = await openStore(data.dir, { instanceId: 'w1' });
    const two = await openStore(data.dir, { instanceId: 'w2' });
    await recordSession(one, 'one', 3);
    await recordSession(two, 'two', 3);
    await Promise.all([one.close(), two.close()]);
    const report = await verifyStore(data.dir);
    expect(report.findings).toEqual([]);
    expect(report.instances.map((i) => [i.instance, i.segments, i.firstSeq])).toEqual([
      ['w1', 1, 1],
      ['w2', 1, 1],
    ]);
    rmSync(join(transcriptsDir(data.dir), 'w2.head.json'));
    const noHead = await verifyStore(data.dir);
    expect(noHead.ok).toBe(true);
    expect(noHead.findings).toMatchObject([{ kind: 'head-missing', severity: 'warning', instance: 'w2' }]);
  });
});

describe('a live or crashed segment is not tampering', () => {
  let store: TranscriptStore | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('reports a torn tail on the newest unsealed segment as a warning, with the last intact record', async () => {
    store = await openStore(data.dir);
    await recordSession(store, 'sess-live', 12);
    await new Promise((r) => setTimeout(r, 20));
    const file = store.writer.activeFile;
    const lines = readLinesOf(file);
    const last = JSON.parse(lines[lines.length - 1] as string) as { seq: number };
    const intactSize = statSync(file).size;
    appendFileSync(file, '{"seq":99999,"ts":"2026-01-01T00:0');
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(true);
    const torn = report.findings.find((f) => f.kind === 'torn-tail');
    expect(torn).toMatchObject({ severity: 'warning', line: lines.length + 1 });
    expect(torn?.message).toContain(`the last intact record is seq ${last.seq}`);
    expect(report.findings.find((f) => f.kind === 'open-segment')?.severity).toBe('info');
    expect(report.instances[0]?.lastIntact).toMatchObject({ seq: last.seq, line: lines.length });
    truncateSync(file, intactSize); // let the writer seal cleanly
  });
});
