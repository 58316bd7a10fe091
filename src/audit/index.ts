// The transcript API for the rest of warden. Relays: TranscriptStore / RecorderFactory, Recorder,
// RowCapture and the types of what they pass. Admin and CLI: verify, listSessions, loadSession,
// followSession, buildReview. See docs/transcripts.md.

export { transcriptConfig, DEFAULT_LIMITS, type CaptureMode, type CapturePolicy, type FsyncPolicy, type TranscriptConfig, type TranscriptLimits } from './config.js';
export { TranscriptReadError, TranscriptWriteError } from './errors.js';
export { defaultKeyFile, defaultPublicKeyFile, loadVerifyKey, type VerifyKey } from './keys.js';
export type { SignedMark } from './jws.js';
export { disabledRecorders, RowCapture, TranscriptStore, transcriptPrincipal, type Recorder, type RecorderFactory, type TranscriptStoreOptions } from './recorder.js';
export type { WriterHealth } from './segment-writer.js';
export { listSessions, type SessionFilter, type SessionSummary } from './reader.js';
export { followSession, loadSession, renderReplayText, replayJson, type SessionReplay, type TimelineEntry } from './replay.js';
export { buildReview, renderReviewHtml, renderReviewText, type ReviewOptions, type ReviewReport } from './review.js';
export { verify, FINDING, type Finding, type FindingKind, type VerifyOptions, type VerifyReport } from './verify.js';
export * from './types.js';
