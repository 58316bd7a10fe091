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
