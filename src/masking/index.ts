// Wire-level masking of sensitive data. The relay talks to it through the contract in types.ts;
// createMaskingEngine() is where it starts. See docs/masking.md.
export * from './types.js';
export { createMaskingEngine, Masker, WardenMaskingEngine, type MaskingEngineOptions } from './engine.js';
export { explainMask, formatExplain, type ExplainResult, type ExplainStatement, type ExplainColumn } from './explain.js';
export { TargetCatalog, CatalogError } from './catalog.js';
export { BUILTIN_CLASSIFIERS, luhnValid, ibanValid } from './classifiers.js';
