//! `--connect PATH` and `.connect PATH`: the shell's statements run in another osquery
//! process (ours or osquery's), through its extension manager socket, as osquery's shell
//! does. Each statement opens a connection and calls `query`, then `getQueryColumns`
//! for the column order (the rows come as maps, which have none); a failed status is
//! the statement's error with the status's code and message, and a broken exchange is
//! `Extension call failed: ...` with code 1. Connecting anew per statement means a
//! manager that died and came back serves the next statement, and a dead one fails only
//! the statement that needed it.

use crate::output::Cell;
use crate::shell::SqlError;
use oxquery_extensions::generated::{ExtensionResponse, TExtensionManagerSyncClient};
use oxquery_extensions::{Client, ClientError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket the shell's queries go to.
pub(crate) struct Connection {
    path: PathBuf,
    /// `--thrift_timeout`: how long one read or write through the socket may wait.
    timeout: Duration,
}

/// One statement's result from the other process.
pub(crate) struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Connection {
    /// `timeout` zero waits for ever, as a zero Thrift socket timeout does in osquery.
    pub(crate) fn new(path: &Path, timeout: Duration) -> Connection {
        // A zero socket timeout is refused by the OS call that sets it; the largest one
        // is what "no timeout" means for a shell.
        let timeout = if timeout.is_zero() {
            Duration::MAX
        } else {
            timeout
        };
        Connection {
            path: path.to_owned(),
            timeout,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one statement there: its columns in order and its rows, every value as the
    /// protocol carries it (text; a number where the column's type is numeric and the
    /// text is one, so `--json_typed` shows it as the local engine would).
    pub(crate) fn query(&self, sql: &str) -> Result<Answer, SqlError> {
        let mut client = self.client()?;
        let rows = checked(client.calls().query(sql.to_owned()))?;
        let columns = column_list(checked(client.calls().get_query_columns(sql.to_owned()))?);
        let rows = rows
            .into_iter()
            .map(|mut row| {
                columns
                    .iter()
                    .map(|(name, ty)| match row.remove(name) {
                        Some(value) => typed_cell(value, ty),
                        // A row without one of the columns: shown as NULL.
                        None => Cell::null(),
                    })
                    .collect()
            })
            .collect();
        Ok(Answer {
            columns: columns.into_iter().map(|(name, _)| name).collect(),
            rows,
        })
    }

    /// `getQueryColumns` there: the name and type of each column `sql` returns.
    pub(crate) fn column_types(&self, sql: &str) -> Result<Vec<(String, String)>, SqlError> {
        let mut client = self.client()?;
        Ok(column_list(checked(
            client.calls().get_query_columns(sql.to_owned()),
        )?))
    }

    fn client(&self) -> Result<Client, SqlError> {
        Client::connect(&self.path, self.timeout).map_err(call_failed)
    }
}

/// The rows of a successful answer; a failed status becomes the statement's error.
fn checked(
    answer: thrift::Result<ExtensionResponse>,
) -> Result<Vec<std::collections::BTreeMap<String, String>>, SqlError> {
    let answer = answer.map_err(|e| call_failed(ClientError::Thrift(e)))?;
    let (code, message) = answer
        .status
        .map(|s| (s.code.unwrap_or(0), s.message.unwrap_or_default()))
        .unwrap_or_default();
    if code != 0 {
        return Err(SqlError {
            // The code becomes the exit status of a one-shot query: one that an exit
            // status cannot carry (0 modulo 256 would read as success) is a plain failure.
            code: if (1..=255).contains(&code) { code } else { 1 },
            message,
        });
    }
    Ok(answer.response.unwrap_or_default())
}

/// `getQueryColumns` rows (one `{name: type}` map per column, in order) as pairs.
fn column_list(rows: Vec<std::collections::BTreeMap<String, String>>) -> Vec<(String, String)> {
    rows.into_iter()
        .filter_map(|column| column.into_iter().next())
        .collect()
}

fn call_failed(e: ClientError) -> SqlError {
    SqlError {
        code: 1,
        message: format!("Extension call failed: {e}"),
    }
}

/// `value` as a number cell when `ty` is a numeric column type and `value` is a number.
fn typed_cell(value: String, ty: &str) -> Cell {
    let numeric_type = matches!(ty, "INTEGER" | "BIGINT" | "UNSIGNED BIGINT" | "DOUBLE");
    if numeric_type && is_plain_number(&value) {
        Cell::number(value)
    } else {
        Cell::text(value)
    }
}

/// Whether `text` is a number as SQLite writes one and JSON reads one:
/// `-?digits[.digits][e[+-]digits]`, without a leading zero before other digits.
fn is_plain_number(text: &str) -> bool {
    fn digits(s: &str) -> (usize, &str) {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (n, &s[n..])
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (n, rest) = digits(unsigned);
    if n == 0 || (n > 1 && unsigned.starts_with('0')) {
        return false;
    }
    let rest = match rest.strip_prefix('.') {
        Some(fraction) => match digits(fraction) {
            (0, _) => return false,
            (_, rest) => rest,
        },
        None => rest,
    };
    match rest.strip_prefix(['e', 'E']) {
        Some(exponent) => {
            let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            matches!(digits(exponent), (1.., ""))
        }
        None => rest.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_numbers_only_in_numeric_columns() {
        assert!(typed_cell("12".into(), "BIGINT").numeric);
        assert!(typed_cell("-1.5".into(), "DOUBLE").numeric);
        assert!(typed_cell("18446744073709551615".into(), "UNSIGNED BIGINT").numeric);
        assert!(!typed_cell("12".into(), "TEXT").numeric);
        assert!(!typed_cell("".into(), "INTEGER").numeric);
        assert!(!typed_cell("inf".into(), "DOUBLE").numeric);
        assert!(!typed_cell("x".into(), "INTEGER").numeric);
        for number in ["0", "-0", "10", "1.25", "-3.5e+10", "2E7"] {
            assert!(is_plain_number(number), "{number}");
        }
        for other in [
            "", "-", "01", "+5", ".5", "5.", "1e", "1e+", "0x10", "NaN", "1 ",
        ] {
            assert!(!is_plain_number(other), "{other}");
        }
    }
}
