// The relay's side of a held request, over loopback socket pairs with a scripted handler and a
// scripted target: warden's start of the response goes out at once without EOM; the rest of the
// message continues its packet ids (warden's answer or the target's packets); ATTENTION while held
// is not sent to the target unless the request is let through anyway, and is acknowledged after the
// response; requests the client sends while one is held wait their turn.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DONE_STATUS,
  decodeTokens,
  encodeSqlBatch,
  encodeTokens,
  MessageAssembler,
  packetize,
  PACKET_STATUS,
  PACKET_TYPE,
  TDS_VERSION,
  transactionHeaders,
  type Packet,
  type Token,
} from '../../protocols/tds/index.js';
import { errorMessage, messageStart, notice } from '../../src/tds/errors.js';
import { TdsRelay, type RequestOutcome, type TdsFlowHandler, type TdsRequest } from '../../src/tds/relay.js';

const tdsVersion = TDS_VERSION.V7_4;
const opts = { tdsVersion, packetSize: 512, spid: 51 };

/** Two connected loopback sockets. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = net.connect(port, '127.0.0.1');
  const b = await accepted;
  server.close();
  await new Promise((r) => a.once('connect', r));
  return [a, b];
}

/** Reads packets from a socket as they come. */
function reader(s: net.Socket): { packets: Packet[]; wait(n: number): Promise<Packet[]> } {
  const packets: Packet[] = [];
  const a = new MessageAssembler({ packetSize: 32767 });
  s.on('data', (chunk: Buffer) => {
    a.push(chunk);
    for (let p = a.nextPacket(); p; p = a.nextPacket()) packets.push(p);
  });
  return {
    packets,
    wait: async (n) => {
      for (let i = 0; i < 200 && packets.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      return packets.slice(0, n);
    },
  };
}

const tokensOf = (ps: Packet[]): Token[] => decodeTokens(Buffer.concat(ps.map((p) => p.payload)), { tdsVersion });
const batch = (sql: string): Buffer => packetize(PACKET_TYPE.SQL_BATCH, encodeSqlBatch({ sql, headers: transactionHeaders() }, { tdsVersion }), 4096);
const ATTENTION = Buffer.from([PACKET_TYPE.ATTENTION, 0x01, 0x00, 0x08, 0, 0, 1, 0]);
const header = (p: Packet): [number, number] => [p.header.packetId, p.header.status & PACKET_STATUS.EOM];

const open: net.Socket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
});

/** A relay whose handler holds every request until `decide` is called with what to do. */
async function heldRelay(): Promise<{
  client: net.Socket;
  target: net.Socket;
  fromRelay: ReturnType<typeof reader>;
  atTarget: ReturnType<typeof reader>;
  requests: string[];
  attentions: number;
  decide(how: (out: RequestOutcome) => void): void;
}> {
  const [client, relayClientSide] = await socketPair();
  const [relayTargetSide, target] = await socketPair();
  open.push(client, relayClientSide, relayTargetSide, target);
  const waiting: ((how: (out: RequestOutcome) => void) => void)[] = [];
  const state = { requests: [] as string[], attentions: 0 };
  const handler: TdsFlowHandler = {
    onRequest(req: TdsRequest, out: RequestOutcome) {
      state.requests.push(req.payload.toString('utf16le'));
      out.begin(messageStart([notice('held')], opts));
      return new Promise<void>((resolve) => waiting.push((how) => {
        how(out);
        resolve();
      }));
    },
    onAttention: () => void state.attentions++,
    bulkLoadAllowed: () => false,
    onToken: () => undefined,
    rewriting: () => false,
    onResponseEnd: () => undefined,
  };
  const relay = new TdsRelay(relayClientSide, relayTargetSide, handler, { ...opts, maxRequestBytes: 1 << 20, maxTokenBytes: 1 << 20, onEnd: () => undefined });
  relay.start();
  return {
    client,
    target,
    fromRelay: reader(client),
    atTarget: reader(target),
    get requests() {
      return state.requests;
    },
    get attentions() {
      return state.attentions;
    },
    decide: (how) => waiting.shift()!(how),
  };
}

