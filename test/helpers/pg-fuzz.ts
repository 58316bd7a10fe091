// Fuzzing the PostgreSQL codec, seeded with the captured messages (fixtures/pg/captures): random
// bytes, truncations, bit flips, length and count field mutations, spliced garbage. Every decoder
// of both directions, the startup-packet decoders, the SASL/SCRAM parsers and the MessageScanner
// must either succeed or throw ProtocolError; a successful decode must be stable under
// re-encoding. test/unit/pg-codec-fuzz.test.ts runs these in a child process
// (pg-fuzz-child.ts) so that a hang is caught by a timeout instead of freezing the test runner.
import fc from 'fast-check';
import { allCapturedConnections } from '../../fixtures/pg/captures.js';
import { ProtocolError } from '../../protocols/errors.js';
import { decodeAuthentication, encodeAuthentication } from '../../protocols/postgres/authentication.js';
import {
  copyDataPayload,
  decodeCommandComplete,
  decodeCopyResponse,
  decodeDataRow,
  decodeNotificationResponse,
  decodeParameterDescription,
  decodeRowDescription,
  encodeNotificationResponse,
  encodeCopyResponse,
} from '../../protocols/postgres/backend-messages.js';
import { Backend, Frontend } from '../../protocols/postgres/codes.js';
import { decodeErrorFields, decodeNotice } from '../../protocols/postgres/error-response.js';
import {
  decodeBind,
  decodeClose,
  decodeCopyFail,
  decodeDescribe,
  decodeEmpty,
  decodeExecute,
  decodeParse,
  decodeQuery,
  encodeClose,
  encodeCopyFail,
  FLUSH,
} from '../../protocols/postgres/frontend-messages.js';
import {
  decodePasswordMessage,
  decodeSaslInitialResponse,
  decodeSaslResponse,
  encodePasswordMessage,
  encodeSaslInitialResponse,
  encodeSaslResponse,
} from '../../protocols/postgres/password-message.js';
import { MessageScanner, splitMessages } from '../../protocols/postgres/scanner.js';
import { scramClientFinal, scramVerifyServerFinal, type ScramClient } from '../../protocols/postgres/scram.js';
import { decodeNegotiateProtocolVersion, encodeNegotiateProtocolVersion } from '../../protocols/postgres/session-messages.js';
import { decodeStartupPacket, encodeGssEncRequest, startupPacketLength } from '../../protocols/postgres/startup-message.js';
import { decodeBackend, decodeFrontend, encodeBackend, encodeFrontend, UnknownMessageType } from './pg-codec.js';

// Seeds -------------------------------------------------------------------------------------------

