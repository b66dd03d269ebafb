//! `curl`: a GET of each URL the query names, with its status, time and body.

use std::time::Duration;

use oxquery_table::{Op, QueryContext, Rows, TableResult, table};

use super::http::{self, Bounds};

table! {
    name: "curl",
    description: "The answer to an HTTP(S) GET of each URL the query names (url is required): status, round-trip time and body, as osquery's curl table gives them. Only the named URL is contacted (no proxy, no redirects); the request is bounded (5 s to connect, 30 s in all, a body of at most --read_max bytes) and stops with the query. A failed request gives a row with only url, method and user_agent, and a warning saying why.",
    columns: {
        url: Text [INDEX | REQUIRED | OPTIMIZED] "The URL fetched",
        method: Text [] "The HTTP method of the request (GET)",
        user_agent: Text [ADDITIONAL] "The User-Agent sent: osquery, or the one value the query gives (CR and LF removed)",
        response_code: Integer [] "The HTTP status of the answer",
        round_trip_time: BigInt [] "Microseconds from sending the request to the end of the answer",
        bytes: BigInt [] "Bytes of the answer's body",
        result: Text [] "The answer's body",
    },
    // No example names a reachable URL: the examples run in tests, which reach no network.
    examples: [
        "select response_code, bytes from curl where url = 'http://127.0.0.1:9/'",
        "select url, round_trip_time, result from curl where url = 'http://127.0.0.1:9/' and user_agent = 'inventory'",
    ],
}

const TABLE_NAME: &str = "curl";
/// osquery's User-Agent when the query gives none.
const DEFAULT_USER_AGENT: &str = "osquery";

/// `value` without CR and LF, so a query cannot add headers (osquery does the same).
fn header_value(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect()
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let bounds = Bounds {
        connect: Duration::from_secs(5),
        total: Duration::from_secs(30),
        max_body: ctx.settings().read_max,
    };
    generate_with(ctx, rows, bounds)
}