describe('a held request in the relay', () => {
  it('sends the INFO at once without EOM; warden\'s answer continues the message with the next packet ids', async () => {
    const r = await heldRelay();
    r.client.write(batch('SELECT 1'));
    const [first] = await r.fromRelay.wait(1);
    expect(header(first!)).toEqual([1, 0]);
    expect(tokensOf([first!])).toEqual([expect.objectContaining({ kind: 'INFO', message: 'held' })]);
    // A long refusal: several packets of 512 bytes, numbered on from 2.
    r.decide((out) => out.respond(errorMessage([{ number: 229, class: 14, message: 'x'.repeat(600) }], opts)));
    const all = await r.fromRelay.wait(4);
    expect(all.map(header)).toEqual([[1, 0], [2, 0], [3, 0], [4, 1]]);
    expect(tokensOf(all).map((t) => t.kind)).toEqual(['INFO', 'ERROR', 'DONE']);
    expect(r.atTarget.packets).toEqual([]);
  });

  it('lets the target\'s response continue the message: its packets are renumbered after warden\'s', async () => {
    const r = await heldRelay();
    r.client.write(batch('SELECT 1'));
    await r.fromRelay.wait(1);
    r.decide((out) => out.forward());
    await r.atTarget.wait(1);
    // The target answers in two packets numbered from 1, as servers do.
    const rows: Token[] = [{ kind: 'DONE', status: DONE_STATUS.COUNT, curCmd: 0xc1, rowCount: 1n }];
    const payload = Buffer.concat([encodeTokens([{ kind: 'INFO', number: 1, state: 1, class: 0, message: 'y'.repeat(400), serverName: 's', procName: '', lineNumber: 1 }], { tdsVersion }), encodeTokens(rows, { tdsVersion })]);
    r.target.write(packetize(PACKET_TYPE.TABULAR_RESULT, payload, 512, 51));
    const all = await r.fromRelay.wait(3);
    expect(all.map(header)).toEqual([[1, 0], [2, 0], [3, 1]]);
    expect(tokensOf(all).map((t) => t.kind)).toEqual(['INFO', 'INFO', 'DONE']);
  });

  it('acknowledges an ATTENTION while held itself, after the response, without troubling the target', async () => {
    const r = await heldRelay();
    r.client.write(batch('SELECT 1'));
    await r.fromRelay.wait(1);
    r.client.write(ATTENTION);
    for (let i = 0; i < 100 && r.attentions === 0; i++) await new Promise((res) => setTimeout(res, 10));
    expect(r.attentions).toBe(1);
    r.decide((out) => out.respond(errorMessage([{ number: 229, class: 14, message: 'withdrawn' }], opts)));
    const all = await r.fromRelay.wait(3);
    expect(all.map(header)).toEqual([[1, 0], [2, 1], [1, 1]]);
    expect(tokensOf(all.slice(2))).toEqual([expect.objectContaining({ kind: 'DONE', status: DONE_STATUS.ATTN })]);
    expect(r.atTarget.packets).toEqual([]);
  });

  it('sends the ATTENTION on to the target when the request is let through anyway', async () => {
    const r = await heldRelay();
    r.client.write(batch('SELECT 1'));
    await r.fromRelay.wait(1);
    r.client.write(ATTENTION);
    for (let i = 0; i < 100 && r.attentions === 0; i++) await new Promise((res) => setTimeout(res, 10));
    r.decide((out) => out.forward());
    const at = await r.atTarget.wait(2);
    expect(at.map((p) => p.header.type)).toEqual([PACKET_TYPE.SQL_BATCH, PACKET_TYPE.ATTENTION]);
  });

  it('keeps a request sent while another is held until the first is decided', async () => {
    const r = await heldRelay();
    r.client.write(batch('SELECT 1'));
    await r.fromRelay.wait(1);
    r.client.write(batch('SELECT 2'));
    await new Promise((res) => setTimeout(res, 100));
    expect(r.requests).toHaveLength(1);
    r.decide((out) => out.respond(errorMessage([{ number: 229, class: 14, message: 'no' }], opts)));
    for (let i = 0; i < 100 && r.requests.length < 2; i++) await new Promise((res) => setTimeout(res, 10));
    expect(r.requests).toHaveLength(2);
    expect(r.requests[1]).toContain('SELECT 2');
  });
});
