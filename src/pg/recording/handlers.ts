// The relay's handlers for a session recorded on the recording thread (thread.ts): every message
// goes through untouched, as with the pass-through handlers, except what the statement flow
// refuses whatever the policy says. The flow on the thread sees the client's bytes as they came
// and the server's answers: the relay must do to the session what the flow in line would have
// done, or the thread records a refusal of something that ran.
//
// That is the fast-path FunctionCall (libpq's PQfn: large objects): the flow cannot classify it,
// so it is refused (42501). As in line (SessionFlow.failWith), a Query that fails the transaction
// goes upstream in its place, and the server's error for it is replaced by warden's.
//
// And a Bind, Execute, Describe or Close the flow cannot decode: in line that ends the session
// (08P01); the flow on the thread stops there too, so a session that went on would go on
// unrecorded. They are decoded here as the flow decodes them, and end the session the same way.
//
// For a session recorded as wire records, the handlers also keep its state for the resume points
// (session-state.ts): Parse and ParameterStatus are then taken whole too.
import { Backend, Frontend } from '../../../protocols/postgres/codes.js';
import { encodeErrorResponse } from '../../../protocols/postgres/error-response.js';
import { decodeBind, decodeClose, decodeDescribe, decodeExecute } from '../../../protocols/postgres/frontend-messages.js';
import type { OutputBatch } from '../output-batch.js';
import { FAIL_TRANSACTION_QUERY, FAST_PATH_REFUSED } from '../flow/refusal.js';
import type { DirectionHandler } from '../relay.js';
import type { SessionState } from './session-state.js';

const REFUSAL = encodeErrorResponse(FAST_PATH_REFUSED);

/** The messages the statement flow decodes (throwing ProtocolError), by code. */
const DECODED: Partial<Record<number, (msg: Buffer) => unknown>> = {
  [Frontend.bind]: decodeBind,
  [Frontend.execute]: decodeExecute,
  [Frontend.describe]: decodeDescribe,
  [Frontend.close]: decodeClose,
};
/** The client messages this relay takes whole: those above, Terminate and FunctionCall (a table: asked of every message). */
const WHOLE = new Uint8Array(256);
for (const code of [Frontend.bind, Frontend.execute, Frontend.describe, Frontend.close, Frontend.terminate, Frontend.functionCall]) WHOLE[code] = 1;
/** … and Parse, when the session's state is kept (ThreadHandlerDeps.state). */
const WHOLE_KEEPING_STATE = WHOLE.slice();
WHOLE_KEEPING_STATE[Frontend.parse] = 1;

export interface ThreadHandlerDeps {
  /** Sync points the relay still waits a ReadyForQuery for, the message being handled included (PgRelay.readyDue). */
  readyDue(): number;
  /** A statement the client sent (Query, Execute): the queries metric. */
  onQuery(): void;
  /** A fast-path call was refused: the verdicts metric. */
  onDenied(): void;
  /** Keeps the session's parameters and named prepared statements as they go by (a wire session's resume points). */
  state?: SessionState;
}

export function threadHandlers(deps: ThreadHandlerDeps): { client: DirectionHandler; server: DirectionHandler } {
  /** For each refused call not answered yet: ReadyForQuerys due before the answer to its failing Query. */
  const refused: { ahead: number; replaced: boolean }[] = [];
  const state = deps.state;
  const whole = state ? WHOLE_KEEPING_STATE : WHOLE;
  const client: DirectionHandler = {
    whole(code) {
      if (code === Frontend.query || code === Frontend.execute) deps.onQuery();
      return whole[code] === 1;
    },
    onMessage(code, buf, start, end, out) {
      if (code !== Frontend.functionCall) {
        const msg = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
        // Throws as the flow would: the relay ends the session with a protocol error.
        DECODED[code]?.(msg);
        out.add(buf, start, end);
        if (code === Frontend.parse) state?.parse(msg);
        else if (code === Frontend.close) state?.close(msg);
        return;
      }
      deps.onDenied();
      refused.push({ ahead: deps.readyDue() - 1, replaced: false });
      out.push(FAIL_TRANSACTION_QUERY);
    },
    onBytes(buf, start, end, out) {
      out.add(buf, start, end);
    },
  };
  const server: DirectionHandler = {
    // ReadyForQuery is always delivered whole; an error only while a refusal waits for its answer;
    // ParameterStatus when the session's state is kept.
    whole: (code) => (code === Backend.errorResponse && refused.length > 0) || (code === Backend.parameterStatus && state !== undefined),
    onMessage(code, buf, start, end, out) {
      if (code === Backend.parameterStatus) {
        out.add(buf, start, end);
        state?.parameterStatus(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
        return;
      }
      const head = refused[0];
      if (head?.ahead === 0 && code === Backend.errorResponse) {
        if (!head.replaced) out.push(REFUSAL);
        head.replaced = true;
        return;
      }
      out.add(buf, start, end);
      if (code !== Backend.readyForQuery || !head) return;
      if (head.ahead === 0) refused.shift();
      else for (const r of refused) r.ahead--;
    },
    onBytes(buf, start, end, out) {
      out.add(buf, start, end);
    },
  };
  return { client, server };
}
