// The login warden builds: the LOGIN7 it sends the target (the agent's session options, the
// target's database and credential, nothing of the agent's identity), and the login response the
// agent receives (the target's tokens, FEATUREEXTACK rewritten for the agent's features, the
// packet size announced when the agent left it to the server).
import { describe, expect, it } from 'vitest';
import {
  decodeFedAuthFeature,
  decodeTokens,
  encodeToken,
  ENVCHANGE_TYPE,
  FEATURE_ID,
  LOGIN7_OPTION_FLAGS_2,
  TDS_VERSION,
  type Token,
} from '../../protocols/tds/index.js';
import type { TdsTargetConfig } from '../../src/config/types.js';
import { clientLoginResponse } from '../../src/tds/login-response.js';
import { requestedPacketSize, upstreamLogin7, UpstreamError, type TdsUpstreamSession } from '../../src/tds/upstream.js';
import { login7 } from '../helpers/tds.js';

const ctx = { tdsVersion: TDS_VERSION.V7_4 };
const target: TdsTargetConfig = {
  name: 'shop',
  protocol: 'tds',
  host: 'db.internal',
  port: 1433,
  database: 'shop_prod',
  user: 'warden_svc',
  password: 'stored-secret',
  tls: { mode: 'require' },
  connectTimeout: 5000,
};
const UTF8 = { featureId: FEATURE_ID.UTF8_SUPPORT, data: Buffer.from([1]) };
const FEDAUTH = { featureId: FEATURE_ID.FEDAUTH, data: Buffer.from([0x02, 0, 0, 0, 0]) };
const COLUMNENCRYPTION = { featureId: FEATURE_ID.COLUMNENCRYPTION, data: Buffer.from([1]) };

describe('the LOGIN7 warden sends the target', () => {
  it('keeps the agent\'s session options and replaces database, credential and server name', () => {
    const agent = login7('eyJ.agent.token', 'shop', {
      appName: 'reporting',
      language: 'us_english',
      optionFlags2: 0x03 | LOGIN7_OPTION_FLAGS_2.INTEGRATED_SECURITY,
      packetSize: 8192,
      features: [UTF8, FEDAUTH, COLUMNENCRYPTION],
    });
    const up = upstreamLogin7(target, agent, {});
    expect(up).toMatchObject({
      userName: 'warden_svc',
      password: 'stored-secret',
      database: 'shop_prod',
      serverName: 'db.internal',
      appName: 'reporting',
      language: 'us_english',
      packetSize: 8192,
      hostName: agent.hostName,
      tdsVersion: TDS_VERSION.V7_4,
    });
    expect(up.optionFlags2 & LOGIN7_OPTION_FLAGS_2.INTEGRATED_SECURITY).toBe(0);
    // Only UTF-8 support is passed on: never the agent's FEDAUTH, never Always Encrypted.
    expect(up.features).toEqual([UTF8]);
    expect(JSON.stringify(up)).not.toContain('eyJ.agent.token');
  });

  it('presents the target\'s access token through FEDAUTH, with the echo and nonce of its PRELOGIN', () => {
    const nonce = Buffer.alloc(32, 7);
    const up = upstreamLogin7({ ...target, user: undefined, password: undefined, accessToken: 'upstream-token' } as unknown as TdsTargetConfig, login7('t'), { fedAuthRequired: 1, nonce });
    expect(up.userName).toBe('');
    expect(up.password).toBe('');
    const fed = up.features?.find((f) => f.featureId === FEATURE_ID.FEDAUTH);
    expect(decodeFedAuthFeature(fed!.data)).toEqual({ library: 1, echo: true, token: 'upstream-token', nonce });
    expect(() => upstreamLogin7({ ...target, accessToken: 'x' }, login7('t', 'shop', { tdsVersion: TDS_VERSION.V7_1, features: undefined } as never), {})).toThrow(UpstreamError);
  });

  it('asks for the agent\'s packet size within the protocol\'s range, 0 meaning "you choose"', () => {
    expect([0, 100, 4096, 32767, 65536].map(requestedPacketSize)).toEqual([0, 512, 4096, 32767, 32767]);
    expect(upstreamLogin7(target, login7('t', 'shop', { tdsVersion: TDS_VERSION.V8_0 }), {}).tdsVersion).toBe(TDS_VERSION.V7_4);
  });
});

