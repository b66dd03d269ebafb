//! Version orderings: the `VERSION*` collating sequences and `version_compare()`.
//!
//! One implementation serves both, so `ORDER BY v COLLATE VERSION_DPKG` and
//! `version_compare(a, b, 'DPKG')` can never disagree.
//!
//! - `VERSION` (no flavour): runs of digits compare numerically, everything else
//!   bytewise, so `1.10.0 > 1.9.2` and `5.4.0-150 > 5.4.0-42`.
//! - `VERSION_ARCH`: pacman's `vercmp` (`[epoch:]version[-pkgrel]`).
//! - `VERSION_DPKG`: Debian policy / dpkg (`[epoch:]upstream[-revision]`).
//! - `VERSION_RHEL`: rpm (`[epoch:]version[-release]`, `rpmvercmp` with `~` and `^`).

use rusqlite::Connection;
use std::cmp::Ordering;

/// Which package manager's rules to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Generic,
    Arch,
    Dpkg,
    Rhel,
}

impl Flavor {
    /// The flavour named by `version_compare`'s third argument (case-insensitive).
    pub fn from_name(name: &str) -> Option<Flavor> {
        match name.to_ascii_uppercase().as_str() {
            "ARCH" => Some(Flavor::Arch),
            "DPKG" => Some(Flavor::Dpkg),
            "RHEL" => Some(Flavor::Rhel),
            _ => None,
        }
    }
}

pub const NAMES: [(&str, Flavor); 4] = [
    ("VERSION", Flavor::Generic),
    ("VERSION_ARCH", Flavor::Arch),
    ("VERSION_DPKG", Flavor::Dpkg),
    ("VERSION_RHEL", Flavor::Rhel),
];

/// Registers the four collating sequences on `conn`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    for (name, flavor) in NAMES {
        conn.create_collation(name, move |a: &str, b: &str| {
            compare(flavor, a.as_bytes(), b.as_bytes())
        })?;
    }
    Ok(())
}

/// Compares two version strings under `flavor`.
pub fn compare(flavor: Flavor, a: &[u8], b: &[u8]) -> Ordering {
    match flavor {
        Flavor::Generic => compare_versions(a, b),
        Flavor::Arch => pacman::compare(a, b),
        Flavor::Dpkg => dpkg::compare(a, b),
        Flavor::Rhel => rpm::compare(a, b),
    }
}

