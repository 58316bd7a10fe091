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
