//! `prometheus_metrics`: the samples of the Prometheus targets the config lists.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oxquery_table::{PrometheusTargets, QueryContext, Rows, TableResult, Value, table};

use super::http::{self, Bounds};

table! {
    name: "prometheus_metrics",
    description: "The samples each Prometheus target in the config's prometheus_targets serves in the text exposition format ({\"prometheus_targets\": {\"urls\": [...], \"timeout\": seconds}}). Only the listed URLs are contacted, each once per scan (redirects followed), within the timeout (1 s by default) and --read_max bytes; a target that fails or answers too much gives no rows and a warning. Without prometheus_targets there are no rows.",
    columns: {
        target_name: Text [] "The target's URL, as the config lists it",
        metric_name: Text [] "The sample's name with its labels, as served (http_requests_total{code=\"200\"})",
        metric_value: Double [] "The sample's value",
        timestamp_ms: BigInt [] "When the target answered, in milliseconds since the epoch",
    },
    examples: ["select target_name, metric_name, metric_value from prometheus_metrics"],
}

const TABLE_NAME: &str = "prometheus_metrics";

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let targets = ctx.host().live().prometheus_targets;
    generate_with(ctx, rows, targets, ctx.settings().read_max)
}

fn generate_with(
    ctx: &QueryContext,
    rows: &mut Rows,
    targets: Option<PrometheusTargets>,
    max_body: u64,
) -> TableResult {
    let Some(targets) = targets else {
        log::info!("{TABLE_NAME}: the config has no prometheus_targets");
        return Ok(());
    };
    // Each URL once, in order (osquery keeps them in a map).
    let mut urls = targets.urls;
    urls.sort();
    urls.dedup();
    let wait = Duration::from_secs(targets.timeout_secs.max(1));
    let bounds = Bounds {
        connect: wait,
        total: wait,
        max_body,
    };
    for url in urls {
        ctx.check()?;
        let answer = {
            let url = url.clone();
            http::cancellable(ctx, move |_| {
                let answer = http::get(&http::agent(bounds, true), &url, &[], bounds.max_body);
                (answer, SystemTime::now())
            })
        };
        let (answer, when) = match answer {
            None => return ctx.check(),
            Some(pair) => pair,
        };
        let body = match answer {
            Ok(answer) if answer.status == 200 => answer.body,
            Ok(answer) => {
                log::warn!(
                    "{TABLE_NAME}: failed on scrape of target {url}: answered {}",
                    answer.status
                );
                continue;
            }
            Err(e) => {
                log::warn!("{TABLE_NAME}: failed on scrape of target {url}: {e}");
                continue;
            }
        };
        let timestamp_ms = when
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let text = String::from_utf8_lossy(&body);
        for (name, value) in samples(&text) {
            let mut row = rows.row();
            row.set(Col::target_name, url.as_str());
            row.set(Col::metric_name, name);
            row.set(Col::metric_value, value.map_or(Value::Null, Value::Real));
            row.set(Col::timestamp_ms, timestamp_ms);
        }
    }
    Ok(())
}

/// The samples of exposition text: each line that is not empty or a `#` comment gives
/// its name (labels included) and value; a line with no value is passed over, a value
/// that is not a number is `None`. Label values may hold spaces (osquery splits at
/// every space, which cuts such a name in two).
fn samples(text: &str) -> Vec<(&str, Option<f64>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = match (line.find('{'), line.find(' ')) {
            (Some(brace), Some(space)) if brace < space => match labels_end(&line[brace..]) {
                Some(end) => brace + end,
                None => continue,
            },
            (_, Some(space)) => space,
            (_, None) => continue,
        };
        let (name, rest) = line.split_at(name_end);
        let Some(value) = rest.split_whitespace().next() else {
            continue;
        };
        out.push((name, parse_value(value)));
    }
    out
}

