// Whole TDS messages from a socket during the login phases (client and upstream), one at a time,
// with a deadline. The relay does not use it: it frames packets itself so that nothing waits for a
// whole message unless it must.
import type { Duplex } from 'node:stream';
import { MessageAssembler, type Message } from '../../protocols/tds/index.js';
import { SocketMessageReader, type Framer } from '../net/socket-reader.js';

export { ConnectionClosedError, DeadlineError } from '../net/socket-reader.js';

function tdsFramer(assembler: MessageAssembler): Framer<Message> {
  return {
    push(chunk, deliver) {
      assembler.push(chunk);
      for (let m = assembler.nextMessage(); m; m = assembler.nextMessage()) deliver(m);
    },
    get atBoundary() {
      return assembler.buffered === 0 && !assembler.inMessage;
    },
  };
}

export class TdsMessageReader extends SocketMessageReader<Message> {
  constructor(socket: Duplex, opts: { packetSize: number; maxMessageSize: number }) {
    super(socket, tdsFramer(new MessageAssembler({ packetSize: opts.packetSize, maxMessageSize: opts.maxMessageSize })));
  }
}
