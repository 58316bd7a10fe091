// What a wire session's resume point carries (wire-recording.ts, "Resume points"): a statement flow
// that replays the session from there, its earlier records gone to retention, must know the
// server's parameters and the named prepared statements as they are at that point, not as they
// were at login. The relay's handlers (handlers.ts) keep them up to date as messages go by: only
// ParameterStatus, a named Parse and Close are looked at, all rare on a session's hot path.
import { decodeClose, decodeParse } from '../../../protocols/postgres/frontend-messages.js';
import { decodeParameterStatus } from '../../../protocols/postgres/session-messages.js';

/** SQL text of named prepared statements kept per session, in characters; statements past it are not kept. */
export const MAX_KEPT_SQL_CHARS = 1024 * 1024;

/** A named prepared statement as its Parse created it. */
export interface KeptStatement {
  name: string;
  sql: string;
  paramTypes: number[];
}

/** What a resume point records of the session's state (ThreadSessionStart's `parameters` and `prepared`). */
export interface SessionStateSnapshot {
  parameters: [string, string][];
  prepared: KeptStatement[];
  /** Named statements were prepared that are not kept (over MAX_KEPT_SQL_CHARS). */
  preparedIncomplete?: true;
}

/**
 * A session's server parameters and named prepared statements, kept as the relay forwards them.
 * A message that does not decode is left to the replaying flow (it refuses it as the flow in line
 * would): nothing here throws.
 */
export class SessionState {
  private readonly parameters: Map<string, string>;
  private readonly prepared = new Map<string, KeptStatement>();
  private sqlChars = 0;
  private incomplete = false;

  constructor(loginParameters: readonly [string, string][]) {
    this.parameters = new Map(loginParameters);
  }

  /** A Parse the client sent (the whole message). The unnamed statement is not kept: each batch replaces it. */
  parse(msg: Buffer): void {
    if (msg[5] === 0) return;
    let p: KeptStatement;
    try {
      p = decodeParse(msg);
    } catch {
      return;
    }
    this.forget(p.name);
    if (this.sqlChars + p.sql.length > MAX_KEPT_SQL_CHARS) {
      this.incomplete = true;
      return;
    }
    this.prepared.set(p.name, { name: p.name, sql: p.sql, paramTypes: p.paramTypes });
    this.sqlChars += p.sql.length;
  }

  /** A Close the client sent (the whole message): a statement closed is forgotten. */
  close(msg: Buffer): void {
    try {
      const t = decodeClose(msg);
      if (t.kind === 'statement') this.forget(t.name);
    } catch {
      // not a Close the server takes either
    }
  }

  /** A ParameterStatus from the server (the whole message). */
  parameterStatus(msg: Buffer): void {
    try {
      const p = decodeParameterStatus(msg);
      this.parameters.set(p.name, p.value);
    } catch {
      // the replaying flow meets the same bytes and ends as the flow in line would
    }
  }

  snapshot(): SessionStateSnapshot {
    return {
      parameters: [...this.parameters],
      prepared: [...this.prepared.values()],
      ...(this.incomplete ? { preparedIncomplete: true as const } : {}),
    };
  }

  private forget(name: string): void {
    const old = this.prepared.get(name);
    if (!old) return;
    this.sqlChars -= old.sql.length;
    this.prepared.delete(name);
  }
}
