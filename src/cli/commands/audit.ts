// `warden audit verify [path]`: checks that no transcript record was altered, removed, reordered or
// inserted, and that every seal and checkpoint is signed by the trusted key. Exit 0 when intact
// (warnings such as a torn tail after a crash do not fail it), 1 on any break, 2 on bad usage.

import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_DATA_DIR, oneOf, parseCommandArgs, runCommand, transcriptLocation, UsageError, writeOut } from '../../audit/cli-support.js';
import { defaultPublicKeyFile, loadVerifyKey } from '../../audit/keys.js';
import { FROM_STORE_USAGE, openSharedStore } from '../../audit/store-postgres-cli.js';
import { verifyStore } from '../../audit/store-postgres-verify.js';
import { countText, printable, terminalJson } from '../../audit/text.js';
import { verify, type VerifyProgress, type VerifyReport } from '../../audit/verify.js';
import { TranscriptReadError } from '../../audit/errors.js';
import { prune, PRUNE_USAGE } from './audit-prune.js';

export const summary = 'verify transcript integrity (hash chain, segments, signed seals and checkpoints); prune old segments';

const USAGE = `usage: warden audit verify [PATH] [--public-key FILE] [--data-dir DIR | --config FILE] [--format text|json]
       warden audit verify --from-store [--public-key FILE]… [--config FILE] [--format text|json]
       warden audit prune [--config FILE | --data-dir DIR] [--older-than AGE] [--instance ID]… [--dry-run]
                     (removes old segments of stopped chains: see warden audit prune --help)

  PATH               a transcript directory, one segment file, or a data directory (its
                     transcripts/ is checked; default: DIR/transcripts)
  --public-key FILE  the trusted Ed25519 public key (PEM); default DIR/keys/transcript-ed25519.pub.pem.
                     Pin a copy outside the warden host and pass it here.
  --data-dir DIR     warden's data directory (default ${DEFAULT_DATA_DIR})
  --config FILE      read the data directory and transcript settings from warden's configuration
  --format           text (default) or json
${FROM_STORE_USAGE}
                With --from-store, each instance's records are checked against the public keys it
                registered in the store, unless --public-key (once per instance key) pins them.

Exit status: 0 intact, 1 integrity broken (or the store cannot be read), 2 usage error.`;

export async function run(args: string[]): Promise<number> {
  if (args[0] === 'prune') {
    return runCommand('audit prune', PRUNE_USAGE, async () => {
      const { values, positionals } = parseCommandArgs(args.slice(1), {
        config: { type: 'string', short: 'c' },
        'data-dir': { type: 'string' },
        'older-than': { type: 'string' },
        instance: { type: 'string', multiple: true },
        'dry-run': { type: 'boolean' },
      });
      if (values.help) {
        writeOut(PRUNE_USAGE);
        return 0;
      }
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
      return prune(values);
    });
  }
  return runCommand('audit', USAGE, async () => {
    const { values, positionals } = parseCommandArgs(args, {
      'public-key': { type: 'string', multiple: true },
      'from-store': { type: 'boolean' },
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
      format: { type: 'string' },
    });
    if (values.help) {
      writeOut(USAGE);
      return 0;
    }
    const [sub, path, ...extra] = positionals;
    if (sub !== 'verify') throw new UsageError(sub === undefined ? 'a subcommand is required' : `unknown subcommand '${sub}'`);
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const format = oneOf(values.format, ['text', 'json'] as const, '--format', 'text');
    const pinned = values['public-key'] ?? [];
    if (values['from-store']) {
      if (path !== undefined) throw new UsageError('give a PATH or --from-store, not both');
      const shared = openSharedStore(await transcriptLocation(values));
      let report: VerifyReport;
      try {
        const keys = await Promise.all(pinned.map((f) => loadVerifyKey(f)));
        report = await verifyStore(shared, keys.length > 0 ? { publicKey: keys } : {});
      } finally {
        await shared.close();
      }
      if (format === 'json') writeOut(terminalJson(report, 2));
      else writeOut(renderReport(report, pinned.length > 0 ? pinned.join(', ') : 'registered in the store', pinned.length === 0));
      return report.ok ? 0 : 1;
    }
    const where = path === undefined ? await transcriptLocation(values) : undefined;
    const target = where ? where.dir : transcriptsIn(resolve(path as string));
    // Before guessing a key next to it: a missing PATH is the problem to name, not the key.
    if (path !== undefined && !existsSync(target)) throw new TranscriptReadError(`cannot read ${target}: ENOENT (no such file or directory)`);
    const keyFiles = pinned.length > 0 ? pinned : [where?.publicKeyFile ?? guessPublicKey(target, values['data-dir'])];
    const keys = await Promise.all(keyFiles.map((f) => loadVerifyKey(f)));
    const keyFile = keyFiles.join(', ');
    const progress = process.stderr.isTTY && format === 'text' ? ttyProgress() : undefined;
    let report: VerifyReport;
    try {
      report = await verify(target, { publicKey: keys, ...(progress ? { onProgress: progress.update } : {}) });
    } finally {
      progress?.done();
    }
    if (format === 'json') writeOut(terminalJson(report, 2));
    else writeOut(renderReport(report, keyFile, pinned.length === 0));
    return report.ok ? 0 : 1;
  });
}

