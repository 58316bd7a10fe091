// Opens a connection to a TDS target (SQL Server, Azure SQL, the stand-in) and logs in with the
// target's stored credential — a SQL login, or an access token through FEDAUTH — over TLS when
// the target's tls.mode asks for it: TLS inside PRELOGIN (TDS 7.x) or, when the target closes
// the connection on a plaintext PRELOGIN (SQL Server with strict encryption forced), TDS 8.0 with
// TLS first. The agent never sees the credential, and upstream login errors never reach it
// verbatim.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  decodePrelogin,
  DEFAULT_PACKET_SIZE,
  encodeFedAuthFeature,
  encodeLogin7,
  encodePrelogin,
  ENCRYPTION,
  ENVCHANGE_TYPE,
  FEATURE_ID,
  FEDAUTH_LIBRARY,
  LOGIN7_OPTION_FLAGS_2,
  LOGIN7_OPTION_FLAGS_3,
  MAX_PACKET_SIZE,
  MIN_PACKET_SIZE,
  packetize,
  PACKET_TYPE,
  TDS_VERSION,
  TokenStreamParser,
  isTds74Plus,
  type FeatureExt,
  type Login7,
  type Prelogin,
  type Token,
  type InfoErrorToken,
  DONE_STATUS,
} from '../../protocols/tds/index.js';
import { ProtocolError } from '../../protocols/errors.js';
import type { TdsTargetConfig } from '../config/types.js';
import { ConnectionClosedError, DeadlineError, TdsMessageReader } from './message-reader.js';
import { connectPreloginTls, connectStrictTls, UpstreamTlsError, type TlsSessionInfo } from './tls.js';

/** Why an upstream login failed. `clientMessage` is safe to show the agent; `detail` is for logs. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly kind: 'unreachable' | 'tls' | 'auth' | 'rejected' | 'protocol' | 'timeout' | 'unsupported',
    readonly clientMessage: string,
    readonly detail: string,
    /** What the agent is told after the target's name, when the cause is its own client (not the target's secrets). */
    readonly clientReason?: string,
  ) {
    super(`${clientMessage}: ${detail}`);
  }
}

/** One token of the target's login response, as it came. */
export interface LoginToken {
  readonly code: number;
  readonly bytes: Buffer;
  readonly token: Token;
}

export interface TdsUpstreamSession {
  /** The socket to relay on: TCP, or TLS over it. Paused, nothing buffered. */
  socket: Duplex;
  /** The TCP socket underneath (for addresses and destroy()). */
  tcp: net.Socket;
  tls: TlsSessionInfo | undefined;
  /** TDS 8.0 (TLS before PRELOGIN). */
  strict: boolean;
  /** The TDS version LOGINACK names. */
  tdsVersion: number;
  /** The packet size in force after login. */
  packetSize: number;
  /** Whether the target sent an ENVCHANGE for the packet size. */
  packetSizeAnnounced: boolean;
  /** SPID from the login response's packet header. */
  spid: number;
  /** The login response, token by token. */
  tokens: LoginToken[];
}

/** Features warden passes on from the agent's LOGIN7: only those that change nothing warden must understand. */
const PASSED_FEATURES: ReadonlySet<number> = new Set([FEATURE_ID.UTF8_SUPPORT]);
/** A login response is a few KiB. */
const MAX_LOGIN_RESPONSE = 1024 * 1024;
const WARDEN_VERSION = { major: 0, minor: 1, build: 0, subBuild: 0 };

/** The packet size warden asks the target for: the agent's, kept within the protocol's range (0 = the server chooses). */
export function requestedPacketSize(clientSize: number): number {
  if (clientSize === 0) return 0;
  return Math.min(MAX_PACKET_SIZE, Math.max(MIN_PACKET_SIZE, clientSize));
}

