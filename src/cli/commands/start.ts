// `warden start`: run warden from a configuration file until SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/load.js';
import { createLogger } from '../../log.js';
import { startWarden, type WardenServer } from '../../server.js';
import { configPath } from './check-config.js';

export const summary = 'run warden from a configuration file';

const USAGE = `usage: warden start [--config FILE]

Runs the listeners and the admin server described by the configuration file
(default: $WARDEN_CONFIG, else ./warden.yaml). SIGTERM or SIGINT stops accepting
connections, lets sessions finish for sessions.shutdown_grace, then closes the rest;
a second signal closes everything at once.`;

/** Installs SIGTERM/SIGINT handlers that close `server` gracefully (a second signal: at once). */
export function closeOnSignals(server: WardenServer, after?: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let signalled = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signalled++;
      if (signalled === 1) {
        server.logger.info({ signal }, 'shutting down: no new connections; waiting for sessions to finish');
        void server
          .close()
          .then(async () => {
            await after?.();
            server.logger.info('stopped');
            resolve();
          })
          .catch((err: unknown) => {
            server.logger.error({ err }, 'error during shutdown');
            resolve();
          });
      } else {
        server.logger.warn({ signal }, 'second signal: closing all sessions now');
        void server.close(0);
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

export async function run(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`warden start: ${(err as Error).message}\nrun 'warden start --help' for the options\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let config;
  try {
    config = await loadConfig(configPath(values.config));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`warden: invalid configuration:\n${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const logger = createLogger({ level: config.log.level });
  let server: WardenServer;
  try {
    server = await startWarden(config, { logger });
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'warden could not start');
    process.stderr.write(`warden: could not start: ${(err as Error).message}\n`);
    return 1;
  }
  await closeOnSignals(server);
  return 0;
}
