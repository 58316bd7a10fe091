import { describe, expect, it } from 'vitest';
import { forbiddenOptions } from '../../src/pg/client-session.js';

describe('forbiddenOptions', () => {
  it('finds role and session_authorization however libpq spells them', () => {
    expect(forbiddenOptions('-c role=admin')).toBe('role');
    expect(forbiddenOptions('-crole=admin')).toBe('role');
    expect(forbiddenOptions('--role=admin')).toBe('role');
    expect(forbiddenOptions('-c search_path=public -c session_authorization=postgres')).toBe('session_authorization');
    expect(forbiddenOptions('--session-authorization=postgres')).toBe('session_authorization');
    expect(forbiddenOptions('-c  ROLE=x')).toBe('role');
  });

  it('lets ordinary settings through', () => {
    expect(forbiddenOptions('')).toBeUndefined();
    expect(forbiddenOptions('-c search_path=shop,public -c statement_timeout=5s')).toBeUndefined();
    expect(forbiddenOptions('-c application_name=role\\ play')).toBeUndefined();
  });
});
