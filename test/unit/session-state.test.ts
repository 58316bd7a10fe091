// What a wire session's resume point carries (src/pg/recording/session-state.ts): parameters and
// named prepared statements as the relay saw them go by, bounded, and never an exception.
import { describe, expect, it } from 'vitest';
import { encodeClose, encodeParse } from '../../protocols/postgres/frontend-messages.js';
import { encodeParameterStatus } from '../../protocols/postgres/session-messages.js';
import { MAX_KEPT_SQL_CHARS, SessionState } from '../../src/pg/recording/session-state.js';

describe('SessionState', () => {
  it('keeps named statements (not the unnamed one), forgets closed ones, and takes the last definition of a name', () => {
    const s = new SessionState([['client_encoding', 'UTF8']]);
    s.parse(encodeParse({ name: 'a', sql: 'SELECT 1', paramTypes: [] }));
    s.parse(encodeParse({ name: '', sql: 'SELECT 2', paramTypes: [] }));
    s.parse(encodeParse({ name: 'b', sql: 'SELECT $1::int', paramTypes: [23] }));
    s.parse(encodeParse({ name: 'a', sql: 'SELECT 3', paramTypes: [] }));
    s.close(encodeClose({ kind: 'statement', name: 'b' }));
    s.close(encodeClose({ kind: 'portal', name: 'a' })); // a portal of that name: the statement stays
    s.parameterStatus(encodeParameterStatus('application_name', 'x'));
    s.parameterStatus(encodeParameterStatus('client_encoding', 'LATIN1'));
    expect(s.snapshot()).toEqual({
      parameters: [
        ['client_encoding', 'LATIN1'],
        ['application_name', 'x'],
      ],
      prepared: [{ name: 'a', sql: 'SELECT 3', paramTypes: [] }],
    });
  });

  it('stops keeping statements past MAX_KEPT_SQL_CHARS and says so; closing one makes room again', () => {
    const s = new SessionState([]);
    const big = `SELECT '${'x'.repeat(MAX_KEPT_SQL_CHARS / 2)}'`;
    s.parse(encodeParse({ name: 'one', sql: big, paramTypes: [] }));
    s.parse(encodeParse({ name: 'two', sql: big, paramTypes: [] }));
    expect(s.snapshot().prepared.map((p) => p.name)).toEqual(['one']);
    expect(s.snapshot().preparedIncomplete).toBe(true);
    s.close(encodeClose({ kind: 'statement', name: 'one' }));
    s.parse(encodeParse({ name: 'three', sql: big, paramTypes: [] }));
    expect(s.snapshot().prepared.map((p) => p.name)).toEqual(['three']);
  });

  it('ignores messages that do not decode (the replaying flow meets them as the flow in line would)', () => {
    const s = new SessionState([['a', '1']]);
    const cut = encodeParse({ name: 'p', sql: 'SELECT 1', paramTypes: [] }).subarray(0, 9);
    expect(() => s.parse(cut)).not.toThrow();
    expect(() => s.close(Buffer.from([0x43, 0, 0, 0, 6, 0x58, 0]))).not.toThrow(); // target kind 'X'
    expect(() => s.parameterStatus(Buffer.from([0x53, 0, 0, 0, 5, 0x61]))).not.toThrow();
    expect(s.snapshot()).toEqual({ parameters: [['a', '1']], prepared: [] });
  });
});
