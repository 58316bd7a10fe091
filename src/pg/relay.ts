// The steady state of a PostgreSQL session: bytes flow both ways through MessageScanners.
// What happens to each message is decided by a direction handler (the pass-through handlers
// below, or the statement flow in flow/ when policy, masking or recording apply). Messages
// nobody needs to look at stream through untouched as slices of the chunk they came in.
//
// Each direction applies backpressure: when one socket's write buffer is full, the other socket
// stops being read, so memory stays flat whatever the result size. A handler may also suspend
// its direction (a statement held for approval, a masking plan waiting for the catalog): the
// source socket is paused and the rest of the chunk waits, in order, until the handler is done.
import type { Socket } from 'node:net';
import { Backend, BACKEND_FIXED_LENGTH, Frontend, FRONTEND_FIXED_LENGTH, TransactionStatus, type TransactionStatusByte } from '../../protocols/postgres/codes.js';
import { encodeErrorResponse, type ErrorSpec } from '../../protocols/postgres/error-response.js';
import { TERMINATE } from '../../protocols/postgres/frontend-messages.js';
import { MessageScanner, RUN, type ScanHandler } from '../../protocols/postgres/scanner.js';
import { AllowanceExceededError, ProtocolError, type ByteAllowance } from '../../protocols/errors.js';
import { OutputBatch } from './output-batch.js';
import { SqlState } from './sqlstate.js';

export type RelayEndReason =
  | { kind: 'client-terminate' }
  | { kind: 'client-disconnect' }
  | { kind: 'upstream-disconnect' }
  | { kind: 'protocol-error'; side: 'client' | 'upstream'; message: string }
  | { kind: 'terminated'; reason: string };

/** Decides what one direction forwards. `out` is the batch written to the other socket. */
export interface DirectionHandler {
  /**
   * Per message header: deliver this message whole (true), whole in a run of messages of its type
   * (RUN: onRun, see ScanHandler.onRun) or let it stream through (false).
   */
  whole(code: number, length: number): boolean | typeof RUN;
  /** A whole message. Append what to forward to `out`; return a Promise to suspend this direction until it settles. */
  onMessage(code: number, buf: Buffer, start: number, end: number, out: OutputBatch): void | Promise<unknown>;
  /** Complete messages of type `code` back to back (see ScanHandler.onRun). Append what to forward to `out`. */
  onRun?(code: number, buf: Buffer, start: number, end: number, out: OutputBatch): void;
  /** Bytes of streamed messages. */
  onBytes(buf: Buffer, start: number, end: number, out: OutputBatch): void;
}

export interface RelayOptions {
  maxMessageBytes: number;
  /** Shared by every session's scanners: what messages being collected may hold together. */
  allowance?: ByteAllowance;
  /** Called once when both sockets are closed. */
  onEnd(reason: RelayEndReason): void;
  onBytes?(direction: 'client_to_upstream' | 'upstream_to_client', n: number): void;
  /** Called when the session becomes idle (ReadyForQuery forwarded, nothing pending from the client). */
  onIdle?(): void;
  /** A handler's promise rejected: the session cannot continue safely. */
  onHandlerError?(side: 'client' | 'upstream', err: unknown): void;
  /**
   * Sees every chunk read from either socket, before it is processed (the recording thread's tap,
   * src/pg/recording/). It must not keep `chunk`: the relay forwards slices of it.
   */
  onChunk?(fromClient: boolean, chunk: Buffer): void;
}

/** Forwards every client message untouched; watches only for Terminate. */
export class PassThroughClient implements DirectionHandler {
  constructor(private readonly onQuery?: () => void) {}
  whole(code: number): boolean {
    if (this.onQuery && (code === Frontend.query || code === Frontend.execute)) this.onQuery();
    return code === Frontend.terminate;
  }
  onMessage(_code: number, buf: Buffer, start: number, end: number, out: OutputBatch): void {
    out.add(buf, start, end);
  }
  onBytes(buf: Buffer, start: number, end: number, out: OutputBatch): void {
    out.add(buf, start, end);
  }
}

