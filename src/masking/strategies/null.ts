// null: every value becomes SQL NULL. Valid for every type, in both formats.
export function nullify(): null {
  return null;
}
