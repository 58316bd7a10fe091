// What the agent receives when its login succeeds: the target's own login response (LOGINACK,
// ENVCHANGEs, INFO messages, DONE) — so the agent sees the real server, its version, database,
// collation and packet size — with FEATUREEXTACK rewritten for the features the *agent* asked
// for ([MS-TDS] 2.2.7.11): warden logged in upstream with its own credential, so the target
// acknowledged warden's features, not the agent's. A FEDAUTH the agent used is acknowledged with
// empty data (SECURITY_TOKEN library), as SQL Server does.
import {
  encodeToken,
  ENVCHANGE_TYPE,
  FEATURE_ID,
  TOKEN,
  type FeatureExt,
  type Login7,
  type Token,
} from '../../protocols/tds/index.js';
import type { TdsUpstreamSession } from './upstream.js';

export interface LoginResponseOptions {
  /** The agent's LOGIN7. */
  readonly client: Login7;
  /** The agent authenticated through the FEDAUTH feature (it must see it acknowledged). */
  readonly fedAuth: boolean;
}

/** The token stream of the agent's login response (one message payload). */
export function clientLoginResponse(up: TdsUpstreamSession, opts: LoginResponseOptions): Buffer {
  const ctx = { tdsVersion: up.tdsVersion };
  const asked = new Set((opts.client.features ?? []).map((f) => f.featureId));
  const ack: FeatureExt[] = [];
  let ackAt = -1;
  const out: Buffer[] = [];
  for (const t of up.tokens) {
    if (t.token.kind === 'FEATUREEXTACK') {
      for (const f of t.token.features) if (asked.has(f.featureId) && f.featureId !== FEATURE_ID.FEDAUTH) ack.push(f);
      if (ackAt < 0) ackAt = out.length;
      continue;
    }
    if (t.code === TOKEN.DONE && ackAt < 0) ackAt = out.length;
    out.push(t.bytes);
    if (t.token.kind === 'LOGINACK' && !up.packetSizeAnnounced && opts.client.packetSize !== up.packetSize) {
      // The agent asked for another size (or 0, "you choose"): tell it which one is in force.
      out.push(encodeToken(packetSizeChange(up.packetSize), ctx));
    }
  }
  if (opts.fedAuth) ack.push({ featureId: FEATURE_ID.FEDAUTH, data: Buffer.alloc(0) });
  if (ack.length > 0) {
    const token = encodeToken({ kind: 'FEATUREEXTACK', features: ack }, ctx);
    out.splice(ackAt < 0 ? out.length : ackAt, 0, token);
  }
  return Buffer.concat(out);
}

function packetSizeChange(size: number): Token {
  return { kind: 'ENVCHANGE', format: 'text', type: ENVCHANGE_TYPE.PACKET_SIZE, newValue: String(size), oldValue: '4096' };
}
