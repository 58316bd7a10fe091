// Text that approvers read (the review page, `warden approvals`) comes from agents: a statement,
// its parameters. Characters that are invisible or move other characters when displayed — bidi
// controls (U+202E reverses what follows; the "Trojan Source" trick), zero-width characters,
// terminal controls (ESC sequences, a lone carriage return that makes a terminal overwrite the
// line) — could make an approver read a harmless text while another runs. They are shown as
// visible placeholders like <U+202E>; line breaks and tabs stay.

/**
 * The text with hidden and reordering characters replaced by `<U+XXXX>`. Self-contained (the
 * review page embeds its source).
 */
export function visibleText(text: string): string {
  return text.replace(
    /\r(?!\n)|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\u{e0000}-\u{e0fff}]/gu,
    (c) => `<U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}>`,
  );
}
