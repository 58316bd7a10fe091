// Wire transcripts (transcripts.wire, src/pg/recording/wire-recording.ts): sessions no rule touches
// are recorded as the bytes their relay read, and readers run the statement flow over them. With
// real clients, what readers make of them must be what the statement flow in line records of the
// same session, for every capture but `all` (which stays with the statement flow), and the chain
// must verify.
import { afterEach, describe, expect, it } from 'vitest';
import { expectSameTranscripts, mixedScenario, recordingWarden } from '../helpers/recording-thread.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

describe('wire transcripts', () => {
  for (const capture of ['digest', 'first', 'none'] as const) {
    it(`read back as the statement flow in line records them (capture ${capture})`, async () => {
      const transcripts = { transcripts: { capture } };
      const inline = await recordingWarden(false, cleanups, transcripts);
      const wired = await recordingWarden('wire', cleanups, transcripts);
      expect(wired.warden.recordingThread).toBeUndefined();
      const [a, b] = [await mixedScenario(inline, 3000, 300), await mixedScenario(wired, 3000, 300)];
      expect(b).toEqual(a);
      const records = await expectSameTranscripts(inline, wired, { wire: true });
      expect(records.filter((r) => r.k === 'statement').length).toBeGreaterThan(10);
    });
  }
});
