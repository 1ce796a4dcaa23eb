//! Counting lexical tokens before anything parses the document: the first, cheapest bound,
//! which also keeps brackets from nesting deep enough to exhaust the parser's stack.

use super::refusal::Refusal;

/// Brackets nested deeper than this are refused while counting tokens, before the parser
/// (which recurses once per level) sees them. No query within the depth limits comes close.
const MAX_NESTING: usize = 64;

/// Counts GraphQL tokens, stopping as soon as there are more than `max`. Whitespace, commas
/// and comments are not tokens; a string is one token.
pub fn count_tokens(query: &str, max: usize) -> Result<usize, Refusal> {
    let bytes = query.as_bytes();
    let (mut i, mut tokens, mut nesting) = (0, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'+'))
                {
                    i += 1;
                }
            }
            b'{' | b'(' | b'[' => {
                nesting += 1;
                if nesting > MAX_NESTING {
                    return Err(Refusal::over(
                        "max_query_depth",
                        "nested brackets",
                        MAX_NESTING,
                    ));
                }
                i += 1;
            }
            b'}' | b')' | b']' => {
                nesting = nesting.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
        tokens += 1;
        if tokens > max {
            return Err(Refusal::over("max_query_tokens", "tokens", max));
        }
    }
    Ok(tokens)
}
