//! A GraphQL document reduced to its tokens: comments, commas and insignificant white space
//! removed, one space kept only where two tokens would otherwise run together. Two
//! documents that differ only in layout normalise to the same text, so they share a response
//! cache entry; it runs in one pass over the text, without a parse, on every cacheable request.

/// Returns the normalised text of `document`.
pub fn normalize(document: &str) -> String {
    let bytes = document.as_bytes();
    let mut out = String::with_capacity(document.len());
    let mut i = 0;
    // Whether white space was skipped since the last token written.
    let mut gap = false;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                gap = true;
                i += 1;
            }
            // U+FEFF, the byte-order mark, is ignored like white space.
            0xEF if bytes[i..].starts_with("\u{feff}".as_bytes()) => {
                gap = true;
                i += 3;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                gap = true;
            }
            b'"' => {
                let end = string_end(bytes, i);
                if gap && needs_space(&out, c) {
                    out.push(' ');
                }
                out.push_str(&document[i..end]);
                i = end;
                gap = false;
            }
            _ => {
                if gap && needs_space(&out, c) {
                    out.push(' ');
                }
                // Copy one UTF-8 character (names and punctuators are ASCII; anything else is
                // a syntax error the parser reports later, kept as it is).
                let len = utf8_len(c);
                let end = (i + len).min(bytes.len());
                out.push_str(&document[i..end]);
                i = end;
                gap = false;
            }
        }
    }
    out
}

/// A space is needed between two tokens only where they would otherwise read as one: a name
/// or number followed by a name, a number or a minus sign (`query Q`, `[1 -2]`), and a string
/// followed by a string (`"" "a"` written `"""a"` would open a block string).
fn needs_space(out: &str, next: u8) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    out.as_bytes().last().is_some_and(|&last| {
        (word(last) && (word(next) || next == b'-')) || (last == b'"' && next == b'"')
    })
}

/// The index just after the string starting at `start` (`"..."` or `"""..."""`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len().min(i)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn layout_does_not_matter() {
        let a = "query Q($n: Int = 1) {\n  # the list\n  products(first: $n, after: \"a, b\") { edges { node { id } } }\n}";
        let b = "query Q($n:Int=1){products(first:$n after:\"a, b\"){edges{node{id}}}}";
        assert_eq!(normalize(a), normalize(b));
        assert_eq!(
            normalize(b),
            "query Q($n:Int=1){products(first:$n after:\"a, b\"){edges{node{id}}}}"
        );
    }

    #[test]
    fn tokens_that_touch_keep_a_space() {
        assert_eq!(
            normalize("{ a ...F } fragment F on Q { b }"),
            "{a...F}fragment F on Q{b}"
        );
        assert_eq!(normalize("{ f(l: [1, 2, -3]) }"), "{f(l:[1 2 -3])}");
        assert_eq!(
            normalize("{ f(s: \"\"\"x # y\"\"\") }"),
            "{f(s:\"\"\"x # y\"\"\")}"
        );
    }

    #[test]
    fn adjacent_strings_stay_apart() {
        // Four strings ("", "a", "", "b") and two (the block string "a", then "b") used to give
        // the same text, `["""a""""b"]`: one cache entry and one trusted-document match for both.
        let four = normalize(r#"{ f(l: ["" "a" "" "b"]) }"#);
        let two = normalize(r#"{ f(l: ["""a""" "b"]) }"#);
        assert_ne!(four, two);
        assert_eq!(four, r#"{f(l:["" "a" "" "b"])}"#);
        assert_eq!(two, r#"{f(l:["""a""" "b"])}"#);
        // Likewise two block strings and six plain ones (`"""a""""""b"""` both).
        let blocks = normalize(r#"{ f(l: ["""a""" """b"""]) }"#);
        let six = normalize(r#"{ f(l: ["" "a" "" "" "b" ""]) }"#);
        assert_ne!(blocks, six);
        assert_eq!(blocks, r#"{f(l:["""a""" """b"""])}"#);
        assert_eq!(
            normalize(r#"{ f(l: ["" """b"""]) }"#),
            r#"{f(l:["" """b"""])}"#
        );
        // Without white space in the source they were one token to begin with.
        assert_eq!(normalize(r#"{ f(s: """a""") }"#), r#"{f(s:"""a""")}"#);
    }
}
