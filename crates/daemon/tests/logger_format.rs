//! Byte-exact result lines for every format osquery writes.

use oxquery_daemon::item::{Decorations, LogLine, Payload, ResultItem, Row, Stream};
use oxquery_daemon::logger::{FormatOptions, HostIdentifier, format_item};
use oxquery_table::Value;

fn row(cells: &[(&str, Value)]) -> Row {
    cells
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn opts() -> FormatOptions {
    FormatOptions {
        host_identifier: HostIdentifier::Fixed("box".into()),
        ..FormatOptions::default()
    }
}

fn item(payload: Payload, decorations: &[(&str, &str)]) -> ResultItem {
    ResultItem {
        name: "pack_p_q".into(),
        unix_time: 1_786_052_772,
        epoch: 0,
        counter: 3,
        decorations: decorations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Decorations>(),
        payload,
    }
}

fn texts(lines: &[LogLine], stream: Stream) -> Vec<&str> {
    assert!(lines.iter().all(|l| l.stream == stream));
    lines
        .iter()
        .map(|l| std::str::from_utf8(&l.text).expect("UTF-8 line"))
        .collect()
}

const HEAD: &str = r#""name":"pack_p_q","hostIdentifier":"box","calendarTime":"Thu Aug  6 21:46:12 2026 UTC","unixTime":1786052772,"epoch":0,"counter":3"#;

fn diff() -> Payload {
    Payload::Diff {
        added: vec![
            row(&[
                ("pid", Value::Integer(42)),
                ("name", Value::Text("a".into())),
            ]),
            row(&[
                ("pid", Value::Integer(43)),
                ("name", Value::Text("b".into())),
            ]),
        ],
        removed: vec![row(&[
            ("pid", Value::Integer(7)),
            ("name", Value::Text("z".into())),
        ])],
    }
}

#[test]
fn event_format_removed_first_strings() {
    let lines = format_item(&item(diff(), &[]), &opts());
    assert_eq!(
        texts(&lines, Stream::Results),
        [
            format!(
                r#"{{{HEAD},"numerics":false,"columns":{{"name":"z","pid":"7"}},"action":"removed"}}"#
            ),
            format!(
                r#"{{{HEAD},"numerics":false,"columns":{{"name":"a","pid":"42"}},"action":"added"}}"#
            ),
            format!(
                r#"{{{HEAD},"numerics":false,"columns":{{"name":"b","pid":"43"}},"action":"added"}}"#
            ),
        ]
    );
}

#[test]
fn event_format_numerics_and_decorations() {
    let o = FormatOptions {
        numerics: true,
        ..opts()
    };
    let payload = Payload::Diff {
        added: vec![row(&[
            ("i", Value::Integer(-5)),
            ("d", Value::Real(2.0)),
            ("e", Value::Real(0.25)),
            ("n", Value::Null),
            ("t", Value::Text("12".into())),
        ])],
        removed: vec![],
    };
    let lines = format_item(&item(payload, &[("host_uuid", "U"), ("user", "r")]), &o);
    assert_eq!(
        texts(&lines, Stream::Results),
        [format!(
            r#"{{{HEAD},"numerics":true,"decorations":{{"host_uuid":"U","user":"r"}},"columns":{{"d":2.0,"e":0.25,"i":-5,"n":"","t":"12"}},"action":"added"}}"#
        )]
    );
}

#[test]
fn decorations_top_level_spread_after_numerics() {
    let o = FormatOptions {
        decorations_top_level: true,
        ..opts()
    };
    let payload = Payload::Diff {
        added: vec![row(&[("x", Value::Text("1".into()))])],
        removed: vec![],
    };
    let lines = format_item(&item(payload, &[("a", "1"), ("b", "2")]), &o);
    assert_eq!(
        texts(&lines, Stream::Results),
        [format!(
            r#"{{{HEAD},"numerics":false,"a":"1","b":"2","columns":{{"x":"1"}},"action":"added"}}"#
        )]
    );
}

#[test]
fn batch_format() {
    let o = FormatOptions {
        event_type: false,
        ..opts()
    };
    let lines = format_item(&item(diff(), &[("d", "v")]), &o);
    assert_eq!(
        texts(&lines, Stream::Results),
        [format!(
            r#"{{"diffResults":{{"removed":[{{"name":"z","pid":"7"}}],"added":[{{"name":"a","pid":"42"}},{{"name":"b","pid":"43"}}]}},{HEAD},"numerics":false,"decorations":{{"d":"v"}}}}"#
        )]
    );
}

#[test]
fn empty_results_per_format() {
    let empty = || Payload::Diff {
        added: vec![],
        removed: vec![],
    };
    assert!(format_item(&item(empty(), &[]), &opts()).is_empty());
    let batch = FormatOptions {
        event_type: false,
        ..opts()
    };
    // osquery serializes a batch without changed rows in the snapshot shape.
    assert_eq!(
        texts(&format_item(&item(empty(), &[]), &batch), Stream::Results),
        [format!(
            r#"{{"snapshot":[],"action":"snapshot",{HEAD},"numerics":false}}"#
        )]
    );
    assert_eq!(
        texts(
            &format_item(&item(Payload::Snapshot(vec![]), &[]), &opts()),
            Stream::Snapshots
        ),
        [format!(
            r#"{{"snapshot":[],"action":"snapshot",{HEAD},"numerics":false}}"#
        )]
    );
    let snap_events = FormatOptions {
        snapshot_event_type: true,
        ..opts()
    };
    assert!(format_item(&item(Payload::Snapshot(vec![]), &[]), &snap_events).is_empty());
}

#[test]
fn snapshot_formats() {
    let rows = vec![
        row(&[("a", Value::Integer(1))]),
        row(&[("a", Value::Integer(2))]),
    ];
    let lines = format_item(
        &item(Payload::Snapshot(rows.clone()), &[("k", "v")]),
        &opts(),
    );
    assert_eq!(
        texts(&lines, Stream::Snapshots),
        [format!(
            r#"{{"snapshot":[{{"a":"1"}},{{"a":"2"}}],"action":"snapshot",{HEAD},"numerics":false,"decorations":{{"k":"v"}}}}"#
        )]
    );
    let o = FormatOptions {
        snapshot_event_type: true,
        ..opts()
    };
    let lines = format_item(&item(Payload::Snapshot(rows), &[]), &o);
    assert_eq!(
        texts(&lines, Stream::Snapshots),
        [
            format!(r#"{{{HEAD},"numerics":false,"columns":{{"a":"1"}},"action":"snapshot"}}"#),
            format!(r#"{{{HEAD},"numerics":false,"columns":{{"a":"2"}},"action":"snapshot"}}"#),
        ]
    );
}

#[test]
fn unicode_and_control_characters() {
    let cells = row(&[
        ("u", Value::Text("héllo 😀 \"q\" \\ /".into())),
        ("c", Value::Text("a\tb\nc\u{1}".into())),
        ("b", Value::Blob(b"\xffok".to_vec())),
    ]);
    let diff = Payload::Diff {
        added: vec![cells.clone()],
        removed: vec![],
    };
    // Differential results: control bytes and invalid UTF-8 become \xHH text first,
    // whose backslash JSON then escapes.
    let lines = format_item(&item(diff, &[]), &opts());
    assert_eq!(
        String::from_utf8(lines[0].text.clone()).unwrap(),
        format!(
            r#"{{{HEAD},"numerics":false,"columns":{{"b":"\\xFFok","c":"a\\x09b\\x0Ac\\x01","u":"héllo 😀 \"q\" \\ /"}},"action":"added"}}"#
        )
    );
    // Snapshots are not byte-escaped: JSON escapes the control characters itself, and
    // bytes that are not UTF-8 are written as they are (osquery's writer copies them).
    let lines = format_item(&item(Payload::Snapshot(vec![cells]), &[]), &opts());
    assert_eq!(
        lines[0].text,
        format!(
            r#"{{"snapshot":[{{"b":"?ok","c":"a\tb\nc\u0001","u":"héllo 😀 \"q\" \\ /"}}],"action":"snapshot",{HEAD},"numerics":false}}"#
        )
        .replace("\"?ok", "\"\u{1}ok")
        .into_bytes()
        .into_iter()
        .map(|b| if b == 1 { 0xff } else { b })
        .collect::<Vec<u8>>()
    );
}

#[test]
fn doubles_both_ways() {
    let cells = row(&[
        ("a", Value::Real(1.0)),
        ("b", Value::Real(1.0 / 3.0)),
        ("c", Value::Real(1e20)),
        ("d", Value::Real(1.5e-7)),
    ]);
    let payload = || Payload::Diff {
        added: vec![cells.clone()],
        removed: vec![],
    };
    let text =
        &String::from_utf8(format_item(&item(payload(), &[]), &opts())[0].text.clone()).unwrap();
    assert!(
        text.contains(
            r#""columns":{"a":"1.0","b":"0.333333333333333","c":"1e+20.0","d":"1.5e-07"}"#
        ),
        "{text}"
    );
    let o = FormatOptions {
        numerics: true,
        ..opts()
    };
    let text = &String::from_utf8(format_item(&item(payload(), &[]), &o)[0].text.clone()).unwrap();
    assert!(
        text.contains(
            r#""columns":{"a":1.0,"b":0.3333333333333333,"c":100000000000000000000.0,"d":1.5e-7}"#
        ),
        "{text}"
    );
}

#[test]
fn nullvalue_and_live_hostname() {
    let o = FormatOptions {
        host_identifier: HostIdentifier::Hostname,
        nullvalue: "NULL".into(),
        ..FormatOptions::default()
    };
    let payload = Payload::Diff {
        added: vec![row(&[("n", Value::Null)])],
        removed: vec![],
    };
    let text = &String::from_utf8(format_item(&item(payload, &[]), &o)[0].text.clone()).unwrap();
    let host = oxquery_sys::host::hostname().unwrap();
    assert!(
        text.contains(&format!(r#""hostIdentifier":"{host}""#)),
        "{text}"
    );
    assert!(text.contains(r#""columns":{"n":"NULL"}"#), "{text}");
}

#[test]
fn lines_are_valid_json() {
    let o = FormatOptions {
        numerics: true,
        event_type: false,
        ..opts()
    };
    for line in format_item(&item(diff(), &[("a", "\u{0}")]), &o) {
        let v: serde_json::Value = serde_json::from_slice(&line.text).unwrap();
        assert_eq!(v["counter"], 3);
    }
}
