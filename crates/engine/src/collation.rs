//! Collating sequences osquery's schemas declare (`COLLATE VERSION`, ...).
//!
//! All four currently share one ordering: strings are compared as runs of digits
//! (numerically) and runs of other characters (bytewise), so `1.10.0 > 1.9.2` and
//! `5.4.0-150 > 5.4.0-42`. The ARCH/DPKG/RHEL flavours (epochs, `~`, release rules)
//! refine this in the SQL-functions work.

use std::cmp::Ordering;

pub const NAMES: [&str; 4] = ["VERSION", "VERSION_ARCH", "VERSION_DPKG", "VERSION_RHEL"];

/// Compares two version strings segment by segment.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_run(a, |c| c.is_ascii_digit());
                let (nb, rb) = split_run(b, |c| c.is_ascii_digit());
                let na = trim_zeros(na);
                let nb = trim_zeros(nb);
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn split_run(s: &[u8], pred: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let end = s.iter().position(|c| !pred(*c)).unwrap_or(s.len());
    s.split_at(end)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|c| *c != b'0').unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::compare_versions;
    use std::cmp::Ordering::*;

    #[test]
    fn orders_numeric_segments_numerically() {
        assert_eq!(compare_versions("1.10.0", "1.9.2"), Greater);
        assert_eq!(compare_versions("5.4.0-150", "5.4.0-42"), Greater);
        assert_eq!(compare_versions("1.0", "1.0"), Equal);
        assert_eq!(compare_versions("1.0", "1.0.1"), Less);
        assert_eq!(compare_versions("01.2", "1.2"), Equal);
        assert_eq!(compare_versions("1.2a", "1.2b"), Less);
        assert_eq!(compare_versions("99999999999999999999999", "1"), Greater);
    }
}
