// Reads whole TDS messages from a socket during the login phases (client and upstream), one at a
// time, with a deadline. The relay does not use it: it frames packets itself so that nothing
// waits for a whole message unless it must.
import type { Duplex } from 'node:stream';
import { MessageAssembler, type Message } from '../../protocols/tds/index.js';

export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

export class TdsMessageReader {
  readonly assembler: MessageAssembler;
  private readonly queue: Message[] = [];
  private waiter: { resolve: (m: Message) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private detached = false;
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.assembler.push(chunk);
      for (let m = this.assembler.nextMessage(); m; m = this.assembler.nextMessage()) this.deliver(m);
    } catch (err) {
      this.fail(err as Error);
    }
  };
  private readonly onEnd = (): void => this.fail(new ConnectionClosedError('connection closed'));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(
    private readonly socket: Duplex,
    opts: { packetSize: number; maxMessageSize: number },
  ) {
    this.assembler = new MessageAssembler({ packetSize: opts.packetSize, maxMessageSize: opts.maxMessageSize });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  private deliver(m: Message): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(m);
    } else {
      this.queue.push(m);
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

  /** The next whole message. Rejects on close, error, malformed packets, or the deadline. */
  next(deadline: number): Promise<Message> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
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
   * Stops reading and pauses the socket. Returns false when bytes beyond the messages read were
   * received (the peer sent more than the protocol allows at this point).
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
    return this.queue.length === 0 && this.assembler.buffered === 0 && !this.assembler.inMessage;
  }
}
