// Reads whole PostgreSQL messages from a socket during the login phases (client and upstream),
// one at a time, with a deadline. The relay phase does not use it: it frames with MessageScanner
// directly so it never buffers more than it must.
import type { Socket } from 'node:net';
import { MessageScanner } from '../../protocols/postgres/scanner.js';

export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

export class MessageReader {
  private readonly queue: Buffer[] = [];
  private waiter: { resolve: (m: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly scanner: MessageScanner;
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.scanner.push(chunk);
    } catch (err) {
      this.fail(err as Error);
    }
  };
  private readonly onEnd = (): void => this.fail(new ConnectionClosedError('connection closed'));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(
    private readonly socket: Socket,
    maxLength: number,
  ) {
    this.scanner = new MessageScanner(
      {
        whole: () => true,
        onMessage: (_c, buf, s, e) => this.deliver(s === 0 && e === buf.length ? buf : Buffer.from(buf.subarray(s, e))),
        onBytes: () => undefined,
      },
      maxLength,
    );
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  private deliver(msg: Buffer): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(msg);
    } else {
      this.queue.push(msg);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }

  /** The next whole message (type byte included). Rejects on close, error, malformed frame, or deadline. */
  next(deadline: number): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const ms = Math.max(0, deadline - Date.now());
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new DeadlineError('timed out'));
      }, ms);
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

  /** Feeds bytes that were read from the socket before this reader existed. */
  seed(bytes: Buffer): void {
    if (bytes.length) this.onData(bytes);
  }

  /** Stops reading (the socket is paused); true when nothing was left unread (no queued or partial message). */
  detach(): boolean {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    return this.queue.length === 0 && this.scanner.atBoundary;
  }
}
