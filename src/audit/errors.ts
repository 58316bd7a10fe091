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

export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}
