// The one error type every decoder throws on malformed input. Anything else escaping a decoder
// is a bug (the fuzz tests hold every codec to this).

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  /** Byte offset (within the message or buffer being decoded) where the problem was found. */
  readonly offset: number;

  constructor(message: string, offset = -1) {
    super(offset >= 0 ? `${message} (at offset ${offset})` : message);
    this.offset = offset;
  }
}

/**
 * A message longer than the reader's cap (declared in its header, or grown past it packet by
 * packet). Still a ProtocolError; the type and the cap let a login phase say what was too large.
 */
export class MessageTooLargeError extends ProtocolError {
  constructor(
    message: string,
    /** The message type byte (PG message code, TDS packet type). */
    readonly messageType: number,
    readonly limit: number,
    offset = -1,
  ) {
    super(message, offset);
  }
}

/**
 * What a reader that gathers a message across reads may hold, shared with other readers (warden's
 * sessions.max_buffered_bytes). A codec asks before it allocates and gives back what it let go.
 */
export interface ByteAllowance {
  readonly limit: number;
  /** False when `bytes` more would pass the limit: nothing is taken then. */
  take(bytes: number): boolean;
  give(bytes: number): void;
}

/** A message could not be gathered because the readers together hold their allowance already. */
export class AllowanceExceededError extends ProtocolError {
  constructor(
    readonly wanted: number,
    readonly limit: number,
  ) {
    super(`warden holds ${limit} bytes of messages being read across its sessions (sessions.max_buffered_bytes); ${wanted} more could not be taken`);
  }
}
