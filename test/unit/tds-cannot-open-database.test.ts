// 4060 for a TDS login whose database is not a target: a login that names no database at all
// (tsql without -D) says so, rather than "no target of that name" for an empty name.
import { describe, expect, it } from 'vitest';
import { cannotOpenDatabase } from '../../src/tds/errors.js';

describe('cannotOpenDatabase', () => {
  it('names the unknown target', () => {
    expect(cannotOpenDatabase('shopp')).toMatchObject({
      number: 4060,
      class: 11,
      message: 'Cannot open database "shopp" requested by the login. The login failed. (warden has no target of that name)',
    });
  });
  it('says when no database was given', () => {
    expect(cannotOpenDatabase('').message).toBe(
      'Cannot open database "" requested by the login. The login failed. (no database was given: name a warden target as the database)',
    );
  });
});
