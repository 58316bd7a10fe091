// The floor any Node.js pass-through proxy stands on: a bare socket.pipe() relay with no
// protocol awareness. Benchmarks run it beside warden so the cost of warden's own work shows.
//   PIPE_TARGET=host:port node dist/bench/pipe-relay.js   → prints {"port": N}
import net from 'node:net';

const [host, port] = (process.env.PIPE_TARGET ?? '127.0.0.1:5432').split(':');
const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ host, port: Number(port), noDelay: true });
  client.pipe(upstream).pipe(client);
  const kill = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', kill);
  upstream.on('error', kill);
  client.on('close', kill);
  upstream.on('close', kill);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port, pid: process.pid })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
