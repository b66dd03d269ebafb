//! deb822 control data, the format of dpkg's status database, apt's `.sources` files and
//! the Release files of apt's lists: paragraphs separated by blank lines, each a run of
//! `Name: value` fields whose values may continue on lines starting with a space or tab.
//!
//! The reader works on bytes, in one pass, and never fails: a line that is not a field
//! (no colon, a stray continuation at a paragraph's start) is skipped, so a truncated or
//! corrupted file gives the fields that are intact. Lines starting with `#` are comments (apt
//! allows them in `.sources` files; dpkg never writes them).

/// What [`scan`] finds, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// A field: its name as written and its value with surrounding whitespace trimmed
    /// (a multi-line value keeps its inner newlines).
    Field { name: &'a [u8], value: &'a [u8] },
    /// The end of a paragraph (also of the last one when the text ends without a blank
    /// line).
    End,
}

/// Calls `f` with every field and paragraph end of `text`, in one pass over its lines
/// (dpkg's status database is a few megabytes on a big system, so this is the hot loop
/// of `deb_packages`).
pub(crate) fn scan<'a>(text: &'a [u8], mut f: impl FnMut(Event<'a>)) {
    // The field being read, as (name start, colon, value end) in `text`: its value
    // grows over continuation lines, and it is handed out when another line starts.
    let mut pending: Option<(usize, usize, usize)> = None;
    // Whether a paragraph has begun (a non-blank line since the last blank one).
    let mut open = false;
    let mut start = 0;
    let newlines = memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len()));
    for newline in newlines {
        if start > newline {
            break;
        }
        let raw = &text[start..newline];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let (line_start, line_end) = (start, start + line.len());
        start = newline + 1;
        match line.first() {
            Some(b' ' | b'\t') if !is_blank(line) => {
                if let Some((_, _, end)) = pending.as_mut() {
                    *end = line_end;
                }
                open = true;
            }
            None | Some(b' ' | b'\t') => {
                flush(text, &mut pending, &mut f);
                if std::mem::take(&mut open) {
                    f(Event::End);
                }
            }
            Some(first) => {
                flush(text, &mut pending, &mut f);
                open = true;
                if *first != b'#'
                    && let Some(colon) = memchr::memchr(b':', line)
                {
                    pending = Some((line_start, line_start + colon, line_end));
                }
            }
        }
    }
    flush(text, &mut pending, &mut f);
    if open {
        f(Event::End);
    }
}

/// Hands out the pending field, if any.
fn flush<'a>(
    text: &'a [u8],
    pending: &mut Option<(usize, usize, usize)>,
    f: &mut impl FnMut(Event<'a>),
) {
    if let Some((name_start, colon, end)) = pending.take() {
        f(Event::Field {
            name: trim(&text[name_start..colon]),
            value: trim(&text[colon + 1..end]),
        });
    }
}

/// One paragraph's fields, for the small files read whole (apt's sources and Release
/// files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Paragraph<'a> {
    pub fields: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Paragraph<'a> {
    /// The value of the field `name` (matched without regard to case, as deb822 field
    /// names are).
    pub(crate) fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }
}

/// The paragraphs of `text`.
pub(crate) fn paragraphs(text: &[u8]) -> Vec<Paragraph<'_>> {
    let mut out = Vec::new();
    let mut current = Paragraph::default();
    scan(text, |event| match event {
        Event::Field { name, value } => current.fields.push((name, value)),
        Event::End => out.push(std::mem::take(&mut current)),
    });
    out
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
            .into_iter()
            .map(|p| {
                p.fields
                    .into_iter()
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
        let p = &paragraphs(text)[0];
        assert_eq!(p.get("version"), Some(&b"1"[..]));
        assert_eq!(p.get("Missing"), None);
    }

    #[test]
    fn hostile_input_never_panics() {
        let garbage: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let _ = paragraphs(&garbage);
        assert!(fields_of(b"").is_empty());
        assert!(fields_of(b"\n\n \n").is_empty());
        assert_eq!(fields_of(b":"), vec![vec![(String::new(), String::new())]]);
        assert_eq!(fields_of(b" only continuation\n"), vec![vec![]]);
    }
}
