// Child process for audit-crash.test.ts: records transcripts until it is killed (`burst`) or until
// the file cannot grow (`fill`, run under `ulimit -f`). Prints one line per acknowledged statement:
//   ack <session> <statement-id>
// and, in `fill`, the failure: `error <code>`, then `after <code>` for a call made after it.
import { transcriptConfig } from '../../src/audit/config.js';
import { TranscriptWriteError } from '../../src/audit/errors.js';
import { TranscriptStore, type Recorder } from '../../src/audit/recorder.js';

const [mode, dataDir] = process.argv.slice(2);
if ((mode !== 'burst' && mode !== 'fill') || !dataDir) {
  process.stderr.write('usage: audit-child.ts burst|fill DATA_DIR\n');
  process.exit(2);
}

const store = await TranscriptStore.open(
  transcriptConfig(dataDir, {
    instanceId: 'w1',
    fsync: 'each',
    checkpointEveryRecords: 25,
    segmentMaxBytes: mode === 'burst' ? 8 * 1024 * 1024 : 64 * 1024 * 1024,
    limits: { textBytes: 64 * 1024, valueBytes: 512 * 1024, params: 100, captureBytes: 2 * 1024 * 1024, messageBytes: 8192, recordBytes: 4 * 1024 * 1024 },
  }),
);
process.stdout.write('ready\n');

const principal = { name: 'burst-agent', issuer: 'https://issuer.test', subject: 'sub-1', roles: [], groups: [] };
// Large rows make writes long enough that a SIGKILL can land inside one (a torn tail).
const bigValue = 'v'.repeat(mode === 'burst' ? 400 * 1024 : 2000);

async function session(index: number): Promise<void> {
  const rec: Recorder = store.recorder();
  const sid = `s${index}`;
  await rec.sessionStart({ sessionId: sid, protocol: 'postgres', target: 'shop', principal, client: { address: '127.0.0.1', port: 40000 + index, tls: null } });
  for (let i = 0; ; i++) {
    const st = await rec.statement({
      text: `UPDATE accounts SET balance = balance + $1 WHERE id = ${i}`,
      params: [{ type: 'int4', value: String(i) }],
      classification: { class: 'write', relations: ['public.accounts'] },
      verdict: 'allow',
    });
    process.stdout.write(`ack ${sid} ${st}\n`);
    const rows = i % 4 === 0 ? [[bigValue]] : [[String(i)]];
    await rec.result({ statementId: st, columns: [{ name: 'v', type: 'text', masked: null }], rows: 1, bytes: 10, capture: { mode: 'all', rows, truncated: false } });
  }
}

try {
  await Promise.all([0, 1, 2, 3].map(session));
} catch (err) {
  if (!(err instanceof TranscriptWriteError)) throw err;
  process.stdout.write(`error ${err.code}\n`);
  const after = await store.recorder().sessionStart({ sessionId: 'late', protocol: 'postgres', target: 'shop', principal, client: { address: '127.0.0.1', port: 1, tls: null } }).then(
    () => 'none',
    (e: unknown) => (e instanceof TranscriptWriteError ? e.code : String(e)),
  );
  process.stdout.write(`after ${after}\n`);
  process.stdout.write(`healthy ${store.healthy}\n`);
  await store.close();
  process.stdout.write('closed\n');
}