/** The LOGIN7 warden sends the target: the agent's session options with the target's database and credential. */
export function upstreamLogin7(target: TdsTargetConfig, client: Login7, prelogin: Prelogin): Login7 {
  const tdsVersion = client.tdsVersion === TDS_VERSION.V8_0 ? TDS_VERSION.V7_4 : client.tdsVersion;
  const features: FeatureExt[] = [];
  const v74 = isTds74Plus({ tdsVersion });
  if (v74) for (const f of client.features ?? []) if (PASSED_FEATURES.has(f.featureId)) features.push(f);
  if (target.accessToken !== undefined) {
    if (!v74) {
      const asked = `TDS ${(tdsVersion >>> 28).toString(16)}.${((tdsVersion >>> 24) & 0xf).toString(16)}`;
      const why = `it logs in with an access token (FEDAUTH), which needs TDS 7.4, and this client asked for ${asked}; use a target with a SQL login`;
      throw new UpstreamError('unsupported', 'could not log in to the target', why, why);
    }
    features.push({
      featureId: FEATURE_ID.FEDAUTH,
      data: encodeFedAuthFeature({
        library: FEDAUTH_LIBRARY.SECURITY_TOKEN,
        echo: prelogin.fedAuthRequired === 1,
        token: target.accessToken,
        ...(prelogin.nonce ? { nonce: prelogin.nonce } : {}),
      }),
    });
  }
  return {
    tdsVersion,
    packetSize: requestedPacketSize(client.packetSize),
    clientProgVer: client.clientProgVer,
    clientPid: client.clientPid,
    connectionId: 0,
    optionFlags1: client.optionFlags1,
    optionFlags2: client.optionFlags2 & ~LOGIN7_OPTION_FLAGS_2.INTEGRATED_SECURITY,
    typeFlags: client.typeFlags,
    optionFlags3: client.optionFlags3 & ~(LOGIN7_OPTION_FLAGS_3.CHANGE_PASSWORD | LOGIN7_OPTION_FLAGS_3.USER_INSTANCE),
    clientTimeZone: client.clientTimeZone,
    clientLcid: client.clientLcid,
    hostName: client.hostName,
    userName: target.accessToken !== undefined ? '' : (target.user ?? ''),
    password: target.accessToken !== undefined ? '' : (target.password ?? ''),
    appName: client.appName,
    serverName: target.tls.serverName ?? target.host,
    clientInterfaceName: client.clientInterfaceName,
    language: client.language,
    database: target.database,
    clientId: client.clientId,
    sspi: Buffer.alloc(0),
    attachDbFile: '',
    changePassword: '',
    ...(features.length > 0 ? { features } : {}),
  };
}

/**
 * Connects to `target` and logs in on behalf of the agent whose LOGIN7 is `client`. Resolves once
 * the target's login response is complete; the socket is then paused with nothing buffered.
 */
export async function connectTdsUpstream(target: TdsTargetConfig, client: Login7, opts: { strict?: boolean } = {}): Promise<TdsUpstreamSession> {
  const deadline = Date.now() + target.connectTimeout;
  try {
    return await attempt(target, client, deadline, opts.strict === true);
  } catch (err) {
    // A target that forces strict encryption closes the connection on a plaintext PRELOGIN.
    if (err instanceof EarlyClose && target.tls.mode !== 'disable' && opts.strict !== true) return attempt(target, client, deadline, true);
    if (err instanceof EarlyClose) throw new UpstreamError('unreachable', 'could not connect to the target', err.message);
    throw err;
  }
}

class EarlyClose extends Error {}

async function attempt(target: TdsTargetConfig, client: Login7, deadline: number, strict: boolean): Promise<TdsUpstreamSession> {
  const tcp = await connectTcp(target.host, target.port, deadline);
  let socket: Duplex = tcp;
  let tlsInfo: TlsSessionInfo | undefined;
  try {
    if (strict) {
      const s = await connectStrictTls(tcp, target, deadline);
      socket = s.secure;
      tlsInfo = s.info;
    }
    let reader = new TdsMessageReader(socket, { packetSize: MAX_PACKET_SIZE, maxMessageSize: MAX_LOGIN_RESPONSE });
    socket.write(packetize(PACKET_TYPE.PRELOGIN, encodePrelogin(preloginRequest(target, strict)), DEFAULT_PACKET_SIZE));
    let answer;
    try {
      answer = await reader.next(deadline);
    } catch (err) {
      if (!strict && err instanceof ConnectionClosedError) throw new EarlyClose('the target closed the connection after PRELOGIN');
      throw err;
    }
    if (answer.type !== PACKET_TYPE.TABULAR_RESULT) throw new ProtocolError(`PRELOGIN answered with packet type 0x${answer.type.toString(16)}`);
    const prelogin = decodePrelogin(answer.payload);
    if (!reader.detach()) throw new ProtocolError('unexpected data after the PRELOGIN response');
    if (!strict) {
      const enc = (prelogin.encryption ?? ENCRYPTION.ENCRYPT_NOT_SUP) & ~ENCRYPTION.ENCRYPT_CLIENT_CERT;
      const serverEncrypts = enc === ENCRYPTION.ENCRYPT_ON || enc === ENCRYPTION.ENCRYPT_REQ;
      if (target.tls.mode === 'disable' && enc === ENCRYPTION.ENCRYPT_REQ) {
        throw new UpstreamError('tls', 'could not establish TLS with the target', 'the target requires encryption but tls.mode is disable');
      }
      if (target.tls.mode !== 'disable' && target.tls.mode !== 'prefer' && !serverEncrypts) {
        throw new UpstreamError('tls', 'could not establish TLS with the target', 'the target does not support encryption');
      }
      if (target.tls.mode !== 'disable' && serverEncrypts) {
        const s = await connectPreloginTls(tcp, target, deadline);
        socket = s.secure;
        tlsInfo = s.info;
      }
    }
    const login = upstreamLogin7(target, client, prelogin);
    reader = new TdsMessageReader(socket, { packetSize: MAX_PACKET_SIZE, maxMessageSize: MAX_LOGIN_RESPONSE });
    socket.write(packetize(PACKET_TYPE.LOGIN7, encodeLogin7(login), DEFAULT_PACKET_SIZE));
    const session = await readLoginResponse(reader, login, deadline);
    if (!reader.detach()) throw new UpstreamError('protocol', 'could not log in to the target', 'unexpected data after the login response');
    socket.pause();
    return { socket, tcp, tls: tlsInfo, strict, ...session };
  } catch (err) {
    socket.destroy();
    tcp.destroy();
    if (err instanceof UpstreamError || err instanceof EarlyClose) throw err;
    if (err instanceof UpstreamTlsError) throw new UpstreamError('tls', 'could not establish TLS with the target', err.message);
    if (err instanceof DeadlineError) throw new UpstreamError('timeout', 'could not log in to the target', err.message);
    if (err instanceof ProtocolError) throw new UpstreamError('protocol', 'could not log in to the target', err.message);
    if (err instanceof ConnectionClosedError) throw new UpstreamError('unreachable', 'could not log in to the target', err.message);
    throw new UpstreamError('protocol', 'could not log in to the target', (err as Error).message);
  }
}