/** Messages the captures lack, so every decoder has a valid seed to mutate. */
function extraSeeds(): { frontend: Buffer[]; backend: Buffer[] } {
  return {
    frontend: [
      encodeClose({ kind: 'statement', name: 'S_1' }),
      encodeClose({ kind: 'portal', name: '' }),
      FLUSH,
      encodeCopyFail('client gave up'),
      encodePasswordMessage('eyJhbGciOiJSUzI1NiJ9.e30.c2ln'),
      encodeSaslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=*,r=rOprNGfwEbeRWgbNEkqO')),
      encodeSaslResponse(Buffer.from('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=')),
    ],
    backend: [
      encodeAuthentication({ type: 'md5-password', salt: Buffer.from('a1b2c3d4', 'hex') }),
      encodeAuthentication({ type: 'cleartext-password' }),
      encodeAuthentication({ type: 'sasl', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] }),
      encodeAuthentication({ type: 'sasl-continue', data: Buffer.from('r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096') }),
      encodeAuthentication({ type: 'sasl-final', data: Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=') }),
      encodeNegotiateProtocolVersion({ newestMinor: 0, unrecognized: ['_pq_.compression'] }),
      encodeNotificationResponse({ processId: 4242, channel: 'orders', payload: '{"id":7}' }),
      encodeCopyResponse(Backend.copyBothResponse, { format: 1, columnFormats: [1, 1] }),
      Buffer.from('7300000004', 'hex'), // PortalSuspended
      Buffer.from('4900000004', 'hex'), // EmptyQueryResponse
      Buffer.from('3300000004', 'hex'), // CloseComplete
    ],
  };
}

export interface Seeds {
  frontend: Buffer[];
  backend: Buffer[];
  startup: Buffer[];
  streams: Buffer[];
}

export function loadSeeds(): Seeds {
  const conns = allCapturedConnections();
  const extra = extraSeeds();
  const uniq = (bufs: Buffer[]): Buffer[] => [...new Map(bufs.map((b) => [b.toString('hex'), b])).values()];
  return {
    frontend: uniq([...conns.flatMap((c) => splitMessages(c.client)), ...extra.frontend]),
    backend: uniq([...conns.flatMap((c) => splitMessages(c.server)), ...extra.backend]),
    startup: uniq([...conns.flatMap((c) => c.startupPackets), encodeGssEncRequest()]),
    streams: conns.flatMap((c) => [c.client, c.server]).filter((s) => s.length > 0),
  };
}

// Mutations ---------------------------------------------------------------------------------------

const INTERESTING_INT32 = [-2147483648, -2, -1, 0, 1, 3, 4, 5, 8, 255, 256, 32767, 32768, 65535, 65536, 1 << 20, 1 << 30, 0x7fffffff];
const INTERESTING_INT16 = [-32768, -2, -1, 0, 1, 2, 255, 32767];

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'int32'; at: number; value: number }
  | { kind: 'int16'; at: number; value: number }
  | { kind: 'splice'; at: number; bytes: Uint8Array }
  | { kind: 'extend'; bytes: Uint8Array };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('int32' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...INTERESTING_INT32), fc.integer()) }),
  fc.record({ kind: fc.constant('int16' as const), at: fc.nat(), value: fc.constantFrom(...INTERESTING_INT16) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

/** Applies mutations to a copy of `input`. Positions wrap around the current length. */
export function mutate(input: Buffer, mutations: readonly Mutation[], lengthFieldAt: number): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const n = b.length;
    switch (m.kind) {
      case 'flip':
        if (n) b[m.at % n] = (b[m.at % n] as number) ^ (1 << m.bit);
        break;
      case 'truncate':
        b = b.subarray(0, n ? m.at % n : 0);
        break;
      case 'int32': {
        // Half of the time aim at the frame's own length field, else at any offset (counts, lengths).
        const at = m.at % 2 === 0 ? lengthFieldAt : n >= 4 ? (m.at >> 1) % (n - 3) : -1;
        if (at >= 0 && at + 4 <= n) b.writeInt32BE(m.value | 0, at);
        break;
      }
      case 'int16':
        if (n >= 2) b.writeInt16BE(m.value, m.at % (n - 1));
        break;
      case 'splice':
        if (n) Buffer.from(m.bytes).copy(b, m.at % n);
        break;
      case 'extend':
        b = Buffer.concat([b, m.bytes]);
        break;
    }
  }
  return b;
}

// Oracles -----------------------------------------------------------------------------------------

/** Runs `fn`; only a ProtocolError may escape. Returns the result, or undefined on ProtocolError. */
function guarded<T>(what: string, input: Buffer, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ProtocolError) return undefined;
    const e = err as Error;
    throw new Error(`${what} threw ${e?.name}: ${e?.message} on input ${input.toString('hex').slice(0, 400)}`);
  }
}

type Decoder = (msg: Buffer) => unknown;

/** Every typed-message decoder, with the type byte it expects. */
const FRONTEND_DECODERS: [number, string, Decoder][] = [
  [Frontend.query, 'decodeQuery', decodeQuery],
  [Frontend.parse, 'decodeParse', decodeParse],
  [Frontend.bind, 'decodeBind', decodeBind],
  [Frontend.describe, 'decodeDescribe', decodeDescribe],
  [Frontend.close, 'decodeClose', decodeClose],
  [Frontend.execute, 'decodeExecute', decodeExecute],
  [Frontend.sync, 'decodeEmpty(Sync)', (m) => decodeEmpty(m, Frontend.sync, 'Sync')],
  [Frontend.copyData, 'copyDataPayload', copyDataPayload],
  [Frontend.copyFail, 'decodeCopyFail', decodeCopyFail],
  [Frontend.password, 'decodePasswordMessage', decodePasswordMessage],
  [Frontend.password, 'decodeSaslInitialResponse', decodeSaslInitialResponse],
  [Frontend.password, 'decodeSaslResponse', decodeSaslResponse],
];