fn generate_with(ctx: &QueryContext, rows: &mut Rows, bounds: Bounds) -> TableResult {
    let user_agent = match ctx.eq_texts(Col::user_agent) {
        None => DEFAULT_USER_AGENT.to_owned(),
        Some(agents) if agents.len() == 1 => header_value(&agents[0]),
        Some(_) => {
            log::warn!("{TABLE_NAME}: can only accept a single user_agent");
            return Ok(());
        }
    };
    if ctx.values(Col::url, Op::Like).next().is_some() {
        log::warn!("{TABLE_NAME}: LIKE on url is not supported: only url = '...' is fetched");
    }
    let Some(urls) = ctx.eq_texts(Col::url) else {
        return Ok(());
    };
    for url in urls {
        ctx.check()?;
        let answer = {
            let (url, user_agent) = (url.clone(), user_agent.clone());
            http::cancellable(ctx, move |_| {
                let agent = http::agent(bounds, false);
                http::get(
                    &agent,
                    &url,
                    &[("User-Agent", user_agent.as_str())],
                    bounds.max_body,
                )
            })
        };
        let Some(answer) = answer else {
            return ctx.check();
        };
        let mut row = rows.row();
        row.set(Col::url, url.as_str());
        row.set(Col::method, "GET");
        row.set(Col::user_agent, user_agent.as_str());
        match answer {
            Err(e) => log::warn!("{TABLE_NAME}: error making the request to {url}: {e}"),
            Ok(answer) => {
                row.set(Col::response_code, i64::from(answer.status));
                row.set(
                    Col::round_trip_time,
                    i64::try_from(answer.round_trip.as_micros()).unwrap_or(i64::MAX),
                );
                row.set(
                    Col::bytes,
                    i64::try_from(answer.body.len()).unwrap_or(i64::MAX),
                );
                row.set(Col::result, String::from_utf8_lossy(&answer.body).as_ref());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cloud::instance::testing::{CLOSED, Reply, Seen, Server, collect};
    use crate::common::testing::{capture_log, within_10s};
    use crate::testing::text;
    use oxquery_table::{Host, Value};

    const SMALL: Bounds = Bounds {
        connect: Duration::from_secs(2),
        total: Duration::from_secs(2),
        max_body: 1024,
    };

    type Logged = Vec<(log::Level, String)>;

    fn scan(constraints: Vec<(Col, Op, String)>) -> (Vec<Vec<Value>>, Logged) {
        within_10s(move || {
            capture_log(|| {
                let host = Host::default();
                let mut ctx = QueryContext::everything(&SPEC, &host);
                for (col, op, value) in constraints {
                    ctx = ctx.with_constraint(col, op, value);
                }
                let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, SMALL));
                result.unwrap();
                rows
            })
        })
    }

    fn url(server: &Server, path: &str) -> (Col, Op, String) {
        (Col::url, Op::Eq, format!("{}{path}", server.base))
    }

    #[test]
    fn status_body_and_bytes_are_what_the_server_sent() {
        let body = "hello from loopback\n\u{e9}t\u{e9}";
        let server = Server::start(move |seen: &Seen| match seen.target.as_str() {
            "/hello" => Reply::Answer(200, body.to_owned()),
            _ => Reply::Answer(404, "not here".to_owned()),
        });
        let (rows, logged) = scan(vec![url(&server, "/hello"), url(&server, "/missing")]);
        assert_eq!(rows.len(), 2, "{logged:?}");
        let by_url = |suffix: &str| {
            rows.iter()
                .find(|r| text(&r[Col::url as usize]).ends_with(suffix))
                .unwrap()
                .clone()
        };
        let hello = by_url("/hello");
        assert_eq!(text(&hello[Col::method as usize]), "GET");
        assert_eq!(text(&hello[Col::user_agent as usize]), "osquery");
        assert_eq!(hello[Col::response_code as usize], Value::Integer(200));
        assert_eq!(
            hello[Col::bytes as usize],
            Value::Integer(body.len() as i64)
        );
        assert_eq!(text(&hello[Col::result as usize]), body);
        assert!(matches!(hello[Col::round_trip_time as usize], Value::Integer(t) if t >= 0));
        let missing = by_url("/missing");
        assert_eq!(missing[Col::response_code as usize], Value::Integer(404));
        assert_eq!(text(&missing[Col::result as usize]), "not here");
        // Only the two named URLs were asked, each once, with osquery's agent.
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| s.method == "GET"));
        assert!(seen.iter().all(|s| s.headers["user-agent"] == "osquery"));
    }

    #[test]
    fn the_user_agent_is_the_one_given_without_line_breaks() {
        let server = Server::start(|_: &Seen| Reply::Answer(200, "ok".to_owned()));
        let (rows, _) = scan(vec![
            url(&server, "/"),
            (
                Col::user_agent,
                Op::Eq,
                "inventory\r\nX-Injected: 1".to_owned(),
            ),
        ]);
        assert_eq!(
            text(&rows[0][Col::user_agent as usize]),
            "inventoryX-Injected: 1"
        );
        let seen = server.seen();
        assert_eq!(seen[0].headers["user-agent"], "inventoryX-Injected: 1");
        assert!(!seen[0].headers.contains_key("x-injected"));

        // Two agents: osquery refuses, and nothing is asked.
        let (rows, logged) = scan(vec![
            url(&server, "/"),
            (Col::user_agent, Op::Eq, "a".to_owned()),
            (Col::user_agent, Op::Eq, "b".to_owned()),
        ]);
        assert!(rows.is_empty());
        assert!(logged.iter().any(|(_, m)| m.contains("single user_agent")));
        assert_eq!(server.seen().len(), 1);
    }

    #[test]
    fn broken_answers_give_a_bare_row_and_a_warning() {
        let big = "x".repeat(SMALL.max_body as usize + 1);
        let cases: Vec<(&str, Reply, &str)> = vec![
            (
                "truncated",
                Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort".to_vec()),
                "body",
            ),
            (
                "broken chunks",
                Reply::Raw(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
                        .to_vec(),
                ),
                "body",
            ),
            ("oversized", Reply::Answer(200, big), "over 1024 bytes"),
            ("not HTTP", Reply::Raw(b"SSH-2.0-OpenSSH\r\n".to_vec()), ""),
            ("silent", Reply::Silent, ""),
        ];
        for (what, reply, says) in cases {
            let reply = std::sync::Mutex::new(Some(reply));
            let server = Server::start(move |_: &Seen| {
                reply.lock().unwrap().take().unwrap_or(Reply::Silent)
            });
            let (rows, logged) = scan(vec![url(&server, "/")]);
            assert_eq!(rows.len(), 1, "{what}");
            let row = &rows[0];
            assert_eq!(text(&row[Col::method as usize]), "GET", "{what}");
            for col in [Col::response_code, Col::bytes, Col::result] {
                assert_eq!(row[col as usize], Value::Null, "{what}: {col:?}");
            }
            assert!(
                logged.iter().any(|(l, m)| *l == log::Level::Warn
                    && m.contains("error making the request")
                    && m.contains(says)),
                "{what}: {logged:?}"
            );
        }
        // Nobody listening: the same.
        let (rows, logged) = scan(vec![(Col::url, Op::Eq, format!("{CLOSED}/"))]);
        assert_eq!(rows.len(), 1);
        assert!(logged.iter().any(|(l, _)| *l == log::Level::Warn));
    }

    #[test]
    fn without_a_url_nothing_is_fetched() {
        let (rows, logged) = scan(vec![(Col::url, Op::Like, "http://%".to_owned())]);
        assert!(rows.is_empty());
        assert!(logged.iter().any(|(_, m)| m.contains("LIKE")));
    }

    #[test]
    fn a_cancelled_query_leaves_a_silent_server() {
        let server = Server::start(|_: &Seen| Reply::Silent);
        let url = format!("{}/", server.base);
        let cancel = oxquery_table::Cancel::new();
        let result = cancel_when_asked(&server, cancel.clone(), move || {
            let host = Host::default();
            let ctx = QueryContext::everything(&SPEC, &host)
                .with_interrupt(oxquery_table::Interrupt::new(cancel, None))
                .with_constraint(Col::url, Op::Eq, url);
            // Bounds far beyond the test's 10 s guard: only the cancel can end the wait.
            let long = Bounds {
                connect: Duration::from_secs(60),
                total: Duration::from_secs(60),
                max_body: 1024,
            };
            let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, long));
            (result.is_err(), rows.len())
        });
        assert_eq!(result, (true, 0));
    }

    #[test]
    fn https_certificates_are_verified() {
        // A self-signed certificate no root vouches for: the request fails, it is not
        // sent to a server that might be anyone.
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let address =
            crate::fetch::curl_certificate::tests::tls_server(&cert.pem(), &key.serialize_pem());
        let (rows, logged) = scan(vec![(Col::url, Op::Eq, format!("https://{address}/"))]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::response_code as usize], Value::Null);
        assert!(
            logged.iter().any(|(l, m)| *l == log::Level::Warn
                && m.contains("error making the request")
                && m.to_lowercase().contains("certificate")),
            "{logged:?}"
        );
    }

    /// Runs `scan` (within 10 s) and cancels `cancel` once `server` has a request.
    pub(crate) fn cancel_when_asked<T: Send + 'static>(
        server: &Server,
        cancel: oxquery_table::Cancel,
        scan: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..1000 {
                    if !server.seen().is_empty() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                cancel.cancel();
            });
            within_10s(scan)
        })
    }
}