function session(tokens: Token[], extra: Partial<TdsUpstreamSession> = {}): TdsUpstreamSession {
  return {
    socket: undefined as never,
    tcp: undefined as never,
    tls: undefined,
    strict: false,
    tdsVersion: TDS_VERSION.V7_4,
    packetSize: 4096,
    packetSizeAnnounced: true,
    spid: 51,
    tokens: tokens.map((t) => {
      const bytes = encodeToken(t, ctx);
      return { code: bytes[0]!, bytes, token: t };
    }),
    ...extra,
  };
}

const LOGINACK: Token = { kind: 'LOGINACK', interface: 1, tdsVersion: TDS_VERSION.V7_4, progName: 'Microsoft SQL Server', progVersion: { major: 16, minor: 0, buildHi: 0, buildLow: 0 } };
const DB: Token = { kind: 'ENVCHANGE', format: 'text', type: ENVCHANGE_TYPE.DATABASE, newValue: 'shop_prod', oldValue: 'master' };
const DONE: Token = { kind: 'DONE', status: 0, curCmd: 0, rowCount: 0n };

describe('the login response the agent receives', () => {
  it('passes the target\'s tokens and acknowledges the agent\'s FEDAUTH with empty data', () => {
    const up = session([DB, LOGINACK, { kind: 'FEATUREEXTACK', features: [{ featureId: FEATURE_ID.UTF8_SUPPORT, data: Buffer.from([1]) }] }, DONE]);
    const out = decodeTokens(clientLoginResponse(up, { client: login7('t', 'shop', { features: [UTF8, FEDAUTH] }), fedAuth: true }), ctx);
    expect(out).toEqual([DB, LOGINACK, { kind: 'FEATUREEXTACK', features: [{ featureId: FEATURE_ID.UTF8_SUPPORT, data: Buffer.from([1]) }, { featureId: FEATURE_ID.FEDAUTH, data: Buffer.alloc(0) }] }, DONE]);
  });

  it('acknowledges only what the agent asked for, and adds a FEATUREEXTACK before DONE when the target sent none', () => {
    const acked = session([LOGINACK, { kind: 'FEATUREEXTACK', features: [{ featureId: FEATURE_ID.FEDAUTH, data: Buffer.alloc(0) }] }, DONE]);
    // warden's own upstream FEDAUTH is not the agent's business
    expect(decodeTokens(clientLoginResponse(acked, { client: login7('t'), fedAuth: false }), ctx)).toEqual([LOGINACK, DONE]);
    const none = session([LOGINACK, DONE]);
    expect(decodeTokens(clientLoginResponse(none, { client: login7('t', 'shop', { features: [FEDAUTH] }), fedAuth: true }), ctx)).toEqual([
      LOGINACK,
      { kind: 'FEATUREEXTACK', features: [{ featureId: FEATURE_ID.FEDAUTH, data: Buffer.alloc(0) }] },
      DONE,
    ]);
  });

  it('announces the packet size when the agent left it to the server and the target did not say', () => {
    const up = session([LOGINACK, DONE], { packetSizeAnnounced: false, packetSize: 4096 });
    expect(decodeTokens(clientLoginResponse(up, { client: login7('t', 'shop', { packetSize: 0 }), fedAuth: false }), ctx)).toEqual([
      LOGINACK,
      { kind: 'ENVCHANGE', format: 'text', type: ENVCHANGE_TYPE.PACKET_SIZE, newValue: '4096', oldValue: '4096' },
      DONE,
    ]);
  });
});