/** Forwards every server message untouched. */
export class PassThroughServer implements DirectionHandler {
  whole(): boolean {
    return false;
  }
  onMessage(_code: number, buf: Buffer, start: number, end: number, out: OutputBatch): void {
    out.add(buf, start, end);
  }
  onBytes(buf: Buffer, start: number, end: number, out: OutputBatch): void {
    out.add(buf, start, end);
  }
}

class Direction {
  readonly batch = new OutputBatch();
  readonly scanner: MessageScanner;
  /** The source is paused because the destination's buffer is full. */
  backpressured = false;

  constructor(
    readonly side: 'client' | 'upstream',
    readonly src: Socket,
    readonly dst: Socket,
    /** Replaced only between messages (PgRelay.replaceHandlers). */
    public handler: DirectionHandler,
    maxMessageBytes: number,
    allowance: ByteAllowance | undefined,
    private readonly watch: (code: number, buf: Buffer, start: number) => void,
    /** Sees every message header, streamed or whole. */
    header: (code: number) => void,
    /** True while the relay's reading is paused from outside (PgRelay.pauseReading). */
    private readonly held: () => boolean,
  ) {
    const batch = this.batch;
    const fixed = side === 'client' ? FRONTEND_FIXED_LENGTH : BACKEND_FIXED_LENGTH;
    const scan: ScanHandler = {
      whole: (code, length) => {
        const expected = fixed[code] as number;
        if (expected !== 0 && expected !== length) {
          // A Terminate "of 1 GiB" must not make anyone wait for (or buffer) a gigabyte.
          throw new ProtocolError(`message '${String.fromCharCode(code)}' must be ${expected} bytes long, not ${length}`);
        }
        header(code);
        return code === Backend.readyForQuery || code === Frontend.terminate || this.handler.whole(code, length);
      },
      onMessage: (code, buf, start, end) => {
        this.watch(code, buf, start);
        return this.handler.onMessage(code, buf, start, end, batch);
      },
      onBytes: (buf, start, end) => this.handler.onBytes(buf, start, end, batch),
      // Only called for messages whole() answered RUN for, which only a handler with onRun does.
      onRun: (code: number, buf: Buffer, start: number, end: number) => {
        // One type of message: what watch() sees of the first holds for the rest.
        this.watch(code, buf, start);
        (this.handler.onRun as NonNullable<DirectionHandler['onRun']>)(code, buf, start, end, batch);
      },
    };
    this.scanner = new MessageScanner(scan, maxMessageBytes, allowance);
  }

  get suspended(): boolean {
    return this.scanner.suspended !== undefined;
  }

  /** Writes the batch; pauses the source when the destination is full. */
  flush(): void {
    if (!this.batch.flush(this.dst) && !this.backpressured) {
      this.backpressured = true;
      this.src.pause();
    }
  }

  drained(): void {
    if (!this.backpressured) return;
    this.backpressured = false;
    if (!this.suspended && !this.held()) this.src.resume();
  }
}

