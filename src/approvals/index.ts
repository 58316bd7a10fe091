// Just-in-time approval: statement rules, held statements, decisions, grants. See docs/approvals.md.
export * from './types.js';
export { startApprovals, type Approvals, type ApprovalsDeps } from './start.js';
export { approvalFingerprint, buildHoldRequest, normalizedText, type HoldRequestInput } from './fingerprint.js';
export { createStatementPolicy, RuleStatementPolicy, UNPARSEABLE_RULE } from '../policy/statement-rules.js';
export { ApprovalError } from './model.js';
