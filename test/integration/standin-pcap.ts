// A recording TCP proxy and a classic-pcap writer, so that tshark can read the bytes of real
// stand-in sessions without capturing on an interface.

import { writeFileSync } from 'node:fs';
import net from 'node:net';

export interface RecordedChunk {
  readonly fromClient: boolean;
  readonly data: Buffer;
}

export interface RecordingProxy {
  readonly port: number;
  readonly connections: RecordedChunk[][];
  close(): Promise<void>;
}

/** A TCP proxy to `target` that keeps every chunk of every connection, in order. */
export async function recordingProxy(target: number): Promise<RecordingProxy> {
  const connections: RecordedChunk[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const log: RecordedChunk[] = [];
    connections.push(log);
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (d: Buffer) => {
      log.push({ fromClient: true, data: Buffer.from(d) });
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      log.push({ fromClient: false, data: Buffer.from(d) });
      client.write(d);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const MAX_SEGMENT = 16_000;

/**
 * Writes the recorded connections as a classic pcap (Ethernet, IPv4 127.0.0.1, TCP with a
 * handshake and correct sequence numbers; checksums left 0, which tshark does not verify by
 * default). Each connection gets client port 40000+i; the server port is `serverPort`.
 */
export function writePcap(path: string, connections: readonly (readonly RecordedChunk[])[], serverPort: number): void {
  const frames: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  frames.push(header);
  let t = 1_700_000_000_000_000; // microseconds
  const frame = (fromClient: boolean, clientPort: number, seq: number, ack: number, flags: number, payload: Buffer): void => {
    const tcp = Buffer.alloc(20);
    tcp.writeUInt16BE(fromClient ? clientPort : serverPort, 0);
    tcp.writeUInt16BE(fromClient ? serverPort : clientPort, 2);
    tcp.writeUInt32BE(seq >>> 0, 4);
    tcp.writeUInt32BE(ack >>> 0, 8);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp.writeUInt16BE(65535, 14);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 20 + payload.length, 2);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from([127, 0, 0, 1]).copy(ip, 12);
    Buffer.from([127, 0, 0, 1]).copy(ip, 16);
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    const packet = Buffer.concat([eth, ip, tcp, payload]);
    const rec = Buffer.alloc(16);
    t += 100;
    rec.writeUInt32LE(Math.floor(t / 1_000_000), 0);
    rec.writeUInt32LE(t % 1_000_000, 4);
    rec.writeUInt32LE(packet.length, 8);
    rec.writeUInt32LE(packet.length, 12);
    frames.push(rec, packet);
  };
  const SYN = 0x02;
  const ACK = 0x10;
  const PSH = 0x08;
  const FIN = 0x01;
  connections.forEach((chunks, i) => {
    const port = 40000 + i;
    let cseq = 1000;
    let sseq = 5000;
    frame(true, port, cseq, 0, SYN, Buffer.alloc(0));
    frame(false, port, sseq, cseq + 1, SYN | ACK, Buffer.alloc(0));
    cseq++;
    sseq++;
    frame(true, port, cseq, sseq, ACK, Buffer.alloc(0));
    for (const c of chunks) {
      for (let off = 0; off < c.data.length; off += MAX_SEGMENT) {
        const part = c.data.subarray(off, off + MAX_SEGMENT);
        if (c.fromClient) {
          frame(true, port, cseq, sseq, ACK | PSH, part);
          cseq += part.length;
        } else {
          frame(false, port, sseq, cseq, ACK | PSH, part);
          sseq += part.length;
        }
      }
    }
    frame(true, port, cseq, sseq, FIN | ACK, Buffer.alloc(0));
    frame(false, port, sseq, cseq + 1, FIN | ACK, Buffer.alloc(0));
  });
  writeFileSync(path, Buffer.concat(frames));
}

