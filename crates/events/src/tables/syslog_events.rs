//! `syslog_events` (alias `syslog`): the syslog messages rsyslog forwards into the named
//! pipe `--syslog_pipe_path` (see `oxquery_sys::syslog_pipe` for the pipe, the rsyslog
//! template and what is counted as lost), kept for `--syslog_events_expiry` seconds and at
//! most `--syslog_events_max` of them. Filled by the `syslog` publisher, which runs only
//! with `--enable_syslog`.
//!
//! As in osquery, `time` is when the message was read (it orders the stored events and
//! drives expiry, so a sender's clock cannot push events out or keep them forever) and
//! `datetime` is the message's own time as rsyslog wrote it.

use crate::EventRow;
use oxquery_sys::syslog_pipe::SyslogEvent;
pub use oxquery_table::scan_events as generate;
use oxquery_table::{Value, table};

table! {
    name: "syslog_events",
    description: "Syslog messages rsyslog forwards to osquery through the named pipe --syslog_pipe_path (needs --enable_syslog and rsyslog configured with osquery's CSV template).",
    attributes: [EVENT_BASED],
    columns: {
        time: BigInt [ADDITIONAL] "When the message was read from the pipe (unix seconds)",
        datetime: Text [] "The message's own time as rsyslog wrote it (RFC 3339)",
        host: Text [] "Host name syslog reports for the message",
        severity: Integer [] "Syslog severity, 0 (emergency) to 7 (debug)",
        facility: Text [] "Syslog facility name (auth, cron, daemon, local3, ...)",
        tag: Text [] "The syslog tag (program[pid]), without its trailing colon",
        message: Text [] "The syslog message",
        eid: Text [HIDDEN] "Event ID",
    },
    aliases: ["syslog"],
    examples: [
        "select datetime, host, tag, message from syslog_events where severity <= 3",
        "select * from syslog_events where time > (select unix_time from time) - 3600",
    ],
}

/// The publisher that fills this table.
pub const PUBLISHER: &str = "syslog";

/// The table's row for one message from the pipe.
pub fn row(event: &SyslogEvent) -> Vec<Value> {
    let mut row = EventRow::new(&SPEC);
    row.set(Col::time, event.received);
    row.set(Col::datetime, event.datetime.as_str());
    row.set(Col::host, event.host.as_str());
    row.set(Col::severity, i64::from(event.severity));
    row.set(Col::facility, event.facility.as_str());
    row.set(Col::tag, event.tag.as_str());
    row.set(Col::message, event.message.as_str());
    row.into_values()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_sys::syslog_pipe::parse_line;

    #[test]
    fn a_message_becomes_a_row_in_declaration_order() {
        let line = br#""2026-03-25T17:39:28.717070+02:00","web-1","4","auth","sshd[812]:","Failed password for root""#;
        let event = parse_line(line, 1_774_453_168).unwrap();
        assert_eq!(
            row(&event),
            vec![
                Value::Integer(1_774_453_168),
                Value::from("2026-03-25T17:39:28.717070+02:00"),
                Value::from("web-1"),
                Value::Integer(4),
                Value::from("auth"),
                Value::from("sshd[812]"),
                Value::from("Failed password for root"),
                Value::Null,
            ]
        );
    }
}
