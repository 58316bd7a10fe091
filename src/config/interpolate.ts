// `${env:NAME}` references in string values: the whole value or part of it. Secrets (passwords,
// access tokens) stay out of the file this way. "$${" writes a literal "${".
// The resolved text is handed to the field readers; no message ever quotes it.

export interface Interpolation {
  /** The string with every reference replaced (undefined when any reference failed). */
  value?: string;
  /** True when at least one reference was replaced: the value must not be shown in messages. */
  fromEnv: boolean;
  /** Variables referenced but not set. */
  missing: string[];
  /** True when a "${" is not a well-formed ${env:NAME} reference. */
  malformed: boolean;
}

const REFERENCE = /\$\$\{|\$\{([^}]*)\}|\$\{/g;
const ENV_NAME = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;

/** Quick test so plain strings skip the work. */
export function hasReference(text: string): boolean {
  return text.includes('${');
}

export function interpolate(text: string, env: NodeJS.ProcessEnv): Interpolation {
  const missing: string[] = [];
  let malformed = false;
  let fromEnv = false;
  const value = text.replace(REFERENCE, (whole, inner: string | undefined) => {
    if (whole === '$${') return '${';
    const name = inner === undefined ? undefined : ENV_NAME.exec(inner)?.[1];
    if (name === undefined) {
      malformed = true;
      return '';
    }
    fromEnv = true;
    const resolved = env[name];
    if (resolved === undefined) {
      missing.push(name);
      return '';
    }
    return resolved;
  });
  const failed = malformed || missing.length > 0;
  return failed ? { fromEnv, missing, malformed } : { value, fromEnv, missing, malformed };
}
