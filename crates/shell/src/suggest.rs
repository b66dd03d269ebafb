//! "Did you mean": the registered table name nearest to a misspelt one.

/// The name in `names` nearest to `typed` by edit distance (a transposition counts as
/// one edit), if it is close enough to be a likely typo: at most a third of the typed
/// length, between 1 and 3 edits. Ties go to the first name in `names` order.
pub(crate) fn nearest<'a>(
    typed: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    let limit = (typed.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    for name in names {
        let distance = edit_distance(&typed, &name.to_ascii_lowercase());
        // Equal names are not a typo (the name exists: something else failed).
        if distance == 0 {
            return None;
        }
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, name));
        }
    }
    best.map(|(_, name)| name)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps
/// of two neighbours, each one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the usual table: two back (for swaps), the previous, the current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The unknown table SQLite names in `message` (`no such table: NAME`), without a
/// schema prefix.
pub(crate) fn missing_table(message: &str) -> Option<&str> {
    let name = message.strip_prefix("no such table: ")?;
    Some(name.rsplit_once('.').map_or(name, |(_, table)| table))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &[
        "process_envs",
        "process_open_files",
        "processes",
        "users",
        "user_groups",
        "time",
        "file",
    ];

    fn near(typed: &str) -> Option<&'static str> {
        nearest(typed, NAMES.iter().copied())
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("proccesses", "processes"), 1);
        assert_eq!(edit_distance("porcesses", "processes"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("user", "users"), 1);
    }

    #[test]
    fn typos_find_their_table() {
        assert_eq!(near("proccesses"), Some("processes"));
        assert_eq!(near("PROCESES"), Some("processes"));
        assert_eq!(near("porcesses"), Some("processes"));
        assert_eq!(near("user"), Some("users"));
        assert_eq!(near("tiem"), Some("time"));
    }

    #[test]
    fn far_or_exact_names_find_nothing() {
        assert_eq!(near("xyz"), None);
        assert_eq!(
            near("usr"),
            None,
            "two edits are too many for three letters"
        );
        assert_eq!(near("docker_containers"), None);
        assert_eq!(near("processes"), None);
        assert_eq!(near(""), None);
    }

    #[test]
    fn the_table_is_read_from_the_message() {
        assert_eq!(
            missing_table("no such table: proccesses"),
            Some("proccesses")
        );
        assert_eq!(
            missing_table("no such table: main.proccesses"),
            Some("proccesses")
        );
        assert_eq!(missing_table("near \"x\": syntax error"), None);
    }
}
