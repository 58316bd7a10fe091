// Opens a connection to a PostgreSQL target and logs in with the target's stored credential
// (SCRAM-SHA-256, MD5 or cleartext password), over TLS when the target's tls.mode asks for it.
// The agent never sees the credential, and upstream authentication errors never reach it verbatim.
import net from 'node:net';
import tls from 'node:tls';
import type { PostgresTargetConfig } from '../config/types.js';
import { decodeAuthentication } from '../../protocols/postgres/authentication.js';
import { Backend } from '../../protocols/postgres/codes.js';
import { decodeNotice, type Notice } from '../../protocols/postgres/error-response.js';
import { encodePasswordMessage, encodeSaslInitialResponse, encodeSaslResponse } from '../../protocols/postgres/password-message.js';
import {
  md5PasswordResponse,
  SCRAM_SHA_256,
  scramClientFinal,
  scramClientFirst,
  scramVerifyServerFinal,
} from '../../protocols/postgres/scram.js';
import {
  decodeBackendKeyData,
  decodeParameterStatus,
  decodeReadyForQuery,
  type BackendKeyData,
} from '../../protocols/postgres/session-messages.js';
import { encodeCancelRequest, encodeSslRequest, encodeStartupMessage } from '../../protocols/postgres/startup-message.js';
import { MessageReader, DeadlineError } from './message-reader.js';
import type { TransactionStatusByte } from '../../protocols/postgres/codes.js';

/** Why an upstream login failed. `clientMessage` is safe to show the agent; `detail` is for logs. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly kind: 'unreachable' | 'tls' | 'auth' | 'rejected' | 'protocol' | 'timeout',
    readonly clientMessage: string,
    readonly detail: string,
    /** For 'rejected': the upstream's own SQLSTATE, passed on when it is not about credentials. */
    readonly sqlState?: string,
  ) {
    super(`${clientMessage}: ${detail}`);
  }
}

export interface UpstreamSession {
  socket: net.Socket;
  /** ParameterStatus messages from the login, in order, as raw frames to forward to the client. */
  parameterStatus: Buffer[];
  parameters: Map<string, string>;
  /** NoticeResponse frames received during login, to forward. */
  notices: Buffer[];
  backendKey: BackendKeyData;
  transactionStatus: TransactionStatusByte;
  tls: { protocol: string | null; cipher: string | null } | undefined;
}

/** Startup parameters the client may not pass to the upstream: warden sets them, or they would escape policy. */
const RESERVED_PARAMS = new Set(['user', 'database', 'replication']);

export function upstreamStartupParams(target: PostgresTargetConfig, fromClient: Map<string, string>): [string, string][] {
  const params: [string, string][] = [
    ['user', target.user],
    ['database', target.database],
  ];
  for (const [k, v] of fromClient) {
    if (RESERVED_PARAMS.has(k) || k.startsWith('_pq_.')) continue;
    params.push([k, v]);
  }
  return params;
}

function connectTcp(host: string, port: number, deadline: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true, keepAlive: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamError('timeout', 'could not connect to the target', `connect to ${host}:${port} timed out`));
    }, Math.max(0, deadline - Date.now()));
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new UpstreamError('unreachable', 'could not connect to the target', `${host}:${port}: ${err.message}`));
    };
    socket.once('error', onError);
  });
}

/** Reads the single-byte answer to SSLRequest. */
function readSslAnswer(socket: net.Socket, deadline: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onErr);
      socket.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      cleanup();
      socket.pause();
      if (chunk.length !== 1) {
        // Anything after the answer byte would be injected ahead of the TLS handshake.
        reject(new UpstreamError('protocol', 'could not connect to the target', 'unexpected data after the SSLRequest answer'));
        return;
      }
      resolve(chunk[0] as number);
    };
    const onErr = (err: Error): void => {
      cleanup();
      reject(new UpstreamError('unreachable', 'could not connect to the target', err.message));
    };
    const onClose = (): void => {
      cleanup();
      reject(new UpstreamError('unreachable', 'could not connect to the target', 'connection closed during SSLRequest'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new UpstreamError('timeout', 'could not connect to the target', 'SSLRequest timed out'));
    }, Math.max(0, deadline - Date.now()));
    socket.on('data', onData);
    socket.once('error', onErr);
    socket.once('close', onClose);
    socket.resume();
  });
}

