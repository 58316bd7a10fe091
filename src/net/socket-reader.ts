// Reads whole protocol messages from a socket during a login phase, one at a time, with a
// deadline. The protocol supplies the framer (PostgreSQL's MessageScanner, TDS's
// MessageAssembler); the relays do not use this: they frame as bytes stream through.
import type { Duplex } from 'node:stream';

export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

export interface Framer<M> {
  /** Frames the whole messages `chunk` completes, in order; throws on malformed input. */
  push(chunk: Buffer, deliver: (message: M) => void): void;
  /** True when no partial message is buffered. */
  readonly atBoundary: boolean;
}

export class SocketMessageReader<M> {
  private readonly queue: M[] = [];
  private waiter: { resolve: (m: M) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private detached = false;
  private readonly deliver = (m: M): void => {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(m);
    } else {
      this.queue.push(m);
    }
  };
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.framer.push(chunk, this.deliver);
    } catch (err) {
      this.fail(err as Error);
    }
  };
  private readonly onEnd = (): void => this.fail(new ConnectionClosedError('connection closed'));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(
    private readonly socket: Duplex,
    private readonly framer: Framer<M>,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }

  /** Feeds bytes that were read from the socket before this reader existed. */
  seed(bytes: Buffer): void {
    if (bytes.length) this.onData(bytes);
  }

  /** The next whole message. Rejects on close, error, malformed input, or the deadline. */
  next(deadline: number): Promise<M> {
    if (this.queue.length) return Promise.resolve(this.queue.shift() as M);
    if (this.failure) return Promise.reject(this.failure);
    if (this.detached) return Promise.reject(new Error('reader detached'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new DeadlineError('timed out'));
      }, Math.max(0, deadline - Date.now()));
      this.waiter = {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /**
   * Stops reading and pauses the socket. False when bytes beyond the messages read were received
   * (the peer sent more than the protocol allows at this point).
   */
  detach(): boolean {
    if (!this.detached) {
      this.detached = true;
      this.socket.pause();
      this.socket.off('data', this.onData);
      this.socket.off('end', this.onEnd);
      this.socket.off('close', this.onEnd);
      this.socket.off('error', this.onError);
    }
    return this.queue.length === 0 && this.framer.atBoundary;
  }
}
