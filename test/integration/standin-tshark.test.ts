// Wireshark's TDS dissector reads the stand-in's bytes without complaint: sessions of tedious
// (TDS 7.4: results, errors, PRINT, transactions, RPCs, prepared statements, a large PLP value,
// ATTENTION), of the captured jTDS client (TDS 7.1, replayed) and of FreeTDS tsql go through a
// recording proxy, are written as a pcap, and `tshark -d tcp.port==PORT,tds` must find TDS in
// every direction and no malformed packet or expert error.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAPTURES, loadCapture } from '../../fixtures/tds/captures.js';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { type RecordingProxy, recordingProxy, writePcap } from './standin-pcap.js';
import { LOGIN, RawTds, SCENARIO, type StandInHarness, startStandIn } from './standin-support.js';
import { tedious } from './standin-tedious-client.js';

const skip = missingClient('tshark');
const PCAP_SERVER_PORT = 14330;

describe.skipIf(skip)('tshark decodes the stand-in’s TDS', () => {
  let h: StandInHarness;
  let proxy: RecordingProxy;
  let dir: string;

  beforeAll(async () => {
    h = await startStandIn('tshark', { logins: [LOGIN, { user: 'babelfish_user', password: '12345678' }] }, false);
    proxy = await recordingProxy(h.port);
    dir = mkdtempSync(join(tmpdir(), 'standin-tshark-'));

    const c = await tedious({ port: proxy.port, encrypt: false });
    await c.batch(SCENARIO.selectAll);
    await c.batch(SCENARIO.twoResults);
    await c.batch(SCENARIO.divideByZero);
    await c.batch(SCENARIO.print);
    await new Promise<void>((resolve, reject) => c.connection.beginTransaction((err) => (err ? reject(err) : resolve())));
    await c.batch(`INSERT INTO customers (full_name, email) VALUES (N'Rolled Back', '${SCENARIO.rollbackEmail}')`);
    await new Promise<void>((resolve, reject) => c.connection.rollbackTransaction((err) => (err ? reject(err) : resolve())));
    const o = SCENARIO.executeSqlOutput;
    await c.execSql(o.statement, [
      { name: 'min', type: 'Decimal', value: Number(o.min), options: { precision: 12, scale: 2 } },
      { name: 'cnt', type: 'Int', value: null, output: true },
      { name: 'label', type: 'NVarChar', value: null, output: true, options: { length: 4000 } },
    ]);
    await c.procedure('dbo.count_active', [
      { name: 'min_rank', type: 'SmallInt', value: 1000 },
      { name: 'cnt', type: 'Int', value: null, output: true },
    ]);
    await c.batch(SCENARIO.large);
    const sleeping = c.batch(SCENARIO.sleep);
    await new Promise((r) => setTimeout(r, 500));
    c.connection.cancel();
    await sleeping;
    await c.close();

    // TDS 7.1: the jTDS capture's client messages, replayed.
    const jtds = loadCapture(CAPTURES.jtds)[0]!;
    const raw = await RawTds.connect(proxy.port);
    for (const m of jtds.client) {
      raw.send(m.wire);
      await raw.next();
    }
    raw.close();

    if (findClient('tsql')) {
      writeFileSync(join(dir, 'freetds.conf'), `[standin]\n\thost = 127.0.0.1\n\tport = ${proxy.port}\n\ttds version = 7.4\n\tencryption = off\n`);
      await run(findClient('tsql')!, ['-S', 'standin', '-U', LOGIN.user, '-P', LOGIN.password, '-D', 'shop', '-o', 'fq'], {
        env: { FREETDSCONF: join(dir, 'freetds.conf') },
        input: `${SCENARIO.selectAll}\ngo\n${SCENARIO.print}\ngo\n`,
        timeoutMs: 30_000,
      });
    }
    await new Promise((r) => setTimeout(r, 200));
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function tshark(pcap: string, ...args: string[]): Promise<string> {
    const r = await run(findClient('tshark')!, ['-r', pcap, '-d', `tcp.port==${PCAP_SERVER_PORT},tds`, ...args], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  }

  it('finds every kind of TDS message and nothing malformed', async () => {
    expect(proxy.connections.length).toBeGreaterThanOrEqual(2);
    const pcap = join(dir, 'standin.pcap');
    writePcap(pcap, proxy.connections, PCAP_SERVER_PORT);
    const types = new Set((await tshark(pcap, '-Y', 'tds', '-T', 'fields', '-e', 'tds.type')).split(/\s+/).filter(Boolean).flatMap((t) => t.split(',')));
    // PRELOGIN, LOGIN7, SQL batch, RPC, ATTENTION, Transaction Manager, responses.
    for (const t of ['18', '16', '1', '3', '6', '14', '4']) expect(types, `TDS packet type ${t}`).toContain(t);
    const bad = await tshark(pcap, '-Y', '_ws.malformed || _ws.expert.severity >= 0x00800000');
    expect(bad).toBe('');
  });

  it('the check itself catches a malformed packet', async () => {
    // One connection whose server sends a COLMETADATA that ends inside a column: tshark must object.
    const pcap = join(dir, 'broken.pcap');
    const broken = Buffer.from([0x04, 0x01, 0x00, 0x0f, 0x00, 0x33, 0x01, 0x00, 0x81, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00]);
    const batch = Buffer.concat([Buffer.from([0x01, 0x01, 0x00, 0x0e, 0x00, 0x00, 0x01, 0x00]), Buffer.from('S\0E\0L\0', 'latin1')]);
    writePcap(pcap, [[{ fromClient: true, data: batch }, { fromClient: false, data: broken }]], PCAP_SERVER_PORT);
    expect(await tshark(pcap, '-Y', '_ws.malformed || _ws.expert.severity >= 0x00800000')).not.toBe('');
  });
});
