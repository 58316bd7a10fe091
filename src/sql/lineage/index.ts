export { lineage } from './statement.js';
export type {
  CatalogView, Comparison, Derivation, Laundering, LaunderingKind, LineageOptions, LineageResult, OutputColumn,
  PredicateClause, PredicateColumn, SourceColumn, Transform,
} from './types.js';