export class PgRelay {
  private readonly c2u: Direction;
  private readonly u2c: Direction;
  private ended: RelayEndReason | undefined;
  private closedSockets = 0;
  /** Client messages forwarded since the upstream's last ReadyForQuery. */
  private clientPending = true;
  /**
   * Sync points the client sent (Query, Sync, FunctionCall: each answered by one ReadyForQuery)
   * not answered yet, oldest first. With pipelining the first ReadyForQuery does not make the
   * session idle while later ones are still due.
   */
  private readonly awaitingReady: number[] = [];
  /** The upstream is in COPY FROM STDIN and the client has not ended it: it ignores Sync then. */
  private copyIn = false;
  /** Type of the last message header from the upstream. */
  private lastFromUpstream = 0;
  transactionStatus: TransactionStatusByte = TransactionStatus.idle;
  /** An end requested while the session was busy, carried out at the next idle point. */
  private endWhenIdle: ErrorSpec | undefined;
  /** Messages for the client waiting for the server→client stream to reach a message boundary. */
  private readonly injections: Buffer[] = [];
  /** Reading is paused from outside (pauseReading), e.g. while the recording thread catches up. */
  private readingPaused = false;
  /** Reading from the client is held from outside (holdClient) until releaseClient. */
  private clientHeld = false;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    clientHandler: DirectionHandler,
    serverHandler: DirectionHandler,
    private readonly opts: RelayOptions,
  ) {
    this.c2u = new Direction(
      'client',
      client,
      upstream,
      clientHandler,
      opts.maxMessageBytes,
      opts.allowance,
      (code) => {
        this.clientPending = true;
        if (code === Frontend.terminate) this.ended ??= { kind: 'client-terminate' };
      },
      (code) => this.clientHeader(code),
      () => this.readingPaused || this.clientHeld,
    );
    this.u2c = new Direction(
      'upstream',
      upstream,
      client,
      serverHandler,
      opts.maxMessageBytes,
      opts.allowance,
      (code, buf, start) => {
        if (code === Backend.readyForQuery) {
          this.transactionStatus = buf[start + 5] as TransactionStatusByte;
          this.clientPending = false;
          this.awaitingReady.shift();
        }
      },
      (code) => {
        this.lastFromUpstream = code;
        if (code !== Backend.copyInResponse) return;
        // PostgreSQL ignores Sync during COPY FROM STDIN (libpq sends one right after an
        // extended-protocol COPY): those queued after the COPY will get no ReadyForQuery.
        this.copyIn = true;
        while (this.awaitingReady[0] === Frontend.sync) this.awaitingReady.shift();
      },
      () => this.readingPaused,
    );
  }

  private clientHeader(code: number): void {
    switch (code) {
      case Frontend.query:
      case Frontend.functionCall:
        this.awaitingReady.push(code);
        break;
      case Frontend.sync:
        if (!this.copyIn) this.awaitingReady.push(code);
        break;
      case Frontend.copyDone:
      case Frontend.copyFail:
        this.copyIn = false;
        break;
    }
  }

  /** warden sent a Query of its own upstream (not in place of a client's): its ReadyForQuery is due too. */
  expectReady(): void {
    this.awaitingReady.push(Frontend.query);
  }

  /** Sync points sent (Query, Sync, FunctionCall, warden's own Query) whose ReadyForQuery has not come yet. */
  get readyDue(): number {
    return this.awaitingReady.length;
  }

  /** True when the upstream is waiting for the client (ReadyForQuery seen, nothing sent since). */
  get idle(): boolean {
    return !this.clientPending && this.awaitingReady.length === 0 && this.c2u.scanner.atBoundary && !this.c2u.suspended && !this.u2c.suspended;
  }

  start(initialStatus: TransactionStatusByte): void {
    this.transactionStatus = initialStatus;
    this.clientPending = false;
    const c = this.client;
    const u = this.upstream;
    c.on('data', (chunk: Buffer) => this.onData(this.c2u, chunk));
    u.on('data', (chunk: Buffer) => this.onData(this.u2c, chunk));
    c.on('end', () => this.clientGone());
    c.on('close', () => this.socketClosed('client'));
    c.on('error', () => this.clientGone());
    u.on('end', () => this.upstreamGone());
    u.on('close', () => this.socketClosed('upstream'));
    u.on('error', () => this.upstreamGone());
    c.on('drain', () => this.u2c.drained());
    u.on('drain', () => this.c2u.drained());
    c.resume();
    u.resume();
  }

  private onData(d: Direction, chunk: Buffer): void {
    // After the client's Terminate the server still answers what came before it (a client may
    // send its last statements and Terminate in one write): that is relayed until the server closes.
    if (this.ended && this.ended.kind !== 'client-terminate') return;
    this.opts.onBytes?.(d === this.c2u ? 'client_to_upstream' : 'upstream_to_client', chunk.length);
    this.opts.onChunk?.(d === this.c2u, chunk);
    // Any client bytes (streamed messages included, not only whole ones) mean the session is busy
    // until the upstream's next ReadyForQuery.
    if (d === this.c2u) this.clientPending = true;
    try {
      d.scanner.push(chunk);
    } catch (err) {
      d.batch.clear();
      this.protocolError(d.side, err);
      return;
    }
    this.afterProcessing(d);
  }

  /** Flushes a direction after processing, and waits out a suspension if one began. */
  private afterProcessing(d: Direction): void {
    if (d === this.u2c) this.injectAtBoundary();
    d.flush();
    const pending = d.scanner.suspended;
    if (pending) {
      d.src.pause();
      pending.then(
        () => this.resumeDirection(d),
        (err: unknown) => {
          d.batch.clear();
          this.opts.onHandlerError?.(d.side, err);
          this.finish(
            { kind: 'terminated', reason: `internal error: ${err instanceof Error ? err.message : String(err)}` },
            { severity: 'FATAL', code: SqlState.internalError, message: 'internal error in warden; the session was closed' },
          );
        },
      );
      return;
    }
    if (d === this.c2u && this.ended?.kind === 'client-terminate') this.upstream.end();
    if (d === this.u2c && this.idle) {
      if (this.endWhenIdle) {
        this.terminate(this.endWhenIdle);
        return;
      }
      this.opts.onIdle?.();
    }
  }

  private resumeDirection(d: Direction): void {
    if (this.ended && this.ended.kind !== 'client-terminate') return;
    try {
      d.scanner.resume();
    } catch (err) {
      d.batch.clear();
      this.protocolError(d.side, err);
      return;
    }
    this.afterProcessing(d);
    if (!d.suspended && !d.backpressured && !this.ended && !this.readingPaused && !(d === this.c2u && this.clientHeld)) d.src.resume();
  }

  /**
   * Puts other handlers in place, between messages of an idle session (see `idle`): used when a
   * session recorded on the recording thread must go on with the statement flow.
   */
  replaceHandlers(client: DirectionHandler, server: DirectionHandler): void {
    if (!this.idle) throw new Error('handlers are replaced only while the session is idle');
    this.c2u.handler = client;
    this.u2c.handler = server;
  }

  /**
   * Stops reading both sockets until resumeReading (what is being processed finishes first).
   * Backpressure and suspensions keep their own pauses: resumeReading resumes only a direction
   * that nothing else holds.
   */
  pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    this.client.pause();
    this.upstream.pause();
  }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    if (this.ended && this.ended.kind !== 'client-terminate') return;
    for (const d of [this.c2u, this.u2c]) if (!d.suspended && !d.backpressured && !(d === this.c2u && this.clientHeld)) d.src.resume();
  }

  /**
   * Stops reading the client (the server's answers still come through) until releaseClient: what
   * the client sends meanwhile waits in its socket. Used when the recording thread fails while
   * the session is busy: nothing sent after the failure may reach the server before the session
   * is handed to a flow that refuses it.
   */
  holdClient(): void {
    if (this.clientHeld) return;
    this.clientHeld = true;
    this.client.pause();
  }

  releaseClient(): void {
    if (!this.clientHeld) return;
    this.clientHeld = false;
    if (this.ended && this.ended.kind !== 'client-terminate') return;
    if (!this.readingPaused && !this.c2u.suspended && !this.c2u.backpressured) this.client.resume();
  }

  /**
   * Sends a message warden made (a notice, an error) to the client as soon as the server→client
   * stream is between messages, so it never lands inside a message being relayed.
   */
  injectToClient(msg: Buffer): void {
    this.injections.push(msg);
    if (this.u2c.scanner.atBoundary) {
      this.injectAtBoundary();
      this.u2c.flush();
    }
  }

  private injectAtBoundary(): void {
    if (this.injections.length === 0 || !this.u2c.scanner.atBoundary) return;
    for (const m of this.injections) this.u2c.batch.push(m);
    this.injections.length = 0;
  }

  // endings -------------------------------------------------------------------------------------
  private protocolError(side: 'client' | 'upstream', err: unknown): void {
    const message = err instanceof ProtocolError ? err.message : String(err);
    if (err instanceof AllowanceExceededError) {
      // Not the peer's fault: every session together holds what warden allows for messages being read.
      this.finish({ kind: 'protocol-error', side, message }, { severity: 'FATAL', code: SqlState.outOfMemory, message: `out of memory: ${message}` });
      return;
    }
    this.finish(
      { kind: 'protocol-error', side, message },
      side === 'client'
        ? { severity: 'FATAL', code: SqlState.protocolViolation, message: `invalid frontend message: ${message}` }
        : { severity: 'FATAL', code: SqlState.connectionFailure, message: 'the target sent an invalid message; the session was closed' },
    );
  }

  private clientGone(): void {
    if (this.ended) {
      this.upstream.end();
      return;
    }
    this.ended = { kind: 'client-disconnect' };
    // Let the upstream end the session cleanly when it waits for the client. In the middle of a
    // response it may be blocked writing to warden, which reads no more once the client is gone
    // (it would never read the Terminate): cut the connection, as a vanished client's does.
    if (this.idle) this.upstream.end(TERMINATE);
    else this.upstream.destroy();
    this.client.destroy();
  }

  private upstreamGone(): void {
    if (this.ended) {
      this.client.end();
      return;
    }
    // A server that closes right after an ErrorResponse has said why (FATAL: terminated by an
    // administrator, idle timeout, shutdown …): pass the close on as a direct connection sees it.
    const explained = this.lastFromUpstream === Backend.errorResponse && this.u2c.scanner.atBoundary;
    this.finish(
      { kind: 'upstream-disconnect' },
      explained ? undefined : { severity: 'FATAL', code: SqlState.connectionFailure, message: 'the connection to the target was lost' },
    );
  }

  private socketClosed(side: 'client' | 'upstream'): void {
    this.closedSockets++;
    if (side === 'client' && !this.upstream.destroyed && this.ended?.kind !== 'client-terminate') this.clientGone();
    if (side === 'upstream' && !this.client.destroyed) this.upstreamGone();
    if (this.closedSockets === 2) {
      // A message cut off mid-way gives back what it held of the sessions' allowance.
      this.c2u.scanner.release();
      this.u2c.scanner.release();
      this.opts.onEnd(this.ended ?? { kind: 'client-disconnect' });
    }
  }

  /** Why the session ended, once it has. */
  get endReason(): RelayEndReason | undefined {
    return this.ended;
  }

  /**
   * Ends the session with a FATAL error to the client, as soon as that can be done without
   * cutting a message in half. `whenIdle` waits for the next idle point (token expiry, shutdown).
   */
  terminate(error: ErrorSpec, whenIdle = false): void {
    if (this.ended) return;
    if (whenIdle && !this.idle) {
      this.endWhenIdle = error;
      return;
    }
    this.finish({ kind: 'terminated', reason: error.message }, error);
  }

  /** Closes both sides; the client gets `error` when the stream to it is between messages. */
  private finish(reason: RelayEndReason, error: ErrorSpec | undefined): void {
    if (this.ended) return;
    this.ended = reason;
    if (error && this.u2c.scanner.atBoundary && !this.client.destroyed) {
      this.client.end(encodeErrorResponse(error));
    } else if (!error && this.u2c.scanner.atBoundary) {
      this.client.end(); // what was relayed is whole; let it drain
    } else {
      this.client.destroy();
    }
    if (!this.upstream.destroyed) {
      if (this.c2u.scanner.atBoundary && reason.kind !== 'upstream-disconnect') this.upstream.end(TERMINATE);
      else this.upstream.destroy();
    }
    // A client that does not close its side within a moment is cut off.
    setTimeout(() => {
      this.client.destroy();
      this.upstream.destroy();
    }, 2000).unref();
  }

  /** Immediately closes both sockets (shutdown after the grace period). */
  destroy(reason: string): void {
    this.ended ??= { kind: 'terminated', reason };
    this.client.destroy();
    this.upstream.destroy();
  }
}
