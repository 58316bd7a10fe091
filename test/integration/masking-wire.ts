// Real PostgreSQL result bytes for the masking tests: a raw protocol connection (logged in by
// warden's own upstream connector) that sends a query — simple, or extended with chosen result
// formats — and returns every backend message up to ReadyForQuery, exactly as the server sent
// them. Helpers decode the messages the tests look at.
import type { Socket } from 'node:net';
import {
  copyDataPayload,
  decodeCopyResponse,
  encodeCopyData,
  decodeDataRow,
  decodeRowDescription,
  type CopyResponse,
  type FieldDescription,
} from '../../protocols/postgres/backend-messages.js';
import { Backend } from '../../protocols/postgres/codes.js';
import { decodeNotice, type Notice } from '../../protocols/postgres/error-response.js';
import { encodeBind, encodeDescribe, encodeExecute, encodeParse, encodeQuery, SYNC, TERMINATE } from '../../protocols/postgres/frontend-messages.js';
import { readYaml } from '../../src/config/document.js';
import { readMasking, type MaskingConfig } from '../../src/config/sections/masking.js';
import type { PostgresTargetConfig } from '../../src/config/types.js';
import type { Principal } from '../../src/identity/types.js';
import { connectUpstream } from '../../src/pg/upstream.js';
import { TEST_ROLES, testPostgres, type TestRole } from '../helpers/pg-env.js';

/** The harness PostgreSQL as a target. */
export function harnessTarget(role: TestRole = TEST_ROLES.scram, name = 'shop'): PostgresTargetConfig {
  const pg = testPostgres();
  return { name, protocol: 'postgres', host: pg.host, port: pg.port, database: 'shop', user: role.user, password: role.password, tls: { mode: 'disable' }, connectTimeout: 5000 };
}

/** The harness superuser as a target (for creating schemas and views in tests). */
export function superuserTarget(): PostgresTargetConfig {
  const pg = testPostgres();
  return { ...harnessTarget(), user: 'postgres', password: pg.superuserPassword };
}

