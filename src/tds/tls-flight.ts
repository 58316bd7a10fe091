// Where a TLS 1.2 handshake flight ends, read from the record layer alone. TDS 7.x carries the
// handshake inside PRELOGIN messages ([MS-TDS] 2.2.6.5, 3.3.5.2 / 3.2.5.2): each side sends a
// whole flight as one message and waits for the peer's whole flight in one message, so the
// adapter in prelogin-tls.ts must know when the TLS engine has written the last record of a
// flight before it wraps the records. RFC 5246 6.2 (records), 7.4 (handshake messages), 7.1
// (ChangeCipherSpec): before ChangeCipherSpec the handshake messages are in clear text, so a
// flight ends after ClientHello or ServerHelloDone; after ChangeCipherSpec the next record is the
// (encrypted) Finished message, which ends the flight and the handshake for that side.
// TLS 1.3 cannot be followed this way (its flights are encrypted after ServerHello); warden
// offers only TLS 1.2 inside PRELOGIN, as SQL Server does. TDS 8.0 (strict) runs TLS 1.3 on the
// bare socket and needs none of this.

export const TLS_CONTENT = {
  CHANGE_CIPHER_SPEC: 20,
  ALERT: 21,
  HANDSHAKE: 22,
  APPLICATION_DATA: 23,
} as const;

export const TLS_HANDSHAKE = {
  HELLO_REQUEST: 0,
  CLIENT_HELLO: 1,
  SERVER_HELLO: 2,
  SERVER_HELLO_DONE: 14,
  FINISHED: 20,
} as const;

const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
/** RFC 5246 6.2.3: a record fragment is at most 2^14 + 2048 bytes. */
const MAX_RECORD = (1 << 14) + 2048;
const FLIGHT_ENDERS: ReadonlySet<number> = new Set([TLS_HANDSHAKE.HELLO_REQUEST, TLS_HANDSHAKE.CLIENT_HELLO, TLS_HANDSHAKE.SERVER_HELLO_DONE]);

export class TlsRecordError extends Error {
  override readonly name = 'TlsRecordError';
}

/**
 * Follows one direction of a TLS 1.2 handshake record by record. `push()` the bytes as they are
 * written or received; `flightEnded` is true when the bytes so far end exactly at the end of a
 * flight, `finished` once that side's Finished record has gone by.
 */
export class TlsFlightTracker {
  private header = Buffer.alloc(RECORD_HEADER);
  private headerHave = 0;
  private recordType = -1;
  private recordLeft = 0;
  // the clear-text handshake message stream (before ChangeCipherSpec)
  private hsHeader = Buffer.alloc(HANDSHAKE_HEADER);
  private hsHave = 0;
  private hsLeft = 0;
  private lastHandshake = -1;
  private changedCipher = false;
  private ended = false;
  /** Records seen in all, for tests and logs. */
  records = 0;
  /** Set once the record after ChangeCipherSpec (Finished) is complete. */
  finished = false;

  /** True when the bytes pushed so far end at the end of a flight. */
  get flightEnded(): boolean {
    return this.ended;
  }

  push(chunk: Uint8Array): void {
    let p = 0;
    while (p < chunk.length) {
      this.ended = false;
      if (this.recordType < 0) {
        const n = Math.min(RECORD_HEADER - this.headerHave, chunk.length - p);
        this.header.set(chunk.subarray(p, p + n), this.headerHave);
        this.headerHave += n;
        p += n;
        if (this.headerHave < RECORD_HEADER) return;
        this.headerHave = 0;
        const type = this.header[0]!;
        const length = this.header.readUInt16BE(3);
        if (type < TLS_CONTENT.CHANGE_CIPHER_SPEC || type > TLS_CONTENT.APPLICATION_DATA || this.header[1] !== 3) {
          throw new TlsRecordError(`not a TLS record (type ${type}, version ${this.header[1]}.${this.header[2]})`);
        }
        if (length > MAX_RECORD) throw new TlsRecordError(`TLS record of ${length} bytes exceeds ${MAX_RECORD}`);
        this.recordType = type;
        this.recordLeft = length;
        if (length === 0) this.endRecord();
        continue;
      }
      const n = Math.min(this.recordLeft, chunk.length - p);
      if (this.recordType === TLS_CONTENT.HANDSHAKE && !this.changedCipher) this.handshakeBytes(chunk, p, p + n);
      this.recordLeft -= n;
      p += n;
      if (this.recordLeft === 0) this.endRecord();
    }
  }

  private handshakeBytes(chunk: Uint8Array, start: number, end: number): void {
    let p = start;
    while (p < end) {
      if (this.hsLeft === 0 && this.hsHave < HANDSHAKE_HEADER) {
        const n = Math.min(HANDSHAKE_HEADER - this.hsHave, end - p);
        this.hsHeader.set(chunk.subarray(p, p + n), this.hsHave);
        this.hsHave += n;
        p += n;
        if (this.hsHave < HANDSHAKE_HEADER) return;
        this.lastHandshake = this.hsHeader[0]!;
        this.hsLeft = this.hsHeader.readUIntBE(1, 3);
        if (this.hsLeft === 0) this.hsHave = 0;
        continue;
      }
      const n = Math.min(this.hsLeft, end - p);
      this.hsLeft -= n;
      p += n;
      if (this.hsLeft === 0) this.hsHave = 0;
    }
  }

  private endRecord(): void {
    const type = this.recordType;
    this.recordType = -1;
    this.records++;
    if (type === TLS_CONTENT.ALERT) {
      this.ended = true;
    } else if (type === TLS_CONTENT.CHANGE_CIPHER_SPEC) {
      this.changedCipher = true;
    } else if (this.changedCipher) {
      this.finished = true;
      this.ended = true;
    } else if (type === TLS_CONTENT.HANDSHAKE) {
      const whole = this.hsLeft === 0 && this.hsHave === 0;
      this.ended = whole && FLIGHT_ENDERS.has(this.lastHandshake);
    } else {
      // Application data before ChangeCipherSpec: not TLS 1.2. End the flight rather than wait.
      this.ended = true;
    }
  }
}
