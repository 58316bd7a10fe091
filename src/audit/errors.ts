// Errors the transcript layer raises. A relay that gets a TranscriptWriteError from a Recorder
// must stop the data (refuse the statement, end the session): a session that cannot be recorded
// does not run (fail closed).

/** Why a record could not be made durable. `code` is the errno code when the OS gave one. */
export class TranscriptWriteError extends Error {
  override readonly name = 'TranscriptWriteError';
  readonly code: string;

  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code ?? errnoCode(options.cause) ?? 'ETRANSCRIPT';
  }
}

/** A transcript file or option a reader was given cannot be used (not tampering: that is a verify finding). */
export class TranscriptReadError extends Error {
  override readonly name = 'TranscriptReadError';
}

/** A read that would hold more records in memory than its caller allows (the admin API's replay). */
export class TranscriptTooLargeError extends TranscriptReadError {
  constructor(
    message: string,
    readonly limit: number,
  ) {
    super(message);
  }
}

/** The admin API's transcript reader thread ran out of the memory it may use (the store is too large to read inside warden). */
export class TranscriptReaderMemoryError extends TranscriptReadError {
  constructor(readonly heapMb: number) {
    super(`reading these transcripts needs more than the ${heapMb} MB the reader may use inside warden`);
  }
}

/** The reason a relay gives when the transcript store cannot be written (the store is unhealthy). */
export const STORE_UNWRITABLE = 'the transcript store cannot be written; statements are refused until it recovers';

/**
 * Why a statement whose own record failed is refused: a record too large or that cannot be
 * encoded refuses that statement only; anything else (disk full, I/O error) is the store failing.
 * The error's own message (paths, errno) stays in warden's log.
 */
export function unrecordedReason(err: unknown): string {
  const code = err instanceof TranscriptWriteError ? err.code : undefined;
  if (code === 'ERECORDTOOLARGE') return 'the statement\'s transcript record would exceed the record size limit, so it was not run';
  if (code === 'EENCODE') return 'the statement cannot be recorded in the transcript, so it was not run';
  return STORE_UNWRITABLE;
}

export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}
