// `sessions:` — limits every client session lives by. This file is the model for a section:
// name the keys, read each with a typed reader and a range, apply defaults with `??`.
//
//   sessions:
//     shutdown_grace: 30s       # on SIGTERM, wait this long for open sessions
//     max_message_bytes: 1GiB   # largest protocol message accepted from client or server
//     login_timeout: 30s        # startup + authentication must finish within this
//     max_buffered_bytes: 4GiB  # what all sessions together may hold of messages being read whole
import type { SessionsConfig } from '../types.js';
import { GiB, HOUR, KiB, MINUTE, SECOND } from '../units.js';
import type { Field } from '../validate.js';

export const SESSIONS_DEFAULTS: Readonly<SessionsConfig> = {
  shutdownGrace: 30 * SECOND,
  maxMessageBytes: GiB,
  loginTimeout: 30 * SECOND,
  maxBufferedBytes: 4 * GiB,
};

export function readSessions(field: Field): SessionsConfig | undefined {
  const s = field.section(['shutdown_grace', 'max_message_bytes', 'login_timeout', 'max_buffered_bytes']);
  if (!s) return undefined;
  return {
    shutdownGrace: s.get('shutdown_grace').duration({ max: HOUR }) ?? SESSIONS_DEFAULTS.shutdownGrace,
    // PostgreSQL itself refuses messages over 1 GiB; below 64 KiB ordinary queries would fail.
    maxMessageBytes: s.get('max_message_bytes').bytes({ min: 64 * KiB, max: GiB }) ?? SESSIONS_DEFAULTS.maxMessageBytes,
    loginTimeout: s.get('login_timeout').duration({ min: SECOND, max: 10 * MINUTE }) ?? SESSIONS_DEFAULTS.loginTimeout,
    maxBufferedBytes: s.get('max_buffered_bytes').bytes({ min: 64 * KiB, max: 1024 * GiB }) ?? SESSIONS_DEFAULTS.maxBufferedBytes,
  };
}