const BACKEND_DECODERS: [number, string, Decoder][] = [
  [Backend.authentication, 'decodeAuthentication', decodeAuthentication],
  [Backend.rowDescription, 'decodeRowDescription', decodeRowDescription],
  [Backend.dataRow, 'decodeDataRow', decodeDataRow],
  [Backend.commandComplete, 'decodeCommandComplete', decodeCommandComplete],
  [Backend.parameterDescription, 'decodeParameterDescription', decodeParameterDescription],
  [Backend.notificationResponse, 'decodeNotificationResponse', decodeNotificationResponse],
  [Backend.copyOutResponse, 'decodeCopyResponse', decodeCopyResponse],
  [Backend.errorResponse, 'decodeNotice', decodeNotice],
  [Backend.noticeResponse, 'decodeErrorFields', (m) => decodeErrorFields(m, Backend.noticeResponse)],
  [Backend.negotiateProtocolVersion, 'decodeNegotiateProtocolVersion', decodeNegotiateProtocolVersion],
  [Backend.readyForQuery, 'decodeBackend(Z)', decodeBackend],
  [Backend.backendKeyData, 'decodeBackend(K)', decodeBackend],
  [Backend.parameterStatus, 'decodeBackend(S)', decodeBackend],
];

/** decode → encode → decode must give the same value (the codec is stable on what it accepts). */
function stable<T>(what: string, input: Buffer, decode: (b: Buffer) => T, encode: (v: T) => Buffer): void {
  const first = guarded(what, input, () => {
    try {
      return decode(input);
    } catch (err) {
      // The dispatcher's own refusal of a type byte no message has (not the codec's concern).
      if (err instanceof UnknownMessageType) return undefined;
      throw err;
    }
  });
  if (first === undefined) return;
  const again = decode(encode(first));
  const a = JSON.stringify(first, replacer);
  const b = JSON.stringify(again, replacer);
  if (a !== b) throw new Error(`${what} is not stable under re-encoding: ${a.slice(0, 200)} vs ${b.slice(0, 200)} for ${input.toString('hex').slice(0, 200)}`);
}

function replacer(_k: string, v: unknown): unknown {
  if (v instanceof Map) return [...v];
  if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString('hex');
  return v;
}

/** Runs every decoder of `direction` on `input` (with its type byte, and re-typed for each decoder). */
export function checkMessage(input: Buffer, direction: 'frontend' | 'backend', retypeAs: number): void {
  const table = direction === 'frontend' ? FRONTEND_DECODERS : BACKEND_DECODERS;
  for (const [code, name, decode] of table) {
    if (input[0] === code) guarded(name, input, () => decode(input));
  }
  const [code, name, decode] = table[retypeAs % table.length] as [number, string, Decoder];
  if (input.length) {
    const retyped = Buffer.from(input);
    retyped[0] = code;
    guarded(name, retyped, () => decode(retyped));
  }
  if (direction === 'frontend') stable('decodeFrontend', input, decodeFrontend, encodeFrontend);
  else stable('decodeBackend', input, decodeBackend, encodeBackend);
}

export function checkStartup(input: Buffer): void {
  const len = guarded('startupPacketLength', input, () => startupPacketLength(input));
  if (len) guarded('decodeStartupPacket', input, () => decodeStartupPacket(input.subarray(0, len)));
  guarded('decodeStartupPacket', input, () => decodeStartupPacket(input));
}

const RFC7677_CLIENT: ScramClient = {
  clientFirst: Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'),
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
};
export const RFC7677_SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
export const RFC7677_SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

export function checkScram(serverFirst: Buffer, serverFinal: Buffer): void {
  // Keep the work bounded: a mutated iteration count can only shrink or stay four digits here.
  const final = guarded('scramClientFinal', serverFirst, () => scramClientFinal(RFC7677_CLIENT, serverFirst, 'pencil'));
  const reference = scramClientFinal(RFC7677_CLIENT, Buffer.from(RFC7677_SERVER_FIRST), 'pencil');
  guarded('scramVerifyServerFinal', serverFinal, () => scramVerifyServerFinal(final ?? reference, serverFinal));
}

