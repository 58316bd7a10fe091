// SQL classification and column lineage with PostgreSQL's own parser. Call initSqlParser() once
// at start; everything else is synchronous.
export { initSqlParser, isSqlParserReady } from './parser.js';
export { classify, configureClassifier, SqlClassifier, type ClassifierOptions } from './classify.js';
export { DEFAULT_DANGEROUS_FUNCTIONS, PURE_BUILTIN_FUNCTIONS } from './functions.js';
export * from './lineage/index.js';
export * from './types.js';
