// Usage errors of the warden command line: exit status 2, a message naming the command and the
// option, and nothing started (docs/cli.md "Exit status", docs/errors.md "Command line").
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/embedded/seed.js';
import { run } from '../helpers/run.js';

const cli = join(projectRoot(), 'dist', 'src', 'cli', 'main.js');
const scratch = mkdtempSync(join(tmpdir(), 'warden-cli-usage-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function warden(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [cli, ...args], { cwd: scratch, env, timeoutMs: 30_000 });
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((res) => server.close(() => res()));
  return port;
}

describe.skipIf(!existsSync(cli))('warden command line usage errors', () => {
  it('warden demo refuses a bad port or log level before starting anything', async () => {
    const cases: [string[], RegExp][] = [
      [['--port', 'abc'], /^warden demo: --port must be a port number between 0 and 65535 \(0: any free port\), got 'abc'\n/],
      [['--tds-port', '99999'], /^warden demo: --tds-port must be a port number between 0 and 65535 .*got '99999'\n/],
      [['--admin-port', '1.5'], /^warden demo: --admin-port must be a port number .*got '1\.5'\n/],
      [['--log-level', 'verbose'], /^warden demo: --log-level must be one of fatal, error, warn, info, debug, trace, silent, got 'verbose'\n/],
      [['--bogus'], /^warden demo: Unknown option '--bogus'\n/],
    ];
    for (const [flags, message] of cases) {
      const dataDir = join(scratch, `demo-${flags[0]?.replace(/^-+/, '')}`);
      const r = await warden(['demo', '--data-dir', dataDir, ...flags]);
      expect(r.timedOut, flags.join(' ')).toBe(false);
      expect(r.stderr, flags.join(' ')).toMatch(message);
      expect(r.stderr).toContain("run 'warden demo --help' for the options");
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      // Nothing was started: no lock, no policy written.
      expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
    }
  });

  it('warden demo says when its data directory cannot be made, and starts nothing', async () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, '');
    for (const dataDir of [file, join(file, 'sub')]) {
      const r = await warden(['demo', '--data-dir', dataDir]);
      expect(r.stderr).toBe(`warden: cannot use ${dataDir} as the data directory (--data-dir): a file is in the way (the path, or a directory above it, is a file)\n`);
      expect(r.code).toBe(1);
    }
  });

  it('warden start names itself and exits 2 on an unknown option or argument', async () => {
    for (const args of [['--bogus'], ['extra']]) {
      const r = await warden(['start', ...args]);
      expect(r.stderr).toMatch(/^warden start: (Unknown option '--bogus'|Unexpected argument 'extra')/);
      expect(r.code).toBe(2);
    }
  });

  it('warden start takes an empty $WARDEN_CONFIG as unset, as check-config does', async () => {
    const r = await warden(['start'], { WARDEN_CONFIG: '' });
    expect(r.stderr).toBe('warden: invalid configuration:\n./warden.yaml: cannot read the configuration file: no such file\n');
    expect(r.code).toBe(1);
  });

  it('warden start names the listener whose port is taken', async () => {
    const holder = createServer();
    await new Promise<void>((res) => holder.listen(0, '127.0.0.1', res));
    const { port } = holder.address() as AddressInfo;
    try {
      const config = join(scratch, 'busy.yaml');
      writeFileSync(
        config,
        [
          `listen: { postgres: { host: 127.0.0.1, port: ${await closedPort()} }, tds: { host: 127.0.0.1, port: ${port} } }`,
          'plaintext_tokens: loopback',
          'identity: { dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9/dev-issuer" } }',
          'targets: { shop: { protocol: postgres, host: 127.0.0.1, database: shop, user: u, password: p } }',
          'transcripts: { enabled: false }',
          '',
        ].join('\n'),
      );
      const r = await warden(['start', '--config', config]);
      expect(r.stderr).toContain(
        `warden: could not start: listen.tds: cannot listen on 127.0.0.1:${port}: the port is already in use (another process, or another warden) (EADDRINUSE)\n`,
      );
      expect(r.code).toBe(1);
    } finally {
      await new Promise<void>((res) => holder.close(() => res()));
    }
  });

  it('warden token ticket checks --ttl and --url itself and says why warden cannot be reached', async () => {
    const env = { WARDEN_TOKEN: 'not-a-real-token' };
    const port = await closedPort();

    const long = await warden(['token', 'ticket', '--ttl', '13h', '--url', `http://127.0.0.1:${port}`], env);
    expect(long.stderr).toBe("warden token ticket: --ttl: '13h' is longer than the 12 hours (43200 s) a session ticket may last\n");
    expect(long.code).toBe(2);

    const badUrl = await warden(['token', 'ticket', '--url', 'warden.internal:9187'], env);
    expect(badUrl.stderr).toBe("warden token ticket: --url must be an http(s) URL, got 'warden.internal:9187'\n");
    expect(badUrl.code).toBe(2);

    const unreachable = await warden(['token', 'ticket', '--ttl', '12h', '--url', `http://127.0.0.1:${port}`], env);
    expect(unreachable.stderr).toBe(`warden token ticket: cannot reach warden at http://127.0.0.1:${port}: ECONNREFUSED\n`);
    expect(unreachable.code).toBe(1);
  });
});
