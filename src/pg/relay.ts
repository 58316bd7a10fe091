// The steady state of a PostgreSQL session: bytes flow both ways through MessageScanners.
// Messages nobody needs to look at stream through untouched as slices of the chunk they came in
// (one write per chunk, no copies); the few that matter are seen whole. Each direction applies
// backpressure: when one socket's write buffer is full, the other socket stops being read, so
// memory stays flat whatever the result size.
import type { Socket } from 'node:net';
import { Backend, Frontend, TransactionStatus, type TransactionStatusByte } from '../../protocols/postgres/codes.js';
import { encodeErrorResponse, type ErrorSpec } from '../../protocols/postgres/error-response.js';
import { TERMINATE } from '../../protocols/postgres/frontend-messages.js';
import { MessageScanner, type ScanHandler } from '../../protocols/postgres/scanner.js';
import { ProtocolError } from '../../protocols/errors.js';
import { OutputBatch } from './output-batch.js';
import { SqlState } from './sqlstate.js';

export type RelayEndReason =
  | { kind: 'client-terminate' }
  | { kind: 'client-disconnect' }
  | { kind: 'upstream-disconnect' }
  | { kind: 'protocol-error'; side: 'client' | 'upstream'; message: string }
  | { kind: 'terminated'; reason: string };

export interface RelayOptions {
  maxMessageBytes: number;
  /** Called once when both sockets are closed. */
  onEnd(reason: RelayEndReason): void;
  /** Per-message observation hooks (metrics); must be cheap. */
  onClientMessage?(code: number): void;
  onBytes?(direction: 'client_to_upstream' | 'upstream_to_client', n: number): void;
  /** Called whenever the upstream reports ReadyForQuery and nothing from the client is pending. */
  onIdle?(): void;
}

export class PgRelay {
  private readonly toUpstream = new OutputBatch();
  private readonly toClient = new OutputBatch();
  private readonly fromClient: MessageScanner;
  private readonly fromUpstream: MessageScanner;
  private ended: RelayEndReason | undefined;
  private closedSockets = 0;
  private clientPausedForUpstream = false;
  private upstreamPausedForClient = false;
  /** Client messages forwarded since the upstream's last ReadyForQuery. */
  private clientPending = true;
  transactionStatus: TransactionStatusByte = TransactionStatus.idle;
  /** An end requested while the session was busy, carried out at the next idle point. */
  private endWhenIdle: ErrorSpec | undefined;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    private readonly opts: RelayOptions,
  ) {
    this.fromClient = new MessageScanner(this.clientHandler(), opts.maxMessageBytes);
    this.fromUpstream = new MessageScanner(this.upstreamHandler(), opts.maxMessageBytes);
  }

  /** True when the upstream is waiting for the client (ReadyForQuery seen, nothing sent since). */
  get idle(): boolean {
    return !this.clientPending && this.fromClient.atBoundary;
  }

  start(initialStatus: TransactionStatusByte): void {
    this.transactionStatus = initialStatus;
    this.clientPending = false;
    const c = this.client;
    const u = this.upstream;
    c.on('data', (chunk: Buffer) => this.onClientData(chunk));
    u.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    c.on('end', () => this.clientGone());
    c.on('close', () => this.socketClosed('client'));
    c.on('error', () => this.clientGone());
    u.on('end', () => this.upstreamGone());
    u.on('close', () => this.socketClosed('upstream'));
    u.on('error', () => this.upstreamGone());
    c.on('drain', () => {
      if (this.upstreamPausedForClient) {
        this.upstreamPausedForClient = false;
        u.resume();
      }
    });
    u.on('drain', () => {
      if (this.clientPausedForUpstream) {
        this.clientPausedForUpstream = false;
        c.resume();
      }
    });
    c.resume();
    u.resume();
  }

  // client → upstream ---------------------------------------------------------------------------
  private clientHandler(): ScanHandler {
    return {
      whole: (code) => {
        this.opts.onClientMessage?.(code);
        return code === Frontend.terminate;
      },
      onMessage: (code, buf, start, end) => {
        if (code === Frontend.terminate) {
          this.ended ??= { kind: 'client-terminate' };
        }
        this.clientPending = true;
        this.toUpstream.add(buf, start, end);
      },
      onBytes: (buf, start, end) => {
        this.clientPending = true;
        this.toUpstream.add(buf, start, end);
      },
    };
  }

  private onClientData(chunk: Buffer): void {
    if (this.ended && this.ended.kind !== 'client-terminate') return;
    this.opts.onBytes?.('client_to_upstream', chunk.length);
    try {
      this.fromClient.push(chunk);
    } catch (err) {
      this.toUpstream.clear();
      this.protocolError('client', err);
      return;
    }
    if (!this.toUpstream.flush(this.upstream) && !this.clientPausedForUpstream) {
      this.clientPausedForUpstream = true;
      this.client.pause();
    }
    if (this.ended?.kind === 'client-terminate') this.upstream.end();
  }

  // upstream → client ---------------------------------------------------------------------------
  private upstreamHandler(): ScanHandler {
    return {
      whole: (code) => code === Backend.readyForQuery,
      onMessage: (code, buf, start, end) => {
        this.toClient.add(buf, start, end);
        if (code === Backend.readyForQuery) {
          this.transactionStatus = buf[start + 5] as TransactionStatusByte;
          this.clientPending = false;
        }
      },
      onBytes: (buf, start, end) => this.toClient.add(buf, start, end),
    };
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.ended) return;
    this.opts.onBytes?.('upstream_to_client', chunk.length);
    try {
      this.fromUpstream.push(chunk);
    } catch (err) {
      this.toClient.clear();
      this.protocolError('upstream', err);
      return;
    }
    if (!this.toClient.flush(this.client) && !this.upstreamPausedForClient) {
      this.upstreamPausedForClient = true;
      this.upstream.pause();
    }
    if (this.idle) {
      if (this.endWhenIdle) {
        this.terminate(this.endWhenIdle);
        return;
      }
      this.opts.onIdle?.();
    }
  }

  // endings -------------------------------------------------------------------------------------
  private protocolError(side: 'client' | 'upstream', err: unknown): void {
    const message = err instanceof ProtocolError ? err.message : String(err);
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
    // Let the upstream end the session cleanly when we are between messages.
    if (this.fromClient.atBoundary) this.upstream.end(TERMINATE);
    else this.upstream.destroy();
    this.client.destroy();
  }

  private upstreamGone(): void {
    if (this.ended) {
      this.client.end();
      return;
    }
    this.finish(
      { kind: 'upstream-disconnect' },
      { severity: 'FATAL', code: SqlState.connectionFailure, message: 'the connection to the target was lost' },
    );
  }

  private socketClosed(_side: 'client' | 'upstream'): void {
    this.closedSockets++;
    if (_side === 'client' && !this.upstream.destroyed && this.ended?.kind !== 'client-terminate') this.clientGone();
    if (_side === 'upstream' && !this.client.destroyed) this.upstreamGone();
    if (this.closedSockets === 2) this.opts.onEnd(this.ended ?? { kind: 'client-disconnect' });
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
    if (error && this.fromUpstream.atBoundary && !this.client.destroyed) {
      this.client.end(encodeErrorResponse(error));
    } else {
      this.client.destroy();
    }
    if (!this.upstream.destroyed) {
      if (this.fromClient.atBoundary && reason.kind !== 'upstream-disconnect') this.upstream.end(TERMINATE);
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