/// The generic ordering: digit runs numerically, other bytes bytewise.
pub fn compare_versions(mut a: &[u8], mut b: &[u8]) -> Ordering {
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_run(a, |c| c.is_ascii_digit());
                let (nb, rb) = split_run(b, |c| c.is_ascii_digit());
                let ord = compare_digits(na, nb);
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

/// Compares digit strings as numbers of any length (no overflow).
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (trim_zeros(a), trim_zeros(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Splits `[epoch:]version[-release]` the way rpm and pacman do: the epoch is a
/// leading digit run ended by `:`, the release follows the last `-`.
fn split_evr(s: &[u8]) -> (Option<&[u8]>, &[u8], Option<&[u8]>) {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let (epoch, rest) = if s.get(digits) == Some(&b':') {
        (Some(&s[..digits]), &s[digits + 1..])
    } else {
        (None, s)
    };
    match rest.iter().rposition(|c| *c == b'-') {
        Some(dash) => (epoch, &rest[..dash], Some(&rest[dash + 1..])),
        None => (epoch, rest, None),
    }
}

/// An empty or missing epoch is epoch 0 (pacman and rpm agree).
fn epoch_or_zero(e: Option<&[u8]>) -> &[u8] {
    match e {
        Some(e) if !e.is_empty() => e,
        _ => b"0",
    }
}

mod pacman {
    use super::{epoch_or_zero, segment_order, split_evr};
    use std::cmp::Ordering;

    /// `alpm_pkg_vercmp`: epoch, then version, then pkgrel only when both have one
    /// (so `1.5-1` equals `1.5`).
    pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let (e1, v1, r1) = split_evr(a);
        let (e2, v2, r2) = split_evr(b);
        segments(epoch_or_zero(e1), epoch_or_zero(e2))
            .then_with(|| segments(v1, v2))
            .then_with(|| match (r1, r2) {
                (Some(r1), Some(r2)) => segments(r1, r2),
                _ => Ordering::Equal,
            })
    }

    /// pacman's copy of `rpmvercmp`: alphanumeric segments, numbers beat letters,
    /// and (unlike rpm) a longer separator run wins (`2___a > 2_a`).
    pub fn segments(a: &[u8], b: &[u8]) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
        let (mut one, mut two) = (0usize, 0usize);
        let (mut p1, mut p2) = (0usize, 0usize);
        while at(a, one) != 0 && at(b, two) != 0 {
            while at(a, one) != 0 && !at(a, one).is_ascii_alphanumeric() {
                one += 1;
            }
            while at(b, two) != 0 && !at(b, two).is_ascii_alphanumeric() {
                two += 1;
            }
            if at(a, one) == 0 || at(b, two) == 0 {
                break;
            }
            let (sep1, sep2) = (one - p1, two - p2);
            if sep1 != sep2 {
                return sep1.cmp(&sep2);
            }
            p1 = one;
            p2 = two;
            let isnum = at(a, p1).is_ascii_digit();
            let class = |c: u8| {
                if isnum {
                    c.is_ascii_digit()
                } else {
                    c.is_ascii_alphabetic()
                }
            };
            while at(a, p1) != 0 && class(at(a, p1)) {
                p1 += 1;
            }
            while at(b, p2) != 0 && class(at(b, p2)) {
                p2 += 1;
            }
            if let Some(ord) = segment_order(&a[one..p1], &b[two..p2], isnum) {
                return ord;
            }
            one = p1;
            two = p2;
        }
        let (c1, c2) = (at(a, one), at(b, two));
        if c1 == 0 && c2 == 0 {
            return Ordering::Equal;
        }
        // A leftover alpha part never beats the end of the other string.
        if (c1 == 0 && !c2.is_ascii_alphabetic()) || c1.is_ascii_alphabetic() {
            Ordering::Less
        } else {
            Ordering::Greater
        }
    }
}

mod rpm {
    use super::{epoch_or_zero, segment_order, split_evr};
    use std::cmp::Ordering;

    /// rpm's EVR comparison: epoch, version, then release only when both have one.
    pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
        let (e1, v1, r1) = split_evr(a);
        let (e2, v2, r2) = split_evr(b);
        rpmvercmp(epoch_or_zero(e1), epoch_or_zero(e2))
            .then_with(|| rpmvercmp(v1, v2))
            .then_with(|| match (r1, r2) {
                (Some(r1), Some(r2)) => rpmvercmp(r1, r2),
                _ => Ordering::Equal,
            })
    }

    /// `rpmvercmp`: alphanumeric segments; `~` sorts before anything (even the
    /// end), `^` sorts after the end but before any other segment.
    pub fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
        let is_sep = |c: u8| c != 0 && !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
        let (mut one, mut two) = (0usize, 0usize);
        while at(a, one) != 0 || at(b, two) != 0 {
            while is_sep(at(a, one)) {
                one += 1;
            }
            while is_sep(at(b, two)) {
                two += 1;
            }
            let (c1, c2) = (at(a, one), at(b, two));
            if c1 == b'~' || c2 == b'~' {
                if c1 != b'~' {
                    return Ordering::Greater;
                }
                if c2 != b'~' {
                    return Ordering::Less;
                }
                one += 1;
                two += 1;
                continue;
            }
            if c1 == b'^' || c2 == b'^' {
                if c1 == 0 {
                    return Ordering::Less;
                }
                if c2 == 0 {
                    return Ordering::Greater;
                }
                if c1 != b'^' {
                    return Ordering::Greater;
                }
                if c2 != b'^' {
                    return Ordering::Less;
                }
                one += 1;
                two += 1;
                continue;
            }
            if c1 == 0 || c2 == 0 {
                break;
            }
            let isnum = c1.is_ascii_digit();
            let class = |c: u8| {
                if isnum {
                    c.is_ascii_digit()
                } else {
                    c.is_ascii_alphabetic()
                }
            };
            let (mut e1, mut e2) = (one, two);
            while class(at(a, e1)) {
                e1 += 1;
            }
            while class(at(b, e2)) {
                e2 += 1;
            }
            if let Some(ord) = segment_order(&a[one..e1], &b[two..e2], isnum) {
                return ord;
            }
            one = e1;
            two = e2;
        }
        match (at(a, one), at(b, two)) {
            (0, 0) => Ordering::Equal,
            (0, _) => Ordering::Less,
            _ => Ordering::Greater,
        }
    }
}

mod dpkg {
    use super::compare_digits;
    use std::cmp::Ordering;

