// warden with one masking rule (customers.ssn, partial) and any extra YAML sections (transcripts:, rules: …).
import { startTestWarden, type TestWarden } from './warden.js';

export function startSsnMaskedWarden(extraYaml = ''): Promise<TestWarden> {
  return startTestWarden({
    yaml: `
masking:
  rules:
    - { name: national-ids, columns: [customers.ssn], strategy: partial, options: { keep_last: 4 } }
${extraYaml}
`,
  });
}