function startTls(socket: net.Socket, target: PostgresTargetConfig, deadline: number): Promise<tls.TLSSocket> {
  const mode = target.tls.mode;
  const verify = mode === 'verify-ca' || mode === 'verify-full';
  const servername = target.tls.serverName ?? (net.isIP(target.host) ? undefined : target.host);
  return new Promise((resolve, reject) => {
    const options: tls.ConnectionOptions = {
      socket,
      rejectUnauthorized: verify,
      ...(target.tls.ca !== undefined ? { ca: target.tls.ca } : {}),
      ...(servername !== undefined ? { servername } : {}),
    };
    if (mode === 'verify-ca') options.checkServerIdentity = () => undefined;
    if (mode === 'verify-full') {
      const name = target.tls.serverName ?? target.host;
      options.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(name, cert);
    }
    const secure = tls.connect(options);
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new UpstreamError('timeout', 'could not connect to the target', 'TLS handshake timed out'));
    }, Math.max(0, deadline - Date.now()));
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.off('error', onError);
      secure.setNoDelay(true);
      resolve(secure);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new UpstreamError('tls', 'could not establish TLS with the target', err.message));
    };
    secure.once('error', onError);
  });
}

const CREDENTIAL_SQLSTATES = new Set(['28000', '28P01']);

function rejection(notice: Notice): UpstreamError {
  if (CREDENTIAL_SQLSTATES.has(notice.code) || notice.code === '3D000') {
    // Credential or database-name problems are warden configuration problems; do not reveal the
    // upstream user or database name to the agent.
    return new UpstreamError('auth', 'could not log in to the target', `${notice.code}: ${notice.message}`);
  }
  return new UpstreamError('rejected', notice.message, `${notice.code}: ${notice.message}`, notice.code);
}

/**
 * Connects to `target` and logs in. Resolves once the upstream sent ReadyForQuery; the socket is
 * then paused with no data pending, ready for the relay.
 */