    /// dpkg: numeric epoch, upstream version, revision (missing revision is "0",
    /// which compares equal to an empty one).
    pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
        let (e1, v1, r1) = parse(a);
        let (e2, v2, r2) = parse(b);
        compare_digits(e1, e2)
            .then_with(|| verrevcmp(v1, v2))
            .then_with(|| verrevcmp(r1, r2))
    }

    /// The epoch is everything before the first `:` when that is all digits
    /// (dpkg would reject anything else; a collation cannot fail, so such a string
    /// is taken whole as the upstream version); the revision follows the last `-`.
    fn parse(s: &[u8]) -> (&[u8], &[u8], &[u8]) {
        let (epoch, rest) = match s.iter().position(|c| *c == b':') {
            Some(colon) if s[..colon].iter().all(u8::is_ascii_digit) => {
                (&s[..colon], &s[colon + 1..])
            }
            _ => (&b""[..], s),
        };
        match rest.iter().rposition(|c| *c == b'-') {
            Some(dash) => (epoch, &rest[..dash], &rest[dash + 1..]),
            None => (epoch, rest, &b""[..]),
        }
    }

    /// Sort weight of a non-digit: `~` first, then the end of the string, then
    /// letters, then everything else.
    fn order(c: u8) -> i32 {
        match c {
            0 => 0,
            b'~' => -1,
            c if c.is_ascii_digit() => 0,
            c if c.is_ascii_alphabetic() => i32::from(c),
            c => i32::from(c) + 256,
        }
    }

    fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
        let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
        let (mut i, mut j) = (0usize, 0usize);
        while at(a, i) != 0 || at(b, j) != 0 {
            while (at(a, i) != 0 && !at(a, i).is_ascii_digit())
                || (at(b, j) != 0 && !at(b, j).is_ascii_digit())
            {
                let (ac, bc) = (order(at(a, i)), order(at(b, j)));
                if ac != bc {
                    return ac.cmp(&bc);
                }
                i += 1;
                j += 1;
            }
            let (si, sj) = (i, j);
            while at(a, i).is_ascii_digit() {
                i += 1;
            }
            while at(b, j).is_ascii_digit() {
                j += 1;
            }
            let ord = compare_digits(&a[si..i], &b[sj..j]);
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}

/// Orders two version segments of `a` and `b` at the same position (rpm's and pacman's
/// loops share this step). An empty `b` segment means the kinds differ: the numeric one
/// is newer. `None` when the segments are equal.
fn segment_order(s1: &[u8], s2: &[u8], isnum: bool) -> Option<Ordering> {
    if s2.is_empty() {
        return Some(if isnum {
            Ordering::Greater
        } else {
            Ordering::Less
        });
    }
    let ord = if isnum {
        compare_digits(s1, s2)
    } else {
        s1.cmp(s2)
    };
    (ord != Ordering::Equal).then_some(ord)
}

#[cfg(test)]
mod tests {
    use super::{Flavor, compare, compare_versions};
    use std::cmp::Ordering::{self, *};

    fn check(flavor: Flavor, cases: &[(&str, &str, Ordering)]) {
        for (a, b, want) in cases {
            assert_eq!(
                compare(flavor, a.as_bytes(), b.as_bytes()),
                *want,
                "{flavor:?}: {a} vs {b}"
            );
            assert_eq!(
                compare(flavor, b.as_bytes(), a.as_bytes()),
                want.reverse(),
                "{flavor:?}: {b} vs {a}"
            );
        }
    }

    #[test]
    fn orders_numeric_segments_numerically() {
        let cmp = |a: &str, b: &str| compare_versions(a.as_bytes(), b.as_bytes());
        assert_eq!(cmp("1.10.0", "1.9.2"), Greater);
        assert_eq!(cmp("5.4.0-150", "5.4.0-42"), Greater);
        assert_eq!(cmp("1.0", "1.0"), Equal);
        assert_eq!(cmp("1.0", "1.0.1"), Less);
        assert_eq!(cmp("01.2", "1.2"), Equal);
        assert_eq!(cmp("1.2a", "1.2b"), Less);
        assert_eq!(cmp("99999999999999999999999", "1"), Greater);
    }

