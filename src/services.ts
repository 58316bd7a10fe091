// The services a session may use beyond the relay itself; each is optional. startWarden builds
// them from the configuration and hands them to the listeners.
import type { ApprovalService, StatementPolicy } from './approvals/types.js';
import type { RecorderFactory } from './audit/recorder.js';
import type { TranscriptsConfig } from './config/types.js';
import type { MaskingEngine } from './masking/types.js';
import type { ByteBudget } from './net/byte-budget.js';
import type { RecordingThread } from './pg/recording/thread.js';
import type { WireRecording } from './pg/recording/wire-recording.js';

export interface SessionServices {
  /** Names this warden instance (transcripts, approval requests). */
  instanceId: string;
  recorders: RecorderFactory | undefined;
  /** Records the sessions no rule touches off the event loop (src/pg/recording/); absent when off. */
  recordingThread?: RecordingThread | undefined;
  /** Records the sessions no rule touches as `wire` records (transcripts.wire); absent when off. */
  wire?: WireRecording | undefined;
  transcripts: TranscriptsConfig | undefined;
  policy: StatementPolicy | undefined;
  approvals: ApprovalService | undefined;
  masking: MaskingEngine | undefined;
  /** What all sessions together may hold of messages being read whole (sessions.max_buffered_bytes). */
  buffers: ByteBudget;
}
