// formatExplain: what `warden explain-mask` prints.
import { describe, expect, it } from 'vitest';
import { formatExplain } from '../../src/masking/explain.js';

describe('formatExplain', () => {
  it('does not claim a statement returns no rows when no rule applies and nothing was described', () => {
    const text = formatExplain({
      principal: 'nobody',
      target: 'shop',
      rules: [],
      statements: [{ text: 'SELECT 1 AS one', verdict: { action: 'allow' }, findings: [], columns: [] }],
    });
    expect(text).toBe(
      [
        'principal nobody on target shop: no masking rule applies (results pass unmasked)',
        '',
        'statement 1: SELECT 1 AS one',
        '  verdict: allow',
        '  columns: all in clear (no masking rule applies to this principal)',
      ].join('\n'),
    );
  });

  it('still says so for a statement without rows when rules apply', () => {
    const text = formatExplain({
      principal: 'agent',
      target: 'shop',
      rules: ['national-ids'],
      statements: [{ text: 'SET search_path = public', verdict: { action: 'allow' }, findings: [], columns: [] }],
    });
    expect(text).toContain('  columns: none (the statement returns no rows)');
  });
});
