// Whole PostgreSQL messages from a socket during the login phases (client and upstream).
import type { Socket } from 'node:net';
import { MessageScanner } from '../../protocols/postgres/scanner.js';
import { SocketMessageReader, type Framer } from '../net/socket-reader.js';

export { ConnectionClosedError, DeadlineError } from '../net/socket-reader.js';

function pgFramer(maxLength: number): Framer<Buffer> {
  let deliver: (m: Buffer) => void = () => undefined;
  const scanner = new MessageScanner(
    {
      whole: () => true,
      onMessage: (_c, buf, s, e) => deliver(s === 0 && e === buf.length ? buf : Buffer.from(buf.subarray(s, e))),
      onBytes: () => undefined,
    },
    maxLength,
  );
  return {
    push(chunk, to) {
      deliver = to;
      scanner.push(chunk);
    },
    get atBoundary() {
      return scanner.atBoundary;
    },
  };
}

/** Each message is a Buffer holding the type byte, the length and the body. */
export class MessageReader extends SocketMessageReader<Buffer> {
  constructor(socket: Socket, maxMessageBytes: number) {
    super(socket, pgFramer(maxMessageBytes));
  }
}