    /// pacman's test/util/vercmptest.sh.
    #[test]
    fn pacman_vercmp_cases() {
        check(
            Flavor::Arch,
            &[
                ("1.5.0", "1.5.0", Equal),
                ("1.5.1", "1.5.0", Greater),
                ("1.5.1", "1.5", Greater),
                ("1.5.0-1", "1.5.0-1", Equal),
                ("1.5.0-1", "1.5.0-2", Less),
                ("1.5.0-1", "1.5.1-1", Less),
                ("1.5.0-2", "1.5.1-1", Less),
                ("1.5-1", "1.5.1-1", Less),
                ("1.5-2", "1.5.1-1", Less),
                ("1.5-2", "1.5.1-2", Less),
                ("1.5", "1.5-1", Equal),
                ("1.5-1", "1.5", Equal),
                ("1.1-1", "1.1", Equal),
                ("1.0-1", "1.1", Less),
                ("1.1-1", "1.0", Greater),
                ("1.5b-1", "1.5-1", Less),
                ("1.5b", "1.5", Less),
                ("1.5b-1", "1.5", Less),
                ("1.5b", "1.5.1", Less),
                ("1.0a", "1.0alpha", Less),
                ("1.0alpha", "1.0b", Less),
                ("1.0b", "1.0beta", Less),
                ("1.0beta", "1.0rc", Less),
                ("1.0rc", "1.0", Less),
                ("1.5.a", "1.5", Greater),
                ("1.5.b", "1.5.a", Greater),
                ("1.5.1", "1.5.b", Greater),
                ("1.5.b-1", "1.5.b", Equal),
                ("1.5-1", "1.5.b", Less),
                ("2.0", "2_0", Equal),
                ("2.0_a", "2_0.a", Equal),
                ("2.0a", "2.0.a", Less),
                ("2___a", "2_a", Greater),
                ("0:1.0", "0:1.0", Equal),
                ("0:1.0", "0:1.1", Less),
                ("1:1.0", "0:1.0", Greater),
                ("1:1.0", "0:1.1", Greater),
                ("1:1.0", "2:1.1", Less),
                ("1:1.0", "0:1.0-1", Greater),
                ("1:1.0-1", "0:1.1-1", Greater),
                ("0:1.0", "1.0", Equal),
                ("0:1.0", "1.1", Less),
                ("0:1.1", "1.0", Greater),
                ("1:1.0", "1.0", Greater),
                ("1:1.0", "1.1", Greater),
                ("1:1.1", "1.1", Greater),
            ],
        );
    }

    /// rpm's tests/rpmvercmp.at.
    #[test]
    fn rpmvercmp_cases() {
        check(
            Flavor::Rhel,
            &[
                ("1.0", "1.0", Equal),
                ("1.0", "2.0", Less),
                ("2.0.1", "2.0.1", Equal),
                ("2.0", "2.0.1", Less),
                ("2.0.1a", "2.0.1", Greater),
                ("5.5p1", "5.5p2", Less),
                ("5.5p1", "5.5p10", Less),
                ("10xyz", "10.1xyz", Less),
                ("xyz10", "xyz10.1", Less),
                ("xyz.4", "8", Less),
                ("xyz.4", "2", Less),
                ("5.5p2", "5.6p1", Less),
                ("5.6p1", "6.5p1", Less),
                ("6.0.rc1", "6.0", Greater),
                ("10b2", "10a1", Greater),
                ("10a2", "10b2", Less),
                ("1.0a", "1.0aa", Less),
                ("10.0001", "10.1", Equal),
                ("10.0001", "10.0039", Less),
                ("4.999.9", "5.0", Less),
                ("20101121", "20101122", Less),
                ("2_0", "2_0", Equal),
                ("2.0", "2_0", Equal),
                ("a+", "a_", Equal),
                ("+a", "_a", Equal),
                ("_+", "+_", Equal),
                ("_+", "_", Equal),
                ("+", "_", Equal),
                ("1.0~rc1", "1.0~rc1", Equal),
                ("1.0~rc1", "1.0", Less),
                ("1.0~rc1", "1.0~rc2", Less),
                ("1.0~rc1~git123", "1.0~rc1", Less),
                ("1.0^", "1.0^", Equal),
                ("1.0^", "1.0", Greater),
                ("1.0^git1", "1.0", Greater),
                ("1.0^git1", "1.0^git2", Less),
                ("1.0^git1", "1.01", Less),
                ("1.0^20160101", "1.0.1", Less),
                ("1.0^20160102", "1.0^20160101^git1", Greater),
                ("1.0~rc1^git1", "1.0~rc1", Greater),
                ("1.0^git1", "1.0^git1~pre", Greater),
                // EVR handling on top of rpmvercmp.
                ("1:1.0-1", "2.0-1", Greater),
                ("1.0-1.el9", "1.0-2.el9", Less),
                ("1.0", "1.0-5", Equal),
            ],
        );
    }

    /// Debian policy §5.6.12 and dpkg's own examples.
    #[test]
    fn dpkg_cases() {
        check(
            Flavor::Dpkg,
            &[
                ("1.0~rc1", "1.0", Less),
                ("1:0.9", "2.0", Greater),
                ("1.0-1", "1.0-1ubuntu1", Less),
                ("~~", "~~a", Less),
                ("~~a", "~", Less),
                ("~", "", Less),
                ("", "a", Less),
                ("1.0", "1.0-0", Equal),
                ("1.0", "1.0-1", Less),
                ("0:1.0", "1.0", Equal),
                ("1.2.3", "1.2.10", Less),
                ("1.0a", "1.0+", Less),
                ("1.0+dfsg", "1.0", Greater),
                ("2.30-1", "2.30-1+deb12u1", Less),
                ("1:1.0", "1.1", Greater),
                ("1.001", "1.1", Equal),
            ],
        );
    }
}
