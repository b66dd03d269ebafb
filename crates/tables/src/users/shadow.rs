//! `shadow`: password aging and status from `/etc/shadow` (readable by root only).

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "shadow",
    description: "Password state and aging of local accounts, from /etc/shadow; no rows (and a log line) when the file cannot be read, e.g. when not running as root.",
    columns: {
        password_status: Text [] "active, locked, not_set or empty",
        hash_alg: Text [] "Hash scheme identifier of the stored password ($id$ prefix), if any",
        last_change: BigInt [] "Day (since 1970-01-01) of the last password change; -1 if unset",
        min: BigInt [] "Minimum days between changes; -1 if unset",
        max: BigInt [] "Maximum days a password stays valid; -1 if unset",
        warning: BigInt [] "Days of warning before expiry; -1 if unset",
        inactive: BigInt [] "Days after expiry before the account is disabled; -1 if unset",
        expire: BigInt [] "Day (since 1970-01-01) the account expires; -1 if unset",
        flag: BigInt [] "Reserved field; -1 if unset",
        username: Text [INDEX | OPTIMIZED] "Account name",
    },
    examples: ["select username, password_status from shadow"],
}

const SHADOW_PATH: &str = "/etc/shadow";

/// One `/etc/shadow` entry; numeric fields are -1 when empty (as `getspent` reports them).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    password: String,
    numbers: [i64; 7],
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() || matches!(line[0], b'#' | b'+' | b'-') {
        return None;
    }
    let f: Vec<&[u8]> = line.split(|b| *b == b':').collect();
    if f.len() != 9 || f[0].is_empty() {
        return None;
    }
    let mut numbers = [-1_i64; 7];
    for (slot, raw) in numbers.iter_mut().zip(&f[2..]) {
        if !raw.is_empty() {
            *slot = std::str::from_utf8(raw).ok()?.parse().ok()?;
        }
    }
    Some(Entry {
        name: String::from_utf8_lossy(f[0]).into_owned(),
        password: String::from_utf8_lossy(f[1]).into_owned(),
        numbers,
    })
}

fn status(password: &str) -> &'static str {
    if password == "!!" {
        "not_set"
    } else if password.starts_with(['!', '*', 'x']) {
        "locked"
    } else if password.is_empty() {
        "empty"
    } else {
        "active"
    }
}

/// The `$id$` of a crypt(3) hash (`$6$salt$...` → `6`), word characters only.
fn hash_alg(password: &str) -> Option<&str> {
    let rest = password.strip_prefix('$')?;
    let end = rest.find('$')?;
    let id = &rest[..end];
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then_some(id)
}

fn generate_from(text: &[u8], ctx: &QueryContext, rows: &mut Rows) {
    let names = ctx.eq_texts(Col::username);
    for e in text.split(|b| *b == b'\n').filter_map(parse_line) {
        if names.as_ref().is_some_and(|n| !n.contains(&e.name)) {
            continue;
        }
        let mut row = rows.row();
        row.set(Col::password_status, status(&e.password));
        if let Some(alg) = hash_alg(&e.password) {
            row.set(Col::hash_alg, alg);
        }
        let cols = [
            Col::last_change,
            Col::min,
            Col::max,
            Col::warning,
            Col::inactive,
            Col::expire,
            Col::flag,
        ];
        for (c, n) in cols.into_iter().zip(e.numbers) {
            row.set(c, n);
        }
        row.set(Col::username, e.name);
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    match std::fs::read(SHADOW_PATH) {
        Ok(text) => generate_from(&text, ctx, rows),
        Err(e) => log::info!("Table shadow: cannot read {SHADOW_PATH} ({e}); no rows"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op, Value};
    use std::process::Command;

    const FIXTURE: &[u8] = b"root:$6$salt$hash:19700:0:99999:7:::\n\
        daemon:*:19000:0:99999:7:::\n\
        nopass::19001::::::\n\
        fresh:!!:19002:1:2:3:4:5:6\n\
        locked:!$y$j9T$abc:19003:0:99999:7:30:20000:\n\
        # comment\n\
        garbage line without colons\n\
        bad:x:notnum:0:0:0:0:0:\n\
        \xff\xfe:\x00:1:2:3:4:5:6:7\n";

    fn run(ctx: &QueryContext, text: &[u8]) -> Rows<'static> {
        let mut rows = Rows::for_context(ctx);
        generate_from(text, ctx, &mut rows);
        rows
    }

    #[test]
    fn fixture_fields() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = run(&ctx, FIXTURE);
        let names: Vec<String> = rows
            .column(Col::username)
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "root",
                "daemon",
                "nopass",
                "fresh",
                "locked",
                "\u{fffd}\u{fffd}"
            ]
        );
        let get = |i: usize, c: Col| rows.get(i).unwrap()[c as usize].clone();
        assert_eq!(get(0, Col::password_status), Value::from("active"));
        assert_eq!(get(0, Col::hash_alg), Value::from("6"));
        assert_eq!(get(0, Col::inactive), Value::from(-1));
        assert_eq!(get(1, Col::password_status), Value::from("locked"));
        assert_eq!(get(1, Col::hash_alg), Value::Null);
        assert_eq!(get(2, Col::password_status), Value::from("empty"));
        assert_eq!(get(2, Col::min), Value::from(-1));
        assert_eq!(get(3, Col::password_status), Value::from("not_set"));
        assert_eq!(get(3, Col::flag), Value::from(6));
        assert_eq!(get(4, Col::password_status), Value::from("locked"));
        assert_eq!(get(4, Col::expire), Value::from(20000));
        let ctx =
            QueryContext::everything(&SPEC, &host).with_constraint(Col::username, Op::Eq, "fresh");
        assert_eq!(run(&ctx, FIXTURE).len(), 1);
        let huge = vec![b'a'; 1 << 20];
        assert_eq!(run(&QueryContext::everything(&SPEC, &host), &huge).len(), 0);
    }

    #[test]
    fn live_matches_getent_shadow_when_readable() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        if std::fs::File::open(SHADOW_PATH).is_err() {
            assert!(rows.is_empty());
            return;
        }
        let out = Command::new("getent")
            .args(["-s", "files", "shadow"])
            .output()
            .unwrap();
        let expected: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let lc = if f[2].is_empty() { "-1" } else { f[2] };
                (f[0].to_owned(), lc.to_owned())
            })
            .collect();
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r[Col::username as usize].to_string(),
                    r[Col::last_change as usize].to_string(),
                )
            })
            .collect();
        assert_eq!(got, expected);
    }
}
