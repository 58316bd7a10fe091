// `--from-store` of the transcript commands (sessions, replay, review, audit verify): read the shared
// PostgreSQL store the instances ship to, instead of one instance's files. Where the store is comes
// from the configuration (`--config FILE`, its transcripts.ship), or from the environment, so a
// password never has to be on a command line.

import { UsageError, type TranscriptLocation } from './cli-support.js';
import { SHIP_DEFAULTS } from './ship-config.js';
import { PostgresTranscriptStore } from './store-postgres.js';

export const STORE_URL_ENV = 'WARDEN_TRANSCRIPT_STORE_URL';
export const STORE_SCHEMA_ENV = 'WARDEN_TRANSCRIPT_STORE_SCHEMA';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

export const FROM_STORE_USAGE = `  --from-store  read the shared PostgreSQL store every instance ships to: the one in --config's
                transcripts.ship, else $${STORE_URL_ENV} (a postgres:// URL; schema
                $${STORE_SCHEMA_ENV}, default ${SHIP_DEFAULTS.schema})`;

/** The shared store for `--from-store`; the caller closes it. */
export function openSharedStore(where: TranscriptLocation, env: NodeJS.ProcessEnv = process.env): PostgresTranscriptStore {
  if (where.config) {
    const ship = where.config.transcripts?.ship;
    if (!ship) throw new UsageError('--from-store: the configuration has no transcripts.ship section');
    return new PostgresTranscriptStore(ship);
  }
  const url = env[STORE_URL_ENV];
  if (url === undefined || url === '') {
    throw new UsageError(`--from-store needs --config FILE (with transcripts.ship) or the ${STORE_URL_ENV} environment variable`);
  }
  if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError(`${STORE_URL_ENV} must be a postgres:// URL`);
  const schema = env[STORE_SCHEMA_ENV] || SHIP_DEFAULTS.schema;
  if (!SCHEMA_NAME.test(schema)) throw new UsageError(`${STORE_SCHEMA_ENV} must be a lower-case SQL name`);
  return new PostgresTranscriptStore({ url, schema, timeout: SHIP_DEFAULTS.timeout });
}
