//! Text that a guest controls (its output, log lines, WIT docs, audit record fields), made safe to print on a
//! terminal: [`escape`] spells out every character that could move the cursor, recolour or retitle the
//! terminal, or start a line that looks like the host's own.
//!
//! JSON output needs none of this for C0 controls (serde escapes them); human-readable output goes through
//! [`escape`].

use std::borrow::Cow;

/// `text` with every control character written out, so that printing it never drives the terminal:
///
/// - the C0 controls but tab (ESC, CR, LF, BEL, backspace, …), DEL, and the C1 controls (U+0080–U+009F, which
///   some terminals obey as 8-bit CSI/OSC), as `\n`, `\r` or `\u{1b}`;
/// - the Unicode bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which reorder
///   what is shown (a "Trojan Source" line), as `\u{202e}`.
///
/// A newline in `text` never starts a new line of output. Text without such characters is returned as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::escape;
    use std::borrow::Cow;

    #[test]
    fn control_characters_are_spelled_out_and_plain_text_is_untouched() {
        assert!(matches!(
            escape("plain text, tabs\tand ünïcödé"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape("\x1b[2J\x1b]0;pwned\x07done"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}done"
        );
        assert_eq!(
            escape("one\nINFO are: forged\r\n"),
            "one\\nINFO are: forged\\r\\n"
        );
        assert_eq!(escape("\u{7f}\u{9b}31m"), "\\u{7f}\\u{9b}31m");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    #[test]
    fn escaped_text_has_no_control_character_left() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let escaped = escape(&all);
        assert!(!escaped.chars().any(super::needs_escape), "{escaped:?}");
        assert!(!escaped.contains('\n') && !escaped.contains('\x1b'));
    }
}