export async function connectUpstream(
  target: PostgresTargetConfig,
  clientParams: Map<string, string>,
  opts: { maxMessageBytes: number },
): Promise<UpstreamSession> {
  const deadline = Date.now() + target.connectTimeout;
  let socket: net.Socket = await connectTcp(target.host, target.port, deadline);
  let tlsInfo: UpstreamSession['tls'];
  try {
    if (target.tls.mode !== 'disable') {
      socket.write(encodeSslRequest());
      const answer = await readSslAnswer(socket, deadline);
      if (answer === 0x53 /* 'S' */) {
        const secure = await startTls(socket, target, deadline);
        socket = secure;
        const cipher = secure.getCipher();
        tlsInfo = { protocol: secure.getProtocol(), cipher: cipher?.name ?? null };
      } else if (answer === 0x4e /* 'N' */) {
        if (target.tls.mode !== 'prefer') {
          throw new UpstreamError('tls', 'could not establish TLS with the target', 'the target does not support TLS');
        }
      } else {
        throw new UpstreamError('protocol', 'could not connect to the target', `invalid SSLRequest answer 0x${answer.toString(16)}`);
      }
    }

    const reader = new MessageReader(socket, opts.maxMessageBytes);
    socket.resume();
    socket.write(encodeStartupMessage(upstreamStartupParams(target, clientParams)));

    const session: Omit<UpstreamSession, 'backendKey' | 'transactionStatus'> & Partial<UpstreamSession> = {
      socket,
      parameterStatus: [],
      parameters: new Map(),
      notices: [],
      tls: tlsInfo,
    };
    let scram: { client: ReturnType<typeof scramClientFirst>; final?: ReturnType<typeof scramClientFinal> } | undefined;
    for (;;) {
      let msg: Buffer;
      try {
        msg = await reader.next(deadline);
      } catch (err) {
        if (err instanceof DeadlineError) throw new UpstreamError('timeout', 'could not log in to the target', 'login timed out');
        throw new UpstreamError('unreachable', 'could not log in to the target', (err as Error).message);
      }
      const code = msg[0];
      if (code === Backend.authentication) {
        const auth = decodeAuthentication(msg);
        switch (auth.type) {
          case 'ok':
            break;
          case 'cleartext-password':
            socket.write(encodePasswordMessage(target.password));
            break;
          case 'md5-password':
            socket.write(encodePasswordMessage(md5PasswordResponse(target.user, target.password, auth.salt)));
            break;
          case 'sasl':
            if (!auth.mechanisms.includes(SCRAM_SHA_256)) {
              throw new UpstreamError('auth', 'could not log in to the target', `no supported SASL mechanism in ${auth.mechanisms.join(', ')}`);
            }
            scram = { client: scramClientFirst() };
            socket.write(encodeSaslInitialResponse(SCRAM_SHA_256, scram.client.clientFirst));
            break;
          case 'sasl-continue':
            if (!scram) throw new UpstreamError('protocol', 'could not log in to the target', 'SASLContinue without SASL');
            scram.final = scramClientFinal(scram.client, auth.data, target.password);
            socket.write(encodeSaslResponse(scram.final.clientFinal));
            break;
          case 'sasl-final':
            if (!scram?.final) throw new UpstreamError('protocol', 'could not log in to the target', 'SASLFinal out of order');
            scramVerifyServerFinal(scram.final, auth.data);
            break;
          case 'unsupported':
            throw new UpstreamError('auth', 'could not log in to the target', `unsupported authentication method ${auth.code}`);
        }
      } else if (code === Backend.parameterStatus) {
        const p = decodeParameterStatus(msg);
        session.parameters.set(p.name, p.value);
        session.parameterStatus.push(msg);
      } else if (code === Backend.backendKeyData) {
        session.backendKey = decodeBackendKeyData(msg);
      } else if (code === Backend.noticeResponse) {
        session.notices.push(msg);
      } else if (code === Backend.negotiateProtocolVersion) {
        // We only ever ask for 3.0 without _pq_ options; nothing to adapt.
      } else if (code === Backend.errorResponse) {
        throw rejection(decodeNotice(msg));
      } else if (code === Backend.readyForQuery) {
        session.transactionStatus = decodeReadyForQuery(msg);
        socket.pause();
        if (!reader.detach()) {
          throw new UpstreamError('protocol', 'could not log in to the target', 'unexpected data after ReadyForQuery');
        }
        if (!session.backendKey) session.backendKey = { processId: 0, secretKey: 0 };
        return session as UpstreamSession;
      } else {
        throw new UpstreamError('protocol', 'could not log in to the target', `unexpected message 0x${(code ?? 0).toString(16)} during login`);
      }
    }
  } catch (err) {
    socket.destroy();
    if (err instanceof UpstreamError) throw err;
    throw new UpstreamError('protocol', 'could not log in to the target', (err as Error).message);
  }
}

/** Sends a CancelRequest for `key` to the target (on a new connection, as libpq does). */
export async function sendUpstreamCancel(target: PostgresTargetConfig, key: BackendKeyData): Promise<void> {
  const deadline = Date.now() + target.connectTimeout;
  let socket: net.Socket = await connectTcp(target.host, target.port, deadline);
  try {
    if (target.tls.mode !== 'disable' && target.tls.mode !== 'prefer') {
      socket.write(encodeSslRequest());
      const answer = await readSslAnswer(socket, deadline);
      if (answer !== 0x53) throw new UpstreamError('tls', 'cancel failed', 'the target does not support TLS');
      socket = await startTls(socket, target, deadline);
    }
    await new Promise<void>((resolve) => {
      // The server closes the connection once it has read the request; a server that does not is
      // cut off after 5 s. Whichever comes first clears the other.
      const timer = setTimeout(() => {
        socket.destroy();
        resolve();
      }, 5000).unref();
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      socket.once('close', done);
      socket.once('error', done);
      socket.end(encodeCancelRequest(key.processId, key.secretKey));
    });
  } finally {
    socket.destroy();
  }
}