function preloginRequest(target: TdsTargetConfig, strict: boolean): Prelogin {
  return {
    version: WARDEN_VERSION,
    // Strict: TLS is already on; the option is informational.
    encryption: strict ? ENCRYPTION.ENCRYPT_NOT_SUP : target.tls.mode === 'disable' ? ENCRYPTION.ENCRYPT_NOT_SUP : ENCRYPTION.ENCRYPT_ON,
    instance: '',
    threadId: process.pid,
    mars: 0,
    ...(target.accessToken !== undefined ? { fedAuthRequired: 1 } : {}),
  };
}

async function readLoginResponse(reader: TdsMessageReader, login: Login7, deadline: number): Promise<Omit<TdsUpstreamSession, 'socket' | 'tcp' | 'tls' | 'strict'>> {
  const parser = new TokenStreamParser({ tdsVersion: login.tdsVersion, decodeRows: true, maxTokenLength: MAX_LOGIN_RESPONSE });
  const tokens: LoginToken[] = [];
  let loginAck: number | undefined;
  let packetSize: number | undefined;
  let spid = 0;
  const errors: InfoErrorToken[] = [];
  for (;;) {
    const m = await reader.next(deadline);
    if (m.type !== PACKET_TYPE.TABULAR_RESULT) throw new ProtocolError(`login answered with packet type 0x${m.type.toString(16)}`);
    spid = m.spid;
    parser.feed(m.payload);
    let final = false;
    for (let t = parser.next(); t; t = parser.next()) {
      const token = t.token as Token;
      tokens.push({ code: t.code, bytes: t.bytes, token });
      switch (token.kind) {
        case 'LOGINACK':
          loginAck = token.tdsVersion;
          break;
        case 'ERROR':
          errors.push(token);
          break;
        case 'ENVCHANGE':
          if (token.type === ENVCHANGE_TYPE.PACKET_SIZE && token.format === 'text') packetSize = Number(token.newValue);
          if (token.type === ENVCHANGE_TYPE.ROUTING) {
            throw new UpstreamError('unsupported', 'could not log in to the target', 'the target redirected the connection (ENVCHANGE routing); use the proxy connection policy for targets behind warden');
          }
          break;
        case 'SSPI':
        case 'FEDAUTHINFO':
          throw new UpstreamError('auth', 'could not log in to the target', `the target asked for ${token.kind} authentication`);
        case 'DONE':
          if ((token.status & DONE_STATUS.MORE) === 0) final = true;
          break;
        default:
          break;
      }
    }
    parser.endOfMessage();
    if (!final) continue;
    if (loginAck === undefined || errors.some((e) => e.class > 10)) {
      const e = errors.find((x) => x.class > 10);
      throw new UpstreamError('auth', 'could not log in to the target', e ? `${e.number}: ${e.message}` : 'the login response had no LOGINACK');
    }
    const size = packetSize ?? (login.packetSize === 0 ? DEFAULT_PACKET_SIZE : login.packetSize);
    if (!Number.isInteger(size) || size < MIN_PACKET_SIZE || size > MAX_PACKET_SIZE) throw new ProtocolError(`packet size ${size} from the target is out of range`);
    return { tdsVersion: loginAck, packetSize: size, packetSizeAnnounced: packetSize !== undefined, spid, tokens };
  }
}

function connectTcp(host: string, port: number, deadline: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true, keepAlive: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamError('timeout', 'could not connect to the target', `connect to ${host}:${port} timed out`));
    }, Math.max(0, deadline - Date.now()));
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new UpstreamError('unreachable', 'could not connect to the target', `${host}:${port}: ${err.message}`));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}