/** Feeds a (mutated) stream to the scanner in `cuts` pieces; it must frame it exactly or throw ProtocolError. */
export function checkScanner(stream: Buffer, cuts: readonly number[], decisions: readonly boolean[]): void {
  const out: Buffer[] = [];
  let headers = 0;
  const scanner = new MessageScanner(
    {
      whole: () => decisions[headers++ % decisions.length] ?? true,
      onMessage: (_c, b, s, e) => void out.push(Buffer.from(b.subarray(s, e))),
      onBytes: (b, s, e) => out.push(Buffer.from(b.subarray(s, e))),
    },
    1 << 20,
  );
  const points = [...new Set(cuts.map((c) => (stream.length ? c % stream.length : 0)))].sort((a, b) => a - b);
  let prev = 0;
  const ok = guarded('MessageScanner.push', stream, () => {
    for (const p of [...points, stream.length]) {
      scanner.push(stream.subarray(prev, p));
      prev = p;
    }
    return true;
  });
  if (!ok) return;
  const emitted = Buffer.concat(out);
  const expected = stream.subarray(0, emitted.length);
  if (!emitted.equals(expected)) throw new Error('scanner output differs from its input');
  if (scanner.atBoundary && emitted.length !== stream.length) throw new Error('scanner at a boundary but bytes are missing');
}

// Properties --------------------------------------------------------------------------------------

export type FuzzTarget = 'frontend' | 'backend' | 'startup' | 'scram' | 'scanner' | 'random' | 'selftest-throw' | 'selftest-hang';

/** A decoder with the classic bug (reads past the end with a RangeError), to prove the oracle catches it. */
function brokenDecoder(msg: Buffer): number {
  return msg.readInt32BE(msg.length - 2);
}

export function fuzz(target: FuzzTarget, seed: number, numRuns: number): void {
  const seeds = loadSeeds();
  const mutations = fc.array(mutationArb, { minLength: 1, maxLength: 6 });
  const pick = (list: Buffer[]): fc.Arbitrary<Buffer> => fc.integer({ min: 0, max: list.length - 1 }).map((i) => list[i] as Buffer);
  let property: fc.IProperty<unknown[]>;
  switch (target) {
    case 'frontend':
    case 'backend':
      property = fc.property(pick(seeds[target]), mutations, fc.nat(), (msg, muts, retype) =>
        checkMessage(mutate(msg, muts, 1), target, retype),
      );
      break;
    case 'startup':
      property = fc.property(pick(seeds.startup), mutations, (p, muts) => checkStartup(mutate(p, muts, 0)));
      break;
    case 'scram':
      property = fc.property(mutations, mutations, (a, b) =>
        checkScram(mutate(Buffer.from(RFC7677_SERVER_FIRST), a, -1), mutate(Buffer.from(RFC7677_SERVER_FINAL), b, -1)),
      );
      break;
    case 'scanner':
      property = fc.property(
        pick(seeds.streams),
        fc.array(mutationArb, { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
        (stream, muts, cuts, decisions) => checkScanner(mutate(stream, muts, 1), cuts, decisions),
      );
      break;
    case 'selftest-throw':
      property = fc.property(pick(seeds.frontend), mutations, (msg, muts) => {
        const input = mutate(msg, muts, 1);
        guarded('brokenDecoder', input, () => brokenDecoder(input));
      });
      break;
    case 'selftest-hang':
      property = fc.property(pick(seeds.frontend), (msg) => {
        // A decoder stuck in a loop that never consumes input.
        for (let at = 0; at < msg.length; at += msg[0] === 0 ? 1 : 0) if (Date.now() < 0) break;
      });
      break;
    case 'random': {
      const codes = [...new Set([...Object.values(Frontend), ...Object.values(Backend)])];
      const framed = fc.tuple(fc.constantFrom(...codes), fc.uint8Array({ maxLength: 64 })).map(([code, body]) => {
        const b = Buffer.alloc(5 + body.length);
        b[0] = code;
        b.writeInt32BE(4 + body.length, 1);
        b.set(body, 5);
        return b;
      });
      property = fc.property(fc.oneof(framed, fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u))), fc.nat(), (input, retype) => {
        checkMessage(input, 'frontend', retype);
        checkMessage(input, 'backend', retype);
        checkStartup(input);
        checkScanner(input, [retype], [true, false]);
      });
      break;
    }
  }
  fc.assert(property, { seed, numRuns });
}