/** A `masking:` section read with the real config reader; throws on any problem. */
export function maskingConfig(yaml: string): MaskingConfig {
  const { value, problems } = readYaml(yaml, (root) => readMasking(root.section(['masking'])!.get('masking')));
  if (problems.length > 0 || !value) throw new Error(problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.reason}`).join('\n'));
  return value;
}

export function principal(name = 'agent', extra: Partial<Principal> = {}): Principal {
  return { name, issuerName: 'dev', issuer: 'http://127.0.0.1/dev-issuer', subject: name, subjectClaim: 'sub', roles: [], groups: [], groupsOverage: false, audience: 'api://warden', ...extra };
}

export class RawPg {
  private buffered: Buffer[] = [];
  private waiter: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered.push(d);
      this.waiter?.();
    });
    socket.resume();
  }

  static async connect(target: PostgresTargetConfig): Promise<RawPg> {
    const s = await connectUpstream(target, new Map([['client_encoding', 'UTF8'], ['DateStyle', 'ISO'], ['TimeZone', 'UTC']]), { maxMessageBytes: 1 << 30 });
    return new RawPg(s.socket);
  }

  /** Backend messages up to and including the first one of type `code` (default ReadyForQuery). */
  private async until(code: number = Backend.readyForQuery): Promise<Buffer[]> {
    for (;;) {
      const all = Buffer.concat(this.buffered);
      const msgs: Buffer[] = [];
      let p = 0;
      while (p + 5 <= all.length) {
        const len = all.readInt32BE(p + 1);
        if (p + 1 + len > all.length) break;
        const m = all.subarray(p, p + 1 + len);
        msgs.push(m);
        p += 1 + len;
        if (m[0] === code) {
          this.buffered = p < all.length ? [Buffer.from(all.subarray(p))] : [];
          return msgs;
        }
      }
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
      this.waiter = undefined;
    }
  }

  private untilReady(): Promise<Buffer[]> {
    return this.until();
  }

  /** COPY … FROM STDIN with `data` as the CopyData payloads; returns the messages up to ReadyForQuery. */
  async copyIn(sql: string, data: readonly Buffer[]): Promise<Buffer[]> {
    this.socket.write(encodeQuery(sql));
    const first = await this.until(Backend.copyInResponse);
    this.socket.write(Buffer.concat([...data.map((d) => encodeCopyData(d)), Buffer.from([0x63, 0, 0, 0, 4])]));
    return [...first, ...(await this.untilReady())];
  }

  async query(sql: string): Promise<Buffer[]> {
    this.socket.write(encodeQuery(sql));
    return this.untilReady();
  }

  /** Parse + Bind (text parameters, chosen result formats) + Describe portal + Execute + Sync. */
  async extended(sql: string, params: (string | null)[] = [], resultFormats: number[] = [1]): Promise<Buffer[]> {
    this.socket.write(
      Buffer.concat([
        encodeParse({ name: '', sql, paramTypes: [] }),
        encodeBind({ portal: '', statement: '', paramFormats: [], params: params.map((p) => (p === null ? null : Buffer.from(p))), resultFormats }),
        encodeDescribe({ kind: 'portal', name: '' }),
        encodeExecute({ portal: '', maxRows: 0 }),
        SYNC,
      ]),
    );
    return this.untilReady();
  }

  /**
   * Sends `value` to PostgreSQL as a parameter of type `typeOid` in `format` and reads it back as
   * text: the type's own input (text) or receive (binary) function judges whether it is valid.
   * Returns the text, or the error message.
   */
  async roundTrip(typeOid: number, value: Buffer | null, format: number): Promise<{ text: string | null } | { error: string }> {
    this.socket.write(
      Buffer.concat([
        encodeParse({ name: '', sql: 'SELECT $1::text', paramTypes: [typeOid] }),
        encodeBind({ portal: '', statement: '', paramFormats: [format], params: [value], resultFormats: [0] }),
        encodeExecute({ portal: '', maxRows: 0 }),
        SYNC,
      ]),
    );
    const msgs = await this.untilReady();
    const err = errorOf(msgs);
    if (err) return { error: `${err.code}: ${err.message}` };
    const row = rowsOf(msgs)[0];
    if (!row) return { error: 'no row' };
    return { text: values(row)[0] ?? null };
  }

  async close(): Promise<void> {
    this.socket.end(TERMINATE);
    this.socket.destroy();
  }
}

export const ofType = (msgs: readonly Buffer[], code: number): Buffer[] => msgs.filter((m) => m[0] === code);

export function fieldsOf(msgs: readonly Buffer[]): FieldDescription[] {
  const rd = ofType(msgs, Backend.rowDescription)[0];
  if (!rd) throw new Error(`no RowDescription in ${msgs.map((m) => String.fromCharCode(m[0] ?? 63)).join('')}`);
  return decodeRowDescription(rd);
}

export function rowsOf(msgs: readonly Buffer[]): Buffer[] {
  return ofType(msgs, Backend.dataRow);
}

export function values(row: Buffer): (string | null)[] {
  return decodeDataRow(row).map((v) => (v === null ? null : v.toString('utf8')));
}

export function copyResponseOf(msgs: readonly Buffer[]): CopyResponse {
  const m = ofType(msgs, Backend.copyOutResponse)[0];
  if (!m) throw new Error('no CopyOutResponse');
  return decodeCopyResponse(m);
}

/** The payloads of the CopyData messages. */
export function copyDataOf(msgs: readonly Buffer[]): Buffer[] {
  return ofType(msgs, Backend.copyData).map((m) => copyDataPayload(m));
}

export function errorOf(msgs: readonly Buffer[]): Notice | undefined {
  const m = ofType(msgs, Backend.errorResponse)[0];
  return m ? decodeNotice(m) : undefined;
}
