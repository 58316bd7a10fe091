// The lowest floor a Node.js relay stands on, for comparison only (warden does not use this): bytes
// go from one libuv TCP handle to the other with no stream layer (no Readable/Writable, no
// 'data' events, no per-write nextTick), each read written at once from one reused buffer. It
// reaches the handles through process.binding('stream_wrap'), an internal and deprecated API:
// fine for a measurement, not for a product. The bare socket.pipe relay (pipe-relay.ts) is the
// floor with Node's public API.
//   PIPE_TARGET=host:port node dist/bench/raw-relay.js   → prints {"port": N}
import net from 'node:net';

interface StreamHandle {
  onread: (arrayBuffer: ArrayBuffer | undefined) => void;
  useUserBuffer(buf: Buffer): void;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, buf: Buffer): number;
}
interface WriteReq {
  handle: StreamHandle;
  oncomplete: () => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | null;
}
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

process.noDeprecation = true;
const sw = (process as unknown as { binding(name: string): StreamWrapBinding }).binding('stream_wrap');
const [host, port] = (process.env.PIPE_TARGET ?? '127.0.0.1:5432').split(':');
const noop = (): void => {};

function wire(from: StreamHandle, to: StreamHandle, kill: () => void): void {
  const buf = Buffer.allocUnsafeSlow(65536);
  from.useUserBuffer(buf);
  from.onread = () => {
    const n = sw.streamBaseState[sw.kReadBytesOrError] as number;
    if (n < 0) return kill();
    const req = new sw.WriteWrap();
    req.handle = to;
    req.oncomplete = noop;
    req.async = false;
    req.bytes = n;
    req.buffer = null;
    if (to.writeBuffer(req, buf.subarray(0, n)) !== 0) return kill();
    if (sw.streamBaseState[sw.kLastWriteWasAsync]) {
      // Not written at once: libuv still points at the buffer, so read nothing more into it until
      // the write is done (backpressure, as pipe() does).
      req.buffer = buf;
      from.readStop();
      req.oncomplete = () => void from.readStart();
    }
  };
}

const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (client) => {
  const upstream = net.connect({ host, port: Number(port), noDelay: true }, () => {
    upstream.pause();
    const c = (client as unknown as { _handle: StreamHandle })._handle;
    const u = (upstream as unknown as { _handle: StreamHandle })._handle;
    u.readStop();
    wire(c, u, kill);
    wire(u, c, kill);
    c.readStart();
    u.readStart();
  });
  const kill = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', kill);
  upstream.on('error', kill);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port, pid: process.pid })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
