//! deb822 control data, the format of dpkg's status database, apt's `.sources` files and
//! the Release files of apt's lists: paragraphs separated by blank lines, each a run of
//! `Name: value` fields whose values may continue on lines starting with a space or tab.
//!
//! The reader works on bytes and never fails: a line that is not a field (no colon, a
//! stray continuation at a paragraph's start) is skipped, so a truncated or corrupted
//! file gives the fields that are intact. Lines starting with `#` are comments (apt
//! allows them in `.sources` files; dpkg never writes them).

/// The paragraphs of `text`, each as the bytes of its lines.
pub(crate) fn paragraphs(text: &[u8]) -> impl Iterator<Item = Paragraph<'_>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        // Skip blank lines before the paragraph.
        loop {
            if rest.is_empty() {
                return None;
            }
            let (line, after) = split_line(rest);
            if !is_blank(line) {
                break;
            }
            rest = after;
        }
        let start = rest;
        let mut len = 0;
        while !rest.is_empty() {
            let (line, after) = split_line(rest);
            if is_blank(line) {
                break;
            }
            len += rest.len() - after.len();
            rest = after;
        }
        Some(Paragraph {
            text: &start[..len],
        })
    })
}

/// One paragraph's lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paragraph<'a> {
    text: &'a [u8],
}

impl<'a> Paragraph<'a> {
    /// The fields in order: the name as written, and the value with surrounding
    /// whitespace trimmed; a multi-line value keeps its inner newlines.
    pub(crate) fn fields(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut rest = self.text;
        std::iter::from_fn(move || {
            loop {
                if rest.is_empty() {
                    return None;
                }
                let (line, after) = split_line(rest);
                let field_start = rest;
                rest = after;
                if matches!(line.first(), Some(b' ' | b'\t' | b'#')) {
                    continue;
                }
                let Some(colon) = memchr::memchr(b':', line) else {
                    continue;
                };
                // The value runs on over continuation lines.
                let mut end = line.len();
                while let Some(&first) = rest.first() {
                    if first != b' ' && first != b'\t' {
                        break;
                    }
                    let (_, after) = split_line(rest);
                    rest = after;
                    end = field_start.len() - rest.len();
                }
                let name = trim(&line[..colon]);
                let value = trim(&field_start[colon + 1..end]);
                return Some((name, value));
            }
        })
    }

    /// Whether the paragraph's first line starts with `prefix` (an InRelease file's
    /// `-----BEGIN PGP SIGNED MESSAGE-----` header, which is no field).
    pub(crate) fn starts_with(self, prefix: &[u8]) -> bool {
        self.text.starts_with(prefix)
    }

    /// The value of the field `name` (matched without regard to case, as deb822 field
    /// names are).
    pub(crate) fn get(self, name: &str) -> Option<&'a [u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// The first line of `text` (without its `\n` or `\r\n`) and what follows it.
fn split_line(text: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match memchr::memchr(b'\n', text) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, &text[text.len()..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// `bytes` without leading and trailing ASCII whitespace.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(text: &[u8]) -> Vec<Vec<(String, String)>> {
        paragraphs(text)
            .map(|p| {
                p.fields()
                    .map(|(n, v)| {
                        (
                            String::from_utf8_lossy(n).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = b"\n\nPackage: a\nStatus: install ok installed\nDescription: short\n long\n .\n more\nVersion: 1\n\
                     \n  \t\n\
                     # comment\r\nPackage: b\r\nno colon here\r\n stray\r\nArch:amd64";
        let got = fields_of(text);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            vec![
                ("Package".into(), "a".into()),
                ("Status".into(), "install ok installed".into()),
                ("Description".into(), "short\n long\n .\n more".into()),
                ("Version".into(), "1".into()),
            ]
        );
        assert_eq!(
            got[1],
            vec![
                ("Package".into(), "b".into()),
                ("Arch".into(), "amd64".into())
            ]
        );
        let p = paragraphs(text).next().unwrap();
        assert_eq!(p.get("version"), Some(&b"1"[..]));
        assert_eq!(p.get("Missing"), None);
    }

    #[test]
    fn hostile_input_never_panics() {
        let garbage: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for p in paragraphs(&garbage) {
            for _ in p.fields() {}
        }
        assert!(fields_of(b"").is_empty());
        assert!(fields_of(b"\n\n \n").is_empty());
        assert_eq!(fields_of(b":"), vec![vec![(String::new(), String::new())]]);
        assert_eq!(fields_of(b" only continuation\n"), vec![vec![]]);
    }
}