/** PATH as given, or the transcripts of a data directory given as PATH (one with transcripts/ and keys/). */
function transcriptsIn(path: string): string {
  const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();
  return isDir(join(path, 'transcripts')) && isDir(join(path, 'keys')) ? join(path, 'transcripts') : path;
}

/** The data directory's published key: DIR/keys/… when given, else next to the transcripts. */
function guessPublicKey(target: string, dataDir: string | undefined): string {
  if (dataDir !== undefined) return defaultPublicKeyFile(resolve(dataDir));
  const transcripts = existsSync(target) && statSync(target).isFile() ? dirname(target) : target;
  return join(dirname(transcripts), 'keys', 'transcript-ed25519.pub.pem');
}

function renderReport(r: VerifyReport, keyFile: string, keyFromStore: boolean): string {
  const out: string[] = [];
  const errors = r.findings.filter((f) => f.severity === 'error').length;
  const warnings = r.findings.filter((f) => f.severity === 'warning').length;
  out.push(`${r.ok ? 'INTACT' : 'BROKEN'}  ${printable(r.path, true)}`);
  out.push(`key ${r.keyIds.join(', ')} (${printable(keyFile, true)})`);
  const files = 'keysFromStore' in r ? '' : `${countText(r.files, 'file')}, `; // the store has rows, not files
  out.push(`${files}${countText(r.segments.length, 'segment')}, ${countText(r.records, 'record')}; ${countText(errors, 'error')}, ${countText(warnings, 'warning')}`);
  for (const i of r.instances) {
    const seqs = i.firstSeq === undefined ? 'no records' : `seq ${i.firstSeq}–${i.lastSeq}${i.retention ? ` (older removed by retention)` : ''}`;
    const signed = i.lastSigned === undefined ? 'nothing signed yet' : `signed up to seq ${i.lastSigned}${i.unsigned > 0 ? ` (${i.unsigned} newer records not yet signed)` : ''}`;
    const head = i.head ? `, head: ${i.head.typ} of ${i.head.ts}` : ', no head file';
    out.push(`instance ${printable(i.instance, true)}: ${countText(i.segments, 'segment')}, ${seqs}, ${signed}${head}`);
  }
  if (r.findings.length > 0) {
    out.push('', 'findings:');
    for (const f of r.findings) {
      const where = [f.file, f.line === undefined ? undefined : `line ${f.line}`, f.seq === undefined ? undefined : `seq ${f.seq}`].filter(Boolean).join(' ');
      out.push(`  ${f.severity.padEnd(7)} ${f.kind.padEnd(19)} ${printable(where, true)}`);
      out.push(`          ${printable(f.message, true)}`);
    }
  }
  if (keyFromStore) {
    out.push(
      '',
      'keysFromStore' in r
        ? 'note: the public keys were read from the shared store, which whoever can alter its rows can also replace; pin copies elsewhere and pass --public-key.'
        : 'note: the public key was read from the data directory, which whoever can alter the transcripts can also replace; pin a copy elsewhere and pass --public-key.',
    );
  }
  return out.join('\n');
}

function ttyProgress(): { update: (p: VerifyProgress) => void; done: () => void } {
  let last = 0;
  let shown = false;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      shown = true;
      const pct = p.bytes === 0 ? 100 : Math.floor((p.bytesDone / p.bytes) * 100);
      process.stderr.write(`\rverifying: ${p.filesDone}/${p.files} segments, ${pct}%\u001b[K`);
    },
    done() {
      if (shown) process.stderr.write('\r\u001b[K');
    },
  };
}
