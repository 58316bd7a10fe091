// `warden sessions list --table`: relations are recorded as the statement wrote them, so a
// qualified name on the command line must find a statement that wrote the table unqualified
// (the demo's `SELECT … FROM customers` with `--table public.customers`), and the other way round.
import { describe, expect, it } from 'vitest';
import { relationMatches } from '../../src/audit/reader.js';

describe('relationMatches', () => {
  it('matches a bare table name against a qualified relation', () => {
    expect(relationMatches('public.customers', 'customers')).toBe(true);
  });
  it('matches a qualified name against a relation recorded without its schema', () => {
    expect(relationMatches('customers', 'public.customers')).toBe(true);
    expect(relationMatches('"Customers"', 'public.customers')).toBe(true);
  });
  it('does not match another schema or another table', () => {
    expect(relationMatches('sales.customers', 'public.customers')).toBe(false);
    expect(relationMatches('orders', 'public.customers')).toBe(false);
    expect(relationMatches('customers_old', 'customers')).toBe(false);
    expect(relationMatches('public.customers', 'ustomers')).toBe(false);
  });
});