/// The length of `{...}` at the start of `text`, quotes and escapes respected.
fn labels_end(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// A sample value: a float, `NaN`, `+Inf` or `-Inf`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::instance::testing::{CLOSED, Reply, Seen, Server, collect};
    use crate::common::testing::{capture_log, within_10s};
    use crate::testing::text;
    use oxquery_table::Host;

    type Logged = Vec<(log::Level, String)>;

    const EXPOSITION: &str = "# HELP http_requests_total The total number of HTTP requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
\n\
# A label value with a space and an escaped quote.\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find \\\"file\\\" x\"} 1.458255915e9\n\
metric_without_timestamp_and_labels 12.47\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
no_value_here\n\
not_a_number 12abc\n";

    fn scan(targets: Option<PrometheusTargets>, max_body: u64) -> (Vec<Vec<Value>>, Logged) {
        within_10s(move || {
            capture_log(|| {
                let host = Host::default();
                let ctx = QueryContext::everything(&SPEC, &host);
                let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, targets, max_body));
                result.unwrap();
                rows
            })
        })
    }

    fn targets(urls: &[String]) -> Option<PrometheusTargets> {
        Some(PrometheusTargets {
            urls: urls.to_vec(),
            timeout_secs: 2,
        })
    }

    #[test]
    fn rows_are_the_samples_served() {
        let server = Server::start(|seen: &Seen| {
            match seen.target.as_str() {
            "/metrics" => Reply::Answer(200, EXPOSITION.to_owned()),
            // A redirect is followed, as osquery's client does.
            "/old" => Reply::Raw(
                b"HTTP/1.1 302 Found\r\nLocation: /metrics\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            _ => Reply::Answer(404, String::new()),
        }
        });
        let url = format!("{}/metrics", server.base);
        let (rows, logged) = scan(targets(&[url.clone(), url.clone()]), 1 << 20);
        let got: Vec<(String, Value)> = rows
            .iter()
            .map(|r| {
                (
                    text(&r[Col::metric_name as usize]),
                    r[Col::metric_value as usize].clone(),
                )
            })
            .collect();
        let expected = vec![
            (
                r#"http_requests_total{method="post",code="200"}"#,
                Value::Real(1027.0),
            ),
            (
                r#"http_requests_total{method="post",code="400"}"#,
                Value::Real(3.0),
            ),
            (
                r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find \"file\" x"}"#,
                Value::Real(1.458255915e9),
            ),
            ("metric_without_timestamp_and_labels", Value::Real(12.47)),
            (
                r#"something_weird{problem="division by zero"}"#,
                Value::Real(f64::INFINITY),
            ),
            ("not_a_number", Value::Null),
        ];
        let expected: Vec<(String, Value)> = expected
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        assert_eq!(got, expected, "{logged:?}");
        assert!(
            rows.iter()
                .all(|r| text(&r[Col::target_name as usize]) == url)
        );
        let stamps: Vec<&Value> = rows
            .iter()
            .map(|r| &r[Col::timestamp_ms as usize])
            .collect();
        assert!(stamps.iter().all(|s| *s == stamps[0]));
        assert!(matches!(stamps[0], Value::Integer(ms) if *ms > 1_600_000_000_000));
        // The same URL twice is scraped once.
        assert_eq!(server.seen().len(), 1);

        let old = format!("{}/old", server.base);
        let (rows, _) = scan(targets(std::slice::from_ref(&old)), 1 << 20);
        assert_eq!(rows.len(), 6);
        assert!(
            rows.iter()
                .all(|r| text(&r[Col::target_name as usize]) == old)
        );
    }

    #[test]
    fn a_failing_target_gives_a_warning_and_the_others_their_rows() {
        let good = Server::start(|_: &Seen| Reply::Answer(200, "up 1\n".to_owned()));
        let failing: Vec<(&str, Reply)> = vec![
            ("silent", Reply::Silent),
            (
                "truncated",
                Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nup 1\n".to_vec()),
            ),
            ("oversized", Reply::Answer(200, "up 1\n".repeat(100))),
            ("not found", Reply::Answer(404, "up 1\n".to_owned())),
        ];
        for (what, reply) in failing {
            let reply = std::sync::Mutex::new(Some(reply));
            let bad = Server::start(move |_: &Seen| {
                reply.lock().unwrap().take().unwrap_or(Reply::Silent)
            });
            let urls = [
                format!("{}/metrics", bad.base),
                format!("{}/metrics", good.base),
            ];
            let (rows, logged) = scan(targets(&urls), 100);
            assert_eq!(rows.len(), 1, "{what}: {logged:?}");
            assert_eq!(text(&rows[0][Col::target_name as usize]), urls[1]);
            assert!(
                logged.iter().any(|(l, m)| *l == log::Level::Warn
                    && m.contains("failed on scrape")
                    && m.contains(&urls[0])),
                "{what}: {logged:?}"
            );
        }
        let (rows, logged) = scan(targets(&[format!("{CLOSED}/metrics")]), 100);
        assert!(rows.is_empty());
        assert!(logged.iter().any(|(l, _)| *l == log::Level::Warn));
    }

    #[test]
    fn without_targets_nothing_is_asked() {
        let (rows, logged) = scan(None, 100);
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(_, m)| m.contains("no prometheus_targets"))
        );
        let (rows, _) = scan(targets(&[]), 100);
        assert!(rows.is_empty());
    }

    #[test]
    fn hostile_exposition_text_never_panics() {
        for text in [
            "{",
            "a{b=\"} 1",
            "a{b=\"\\\"} 1\n",
            "\u{0} \u{0}",
            "x{} ",
            "# only\n#",
        ] {
            let _ = samples(text);
        }
        assert_eq!(samples("a{b=\"c\"}"), vec![]);
        assert_eq!(samples("a{b=\"c\"} 2"), vec![("a{b=\"c\"}", Some(2.0))]);
    }

    #[test]
    fn a_cancelled_query_leaves_a_silent_target() {
        let server = Server::start(|_: &Seen| Reply::Silent);
        let slow = Some(PrometheusTargets {
            urls: vec![format!("{}/metrics", server.base)],
            // Far beyond the test's 10 s guard: only the cancel can end the wait.
            timeout_secs: 60,
        });
        let cancel = oxquery_table::Cancel::new();
        let result =
            crate::fetch::curl::tests::cancel_when_asked(&server, cancel.clone(), move || {
                let host = Host::default();
                let ctx = QueryContext::everything(&SPEC, &host)
                    .with_interrupt(oxquery_table::Interrupt::new(cancel, None));
                let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, slow, 100));
                (result.is_err(), rows.len())
            });
        assert_eq!(result, (true, 0));
    }
}
