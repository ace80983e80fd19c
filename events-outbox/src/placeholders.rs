//! A statement read the way PostgreSQL's lexer reads it: its highest `$N` placeholder (not in strings, quoted names, comments or dollar quotes), and where its leading comments end.
//!
//! [`write_raw_with`](crate::write_raw_with) numbers the outbox's own
//! parameters after the statement's bound values. A statement that uses
//! more placeholders than it binds would read the outbox's values into its
//! own columns instead of failing as it would alone, so the count is
//! checked first.

/// The highest `$N` in `sql`, or 0 when it has none.
pub(crate) fn highest(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut highest = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => i = after_quoted(bytes, i, escapes_before(bytes, i)),
            b'"' => i = after_quoted(bytes, i, false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = after_line_comment(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = after_comment(bytes, i + 2),
            b'$' => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits > 0 {
                    let n = sql[i + 1..i + 1 + digits].parse().unwrap_or(usize::MAX);
                    highest = highest.max(n);
                    i += 1 + digits;
                } else {
                    i = after_dollar_quote(bytes, i);
                }
            }
            b if is_identifier_byte(b) => {
                // Skip the whole word, so a `$` inside it (`a$1`: a name) is
                // not taken for a placeholder and an `E` before a quote is
                // seen as a prefix.
                i += bytes[i..]
                    .iter()
                    .take_while(|&&b| is_identifier_byte(b))
                    .count();
            }
            _ => i += 1,
        }
    }
    highest
}

/// Where the comments and whitespace at the start of `sql` end (the byte
/// index of its first token).
pub(crate) fn after_leading_comments(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut i = 0;
    loop {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes[i..].starts_with(b"--") {
            i = after_line_comment(bytes, i);
        } else if bytes[i..].starts_with(b"/*") {
            i = after_comment(bytes, i + 2);
        } else {
            return i;
        }
    }
}

fn is_identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Whether the string opening at `quote` is an escape string (`E'...'`).
fn escapes_before(bytes: &[u8], quote: usize) -> bool {
    quote > 0
        && matches!(bytes[quote - 1], b'E' | b'e')
        && (quote < 2 || !is_identifier_byte(bytes[quote - 2]))
}

/// The index after the string literal (`'...'`) or quoted name (`"..."`)
/// opening at `open`: its quote doubled stands for itself, and in an escape
/// string a backslash escapes the byte after it.
fn after_quoted(bytes: &[u8], open: usize, backslash_escapes: bool) -> usize {
    let quote = bytes[open];
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash_escapes => i += 2,
            b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index after the `--` comment starting at `start` (after its line's end).
fn after_line_comment(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| start + n + 1)
}

/// The index after a (nested) block comment whose content starts at `start`.
fn after_comment(bytes: &[u8], start: usize) -> usize {
    let (mut depth, mut i) = (1, start);
    while i < bytes.len() {
        if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The index after the dollar-quoted string opening at `dollar` (`$$...$$`,
/// `$tag$...$tag$`), or after the `$` when it opens none.
fn after_dollar_quote(bytes: &[u8], dollar: usize) -> usize {
    let tag_len = bytes[dollar + 1..]
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80)
        .count();
    let close = dollar + 1 + tag_len;
    if bytes.get(close) != Some(&b'$') {
        return dollar + 1;
    }
    let tag = &bytes[dollar..=close];
    let body = close + 1;
    bytes[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(bytes.len(), |n| body + n + tag.len())
}

#[cfg(test)]
mod tests {
    use super::{after_leading_comments, highest};

    #[test]
    fn finds_the_first_token_after_leading_comments() {
        assert_eq!(after_leading_comments("WITH x"), 0);
        assert_eq!(
            after_leading_comments("  /* a /* b */ */ -- c\n WITH x"),
            24
        );
        assert_eq!(after_leading_comments("-- only a comment"), 17);
        assert_eq!(after_leading_comments(""), 0);
    }

    #[test]
    fn counts_the_placeholders_of_the_statement() {
        assert_eq!(highest("INSERT INTO t (a, b) VALUES ($1, $2)"), 2);
        assert_eq!(highest("UPDATE t SET a = $2 WHERE id = $1"), 2);
        assert_eq!(highest("UPDATE t SET a=$10,b=$3"), 10);
        assert_eq!(highest("DELETE FROM t"), 0);
        assert_eq!(highest("SELECT $1::int[]"), 1);
    }

    #[test]
    fn not_in_strings_names_comments_or_dollar_quotes() {
        assert_eq!(highest("SELECT '$3', $1"), 1);
        assert_eq!(highest("SELECT 'it''s $3', $1"), 1);
        assert_eq!(highest(r"SELECT E'\'$3', $1"), 1);
        assert_eq!(highest(r"SELECT 'a\', $2"), 2); // a backslash ends nothing here
        assert_eq!(highest(r#"SELECT "col$3", $1"#), 1);
        assert_eq!(highest(r#"SELECT "a""$3", $1"#), 1);
        assert_eq!(highest("SELECT a$3, $1 FROM t"), 1);
        assert_eq!(highest("SELECT $1 -- and $3\n, $2"), 2);
        assert_eq!(highest("SELECT /* $3 /* $4 */ $5 */ $1"), 1);
        assert_eq!(highest("SELECT $$ $3 $$, $1"), 1);
        assert_eq!(highest("SELECT $f$ $3 $ $f$, $2"), 2);
    }

    #[test]
    fn unterminated_input_ends_the_scan() {
        assert_eq!(highest("SELECT $1, 'open $2"), 1);
        assert_eq!(highest("SELECT $1 /* open $2"), 1);
        assert_eq!(highest("SELECT $1, $x$ open $2"), 1);
        assert_eq!(highest("SELECT $"), 0);
        assert_eq!(highest("SELECT $99999999999999999999999"), usize::MAX);
    }
}
