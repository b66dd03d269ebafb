//! osquery's SQL functions and version collations, checked through SQL against known
//! vectors: the Community ID spec baselines, Debian policy / rpm / pacman version
//! orderings, standard digests and osquery's exact error messages.

use oxquery_engine::{Engine, TableFilter, instance};
use oxquery_table::Value;

fn engine() -> Engine {
    Engine::new(&[], &TableFilter::default(), instance::current(None)).expect("engine")
}

/// The single value `sql` returns.
fn one(engine: &Engine, sql: &str) -> Value {
    let result = engine.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(result.rows.len(), 1, "{sql}");
    result.rows[0][0].clone()
}

/// The error message `sql` fails with.
fn error(engine: &Engine, sql: &str) -> String {
    match engine.query(sql) {
        Ok(r) => panic!("{sql} succeeded with {:?}", r.rows),
        Err(e) => e.to_string(),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn math_functions() {
    let e = engine();
    assert_eq!(one(&e, "SELECT sqrt(4)"), Value::Real(2.0));
    assert_eq!(one(&e, "SELECT power(2, 10)"), Value::Real(1024.0));
    assert_eq!(one(&e, "SELECT pi()"), Value::Real(std::f64::consts::PI));
    assert_eq!(one(&e, "SELECT degrees(pi())"), Value::Real(180.0));
    assert_eq!(
        one(&e, "SELECT radians(180)"),
        Value::Real(std::f64::consts::PI)
    );
    assert_eq!(one(&e, "SELECT log10(1000)"), Value::Real(3.0));
    assert_eq!(one(&e, "SELECT exp(0)"), Value::Real(1.0));
    assert_eq!(one(&e, "SELECT cos(0)"), Value::Real(1.0));
    assert_eq!(one(&e, "SELECT sqrt('16')"), Value::Real(4.0));

    // ceil/floor: integers unchanged, everything else rounded to an integer.
    assert_eq!(one(&e, "SELECT ceil(2)"), Value::Integer(2));
    assert_eq!(one(&e, "SELECT ceil(2.1)"), Value::Integer(3));
    assert_eq!(one(&e, "SELECT floor(-2.5)"), Value::Integer(-3));
    assert_eq!(one(&e, "SELECT floor(2.9)"), Value::Integer(2));
    assert_eq!(one(&e, "SELECT ceil('2.5')"), Value::Integer(3));
    assert_eq!(one(&e, "SELECT typeof(floor(7.0))"), text("integer"));
    assert_eq!(
        one(&e, "SELECT floor(9223372036854775807)"),
        Value::Integer(i64::MAX)
    );

    // errno → strerror text.
    assert_eq!(
        error(&e, "SELECT sqrt(-1)"),
        "Numerical argument out of domain"
    );
    assert_eq!(
        error(&e, "SELECT acos(2)"),
        "Numerical argument out of domain"
    );
    assert_eq!(
        error(&e, "SELECT log(-1)"),
        "Numerical argument out of domain"
    );
    assert_eq!(error(&e, "SELECT log(0)"), "Numerical result out of range");
    assert_eq!(
        error(&e, "SELECT log10(0)"),
        "Numerical result out of range"
    );
    assert_eq!(
        error(&e, "SELECT power(10, 400)"),
        "Numerical result out of range"
    );
    assert_eq!(
        error(&e, "SELECT power(-8, 0.5)"),
        "Numerical argument out of domain"
    );
    assert_eq!(
        error(&e, "SELECT power(0, -1)"),
        "Numerical result out of range"
    );
    assert_eq!(
        error(&e, "SELECT sin(9e999)"),
        "Numerical argument out of domain"
    );

    for f in [
        "sqrt", "acos", "asin", "atan", "cos", "sin", "tan", "cot", "exp", "log", "log10",
        "degrees", "radians", "ceil", "floor",
    ] {
        assert_eq!(one(&e, &format!("SELECT {f}(NULL)")), Value::Null, "{f}");
    }
    assert_eq!(one(&e, "SELECT power(NULL, 2)"), Value::Null);
    assert_eq!(one(&e, "SELECT power(2, NULL)"), Value::Null);
}

#[test]
fn split_functions() {
    let e = engine();
    assert_eq!(one(&e, "SELECT split('192.168.0.1', '.', 1)"), text("168"));
    // Any character of the tokens splits; empty pieces are dropped.
    assert_eq!(one(&e, "SELECT split('192.168.0.1', '.0', 0)"), text("192"));
    assert_eq!(one(&e, "SELECT split('192.168.0.1', '.0', 2)"), text("1"));
    assert_eq!(one(&e, "SELECT split('a,,b', ',', 1)"), text("b"));
    assert_eq!(one(&e, "SELECT split(' a ; b ', ';', 1)"), text("b"));
    assert_eq!(one(&e, "SELECT split('a, ,b', ',', 1)"), text(""));
    assert_eq!(one(&e, "SELECT split('a.b', '.', 2)"), Value::Null);
    assert_eq!(one(&e, "SELECT split('a.b', '.', -1)"), Value::Null);
    assert_eq!(one(&e, "SELECT split(NULL, '.', 0)"), Value::Null);
    assert_eq!(
        error(&e, "SELECT split('a.b', '', 0)"),
        "Invalid input to split function"
    );

    assert_eq!(
        one(&e, r"SELECT regex_split('192.168.0.1', '\.0', 0)"),
        text("192.168")
    );
    assert_eq!(
        one(&e, "SELECT regex_split('a1b22c', '[0-9]+', 2)"),
        text("c")
    );
    assert_eq!(one(&e, "SELECT regex_split(',a', ',', 0)"), text(""));
    // No trailing empty piece after the last match.
    assert_eq!(one(&e, "SELECT regex_split('a,b,', ',', 2)"), Value::Null);
    assert_eq!(one(&e, "SELECT regex_split('abc', 'x', 0)"), text("abc"));
    assert_eq!(
        error(&e, "SELECT regex_split('x', '(', 0)"),
        "Invalid regex"
    );
    let long = "a".repeat(257);
    assert_eq!(
        error(&e, &format!("SELECT regex_split('x', '{long}', 0)")),
        "Invalid regex"
    );
    assert_eq!(
        error(&e, "SELECT regex_split('x', '', 0)"),
        "Invalid input to split function"
    );
}

#[test]
fn regex_match_function() {
    let e = engine();
    let re = "'([a-z]+)([0-9]+)'";
    assert_eq!(
        one(&e, &format!("SELECT regex_match('--foo123bar', {re}, 0)")),
        text("foo123")
    );
    assert_eq!(
        one(&e, &format!("SELECT regex_match('--foo123bar', {re}, 2)")),
        text("123")
    );
    assert_eq!(
        one(&e, &format!("SELECT regex_match('--foo123bar', {re}, 3)")),
        Value::Null
    );
    assert_eq!(
        one(&e, &format!("SELECT regex_match('nothing', {re}, 0)")),
        Value::Null
    );
    // A group that did not take part in the match is '' (std::smatch).
    assert_eq!(one(&e, "SELECT regex_match('ab', 'a(x)?b', 1)"), text(""));
    assert_eq!(one(&e, "SELECT regex_match(NULL, 'a', 0)"), Value::Null);
    assert_eq!(
        error(&e, "SELECT regex_match('x', '(', 0)"),
        "Invalid regex"
    );
    let ok = "a".repeat(256);
    assert_eq!(
        one(&e, &format!("SELECT regex_match('{ok}', '{ok}', 0)")),
        text(&ok)
    );
    let long = "a".repeat(257);
    assert_eq!(
        error(&e, &format!("SELECT regex_match('x', '{long}', 0)")),
        "Invalid regex: too big, max size is 256 bytes"
    );
    // The compiled pattern is reused across rows of one statement.
    let rows = e
        .query(
            "SELECT regex_match(v, '^v([0-9]+)', 1) FROM \
             (SELECT 'v1' AS v UNION ALL SELECT 'v22' UNION ALL SELECT 'x') ORDER BY 1",
        )
        .unwrap()
        .rows;
    assert_eq!(
        rows,
        vec![vec![Value::Null], vec![text("1")], vec![text("22")]]
    );
}

#[test]
fn inet_aton_and_concat() {
    let e = engine();
    assert_eq!(
        one(&e, "SELECT inet_aton('192.168.0.1')"),
        Value::Integer(3_232_235_521)
    );
    assert_eq!(one(&e, "SELECT inet_aton('0.0.0.0')"), Value::Integer(0));
    assert_eq!(
        one(&e, "SELECT inet_aton('255.255.255.255')"),
        Value::Integer(4_294_967_295)
    );
    assert_eq!(one(&e, "SELECT inet_aton('::1')"), Value::Null);
    assert_eq!(one(&e, "SELECT inet_aton('1.2.3')"), Value::Null);
    assert_eq!(one(&e, "SELECT inet_aton('garbage')"), Value::Null);
    assert_eq!(one(&e, "SELECT inet_aton(NULL)"), Value::Null);

    assert_eq!(
        one(&e, "SELECT concat('a', NULL, 'b', 1, 2.5)"),
        text("ab12.5")
    );
    assert_eq!(one(&e, "SELECT concat()"), Value::Null);
    assert_eq!(one(&e, "SELECT concat(NULL)"), text(""));
    assert_eq!(
        one(&e, "SELECT concat_ws('-', 'a', 'b', 'c')"),
        text("a-b-c")
    );
    assert_eq!(one(&e, "SELECT concat_ws('-', NULL, 'a')"), text("a"));
    // osquery's quirk: a trailing NULL leaves a trailing separator.
    assert_eq!(one(&e, "SELECT concat_ws('-', 'a', NULL)"), text("a-"));
    assert_eq!(
        one(&e, "SELECT concat_ws('-', 'a', NULL, 'b')"),
        text("a-b")
    );
    assert_eq!(one(&e, "SELECT concat_ws(NULL, 'a', 'b')"), text("ab"));
    assert_eq!(one(&e, "SELECT concat_ws(', ', 1, 2)"), text("1, 2"));
    assert_eq!(one(&e, "SELECT concat_ws('-')"), Value::Null);
    assert_eq!(
        error(&e, "SELECT concat_ws()"),
        "Missing separator to concat_ws"
    );
}

#[test]
fn base64_functions() {
    let e = engine();
    assert_eq!(one(&e, "SELECT to_base64('hello')"), text("aGVsbG8="));
    assert_eq!(one(&e, "SELECT to_base64('')"), text(""));
    assert_eq!(one(&e, "SELECT to_base64(NULL)"), Value::Null);
    assert_eq!(one(&e, "SELECT from_base64('aGVsbG8=')"), text("hello"));
    assert_eq!(one(&e, "SELECT from_base64('aGVsbG8')"), text("hello"));
    assert_eq!(one(&e, "SELECT from_base64('')"), text(""));
    assert_eq!(one(&e, "SELECT from_base64('not base64!')"), text(""));
    assert_eq!(one(&e, "SELECT from_base64(NULL)"), Value::Null);
    for s in ["a", "ab", "abc", "abcd", "osquery rules", "ünïcödé"] {
        let q = quote(s);
        assert_eq!(
            one(&e, &format!("SELECT from_base64(to_base64({q}))")),
            text(s),
            "{s}"
        );
    }
    assert_eq!(
        one(&e, "SELECT conditional_to_base64('plain text ~')"),
        text("plain text ~")
    );
    assert_eq!(
        one(&e, "SELECT conditional_to_base64(char(10))"),
        text("Cg==")
    );
    assert_eq!(one(&e, "SELECT conditional_to_base64('é')"), text("w6k="));
    assert_eq!(one(&e, "SELECT conditional_to_base64(NULL)"), Value::Null);
}

#[test]
fn digests() {
    let e = engine();
    assert_eq!(
        one(&e, "SELECT md5('abc')"),
        text("900150983cd24fb0d6963f7d28e17f72")
    );
    assert_eq!(
        one(&e, "SELECT sha1('abc')"),
        text("a9993e364706816aba3e25717850c26c9cd0d89d")
    );
    assert_eq!(
        one(&e, "SELECT sha256('abc')"),
        text("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        one(&e, "SELECT md5('')"),
        text("d41d8cd98f00b204e9800998ecf8427e")
    );
    // Only the text up to the first NUL is hashed.
    assert_eq!(
        one(&e, "SELECT sha1(CAST(X'61626300FF' AS TEXT))"),
        text("a9993e364706816aba3e25717850c26c9cd0d89d")
    );
    assert_eq!(one(&e, "SELECT sha256(NULL)"), Value::Null);
}

/// corelight/community-id-spec baseline/baseline_deflt.json and baseline_seed1.json:
/// (proto, saddr, daddr, sport, dport, id with seed 0, id with seed 1).
type Flow = (
    u8,
    &'static str,
    &'static str,
    Option<u16>,
    Option<u16>,
    &'static str,
    &'static str,
);

const COMMUNITY_ID_VECTORS: &[Flow] = &[
    (
        58,
        "fe80::200:86ff:fe05:80da",
        "fe80::260:97ff:fe07:69ea",
        Some(135),
        Some(136),
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
    ),
    (
        58,
        "fe80::260:97ff:fe07:69ea",
        "fe80::200:86ff:fe05:80da",
        Some(136),
        Some(135),
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
    ),
    (
        58,
        "fe80::260:97ff:fe07:69ea",
        "fe80::200:86ff:fe05:80da",
        Some(135),
        Some(136),
        "1:zavyT/cezQr1fmImYCwYnMXbgck=",
        "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
    ),
    (
        58,
        "fe80::200:86ff:fe05:80da",
        "fe80::260:97ff:fe07:69ea",
        Some(136),
        Some(135),
        "1:zavyT/cezQr1fmImYCwYnMXbgck=",
        "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
    ),
    (
        58,
        "3ffe:501:1800:2345::2",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        Some(3),
        Some(0),
        "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
        "1:lVEtCZpYu84Xqaa++3lXFyuu2n4=",
    ),
    (
        58,
        "3ffe:501:410:0:2c0:dfff:fe47:33e",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        Some(1),
        Some(4),
        "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
        "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8=",
    ),
    (
        58,
        "3ffe:507:0:1:200:86ff:fe05:80da",
        "3ffe:501:0:1001::2",
        Some(128),
        Some(129),
        "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
        "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
    ),
    (
        58,
        "3ffe:501:0:1001::2",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        Some(129),
        Some(128),
        "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
        "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
    ),
    (
        58,
        "fe80::200:86ff:fe05:80da",
        "ff02::2",
        Some(133),
        Some(134),
        "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
        "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8=",
    ),
    (
        58,
        "fe80::260:97ff:fe07:69ea",
        "ff02::1",
        Some(134),
        Some(133),
        "1:pkvHqCL88/tg1k4cPigmZXUtL00=",
        "1:K/ee5UCqAMAQXDorP5nSa2CGLjc=",
    ),
    (
        1,
        "192.168.0.89",
        "192.168.0.1",
        Some(8),
        Some(0),
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
    ),
    (
        1,
        "192.168.0.1",
        "192.168.0.89",
        Some(0),
        Some(8),
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
    ),
    (
        1,
        "10.0.0.1",
        "10.0.0.2",
        Some(11),
        Some(0),
        "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
        "1:XjUibYHaafLQ3pxQeiMI8g25q20=",
    ),
    (
        6,
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        "2607:f8b0:400c:c03::1a",
        Some(63943),
        Some(25),
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
    ),
    (
        6,
        "2607:f8b0:400c:c03::1a",
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        Some(25),
        Some(63943),
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
    ),
    (
        132,
        "192.168.170.8",
        "192.168.170.56",
        Some(7),
        Some(7),
        "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
        "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
    ),
    (
        132,
        "192.168.170.56",
        "192.168.170.8",
        Some(7),
        Some(7),
        "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
        "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
    ),
    (
        6,
        "128.232.110.120",
        "66.35.250.204",
        Some(34855),
        Some(80),
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
    ),
    (
        6,
        "66.35.250.204",
        "128.232.110.120",
        Some(80),
        Some(34855),
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
    ),
    (
        17,
        "192.168.1.52",
        "8.8.8.8",
        Some(54585),
        Some(53),
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
    ),
    (
        17,
        "8.8.8.8",
        "192.168.1.52",
        Some(53),
        Some(54585),
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
    ),
    (
        46,
        "10.1.12.1",
        "10.1.12.2",
        None,
        None,
        "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
        "1:rYir8gphR31noO9iDRQmF/BteEI=",
    ),
    (
        46,
        "10.1.12.2",
        "10.1.12.1",
        None,
        None,
        "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
        "1:rYir8gphR31noO9iDRQmF/BteEI=",
    ),
];

#[test]
fn community_id_spec_vectors() {
    let e = engine();
    let port = |p: Option<u16>| p.map_or("NULL".to_owned(), |p| p.to_string());
    for (proto, saddr, daddr, sport, dport, deflt, seed1) in COMMUNITY_ID_VECTORS {
        let args = format!(
            "'{saddr}', '{daddr}', {}, {}, {proto}",
            port(*sport),
            port(*dport)
        );
        for f in ["community_id_v1", "community_id_v1_strict"] {
            assert_eq!(
                one(&e, &format!("SELECT {f}({args})")),
                text(deflt),
                "{f}({args})"
            );
            assert_eq!(
                one(&e, &format!("SELECT {f}({args}, 0)")),
                text(deflt),
                "{f}({args}, 0)"
            );
            assert_eq!(
                one(&e, &format!("SELECT {f}({args}, 1)")),
                text(seed1),
                "{f}({args}, 1)"
            );
        }
    }
}

#[test]
fn community_id_invalid_input() {
    let e = engine();
    let cases = [
        (
            "'1.2.3.4', '5.6.7.8', 1, 2, 6, 'x'",
            "Community ID seed must be an integer",
        ),
        (
            "'1.2.3.4', '5.6.7.8', 1, 2, 6, 40000",
            "Community ID seed must fit in 2 bytes",
        ),
        ("1, '5.6.7.8', 1, 2, 6", "Community ID IPs must be strings"),
        (
            "'nope', '5.6.7.8', 1, 2, 6",
            "Community ID saddr cannot be parsed as IP",
        ),
        (
            "'1.2.3.4', '5.6.7', 1, 2, 6",
            "Community ID daddr cannot be parsed as IP",
        ),
        (
            "'1.2.3.4', '5.6.7.8', '1', 2, 6",
            "Community ID ports must be integers",
        ),
        (
            "'1.2.3.4', '5.6.7.8', NULL, 2, 17",
            "Community ID ports must be integers",
        ),
        (
            "'1.2.3.4', '5.6.7.8', 1, 70000, 6",
            "Community ID ports must fit in 2 bytes",
        ),
        (
            "'1.2.3.4', '5.6.7.8', -1, 2, 6",
            "Community ID ports must fit in 2 bytes",
        ),
        (
            "'1.2.3.4', '5.6.7.8', 1, 2, '6'",
            "Community ID protocol must be an integer",
        ),
        (
            "'1.2.3.4', '5.6.7.8', 1, 2, 256",
            "Community ID protocol must fit in 1 byte",
        ),
    ];
    for (args, message) in cases {
        assert_eq!(
            error(&e, &format!("SELECT community_id_v1_strict({args})")),
            message,
            "{args}"
        );
        assert_eq!(
            one(&e, &format!("SELECT community_id_v1({args})")),
            Value::Null,
            "{args}"
        );
    }
}

#[test]
fn in_cidr_block_function() {
    let e = engine();
    let cases = [
        ("192.168.1.0/24", "192.168.1.1", 1),
        ("192.168.1.0/24", "192.168.1.254", 1),
        // boost's hosts(): network and broadcast addresses are not "in".
        ("192.168.1.0/24", "192.168.1.0", 0),
        ("192.168.1.0/24", "192.168.1.255", 0),
        ("192.168.1.0/24", "192.168.2.1", 0),
        ("192.168.1.77/24", "192.168.1.5", 1),
        ("10.0.0.0/30", "10.0.0.1", 1),
        ("10.0.0.0/30", "10.0.0.3", 0),
        ("10.0.0.0/31", "10.0.0.0", 0),
        ("10.0.0.0/31", "10.0.0.1", 0),
        ("10.0.0.5/32", "10.0.0.5", 1),
        ("10.0.0.5/32", "10.0.0.6", 0),
        ("0.0.0.0/0", "8.8.8.8", 1),
        // IPv6: the whole prefix, first and last address included.
        ("2001:db8::/32", "2001:db8::", 1),
        ("2001:db8::/32", "2001:db8::1", 1),
        ("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1),
        ("2001:db8::/32", "2001:db9::", 0),
        ("fe80::1/128", "fe80::1", 1),
        ("fe80::1/128", "fe80::2", 0),
        ("::/0", "::1", 0),
    ];
    for (cidr, ip, want) in cases {
        assert_eq!(
            one(&e, &format!("SELECT in_cidr_block('{cidr}', '{ip}')")),
            Value::Integer(want),
            "{ip} in {cidr}"
        );
    }
    let errors = [
        ("1, '1.2.3.4'", "CIDR must be a string"),
        ("NULL, '1.2.3.4'", "CIDR must be a string"),
        ("'1.2.3.0/24', 5", "IP address must be a string"),
        ("'1.2.3.0/24', 'x'", "IP address cannot be parsed"),
        (
            "'1.2.3.0/33', '1.2.3.4'",
            "CIDR for IP address v4 cannot be parsed",
        ),
        (
            "'1.2.3.0', '1.2.3.4'",
            "CIDR for IP address v4 cannot be parsed",
        ),
        (
            "'2001:db8::/32', '1.2.3.4'",
            "CIDR for IP address v4 cannot be parsed",
        ),
        (
            "'1.2.3.0/24', '::1'",
            "CIDR for IP address v6 cannot be parsed",
        ),
        ("'::/129', '::1'", "CIDR for IP address v6 cannot be parsed"),
    ];
    for (args, message) in errors {
        assert_eq!(
            error(&e, &format!("SELECT in_cidr_block({args})")),
            message,
            "{args}"
        );
    }
}

#[test]
fn version_collations() {
    let e = engine();
    assert_eq!(
        one(&e, "SELECT '1.10' > '1.9' COLLATE VERSION"),
        Value::Integer(1)
    );
    assert_eq!(
        one(&e, "SELECT '1.10' > '1.9' COLLATE version"),
        Value::Integer(1)
    );
    let order = |collation: &str, values: &[&str]| -> Vec<String> {
        let union = values
            .iter()
            .map(|v| format!("SELECT {} AS v", quote(v)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        e.query(&format!(
            "SELECT v FROM ({union}) ORDER BY v COLLATE {collation}"
        ))
        .unwrap()
        .rows
        .into_iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
    };
    // Debian policy: ~ sorts first, epoch wins, missing revision is lowest.
    assert_eq!(
        order(
            "VERSION_DPKG",
            &[
                "1:0.9",
                "1.0-1ubuntu1",
                "2.0",
                "1.0",
                "1.0~rc1",
                "1.0-1",
                "1.0~~"
            ]
        ),
        [
            "1.0~~",
            "1.0~rc1",
            "1.0",
            "1.0-1",
            "1.0-1ubuntu1",
            "2.0",
            "1:0.9"
        ]
    );
    assert_eq!(
        order(
            "VERSION_RHEL",
            &["1.0.1", "1.0^", "1.0", "1.0~rc1", "1:0.1"]
        ),
        ["1.0~rc1", "1.0", "1.0^", "1.0.1", "1:0.1"]
    );
    assert_eq!(
        order(
            "VERSION_ARCH",
            &["1.0", "1.0rc", "1.0beta", "1.0alpha", "1:0.5", "1.0.a"]
        ),
        ["1.0alpha", "1.0beta", "1.0rc", "1.0", "1.0.a", "1:0.5"]
    );
    assert_eq!(
        order("VERSION", &["1.10.0", "1.9.2", "1.2", "10.0"]),
        ["1.2", "1.9.2", "1.10.0", "10.0"]
    );
}

#[test]
fn version_compare_function() {
    let e = engine();
    let cases = [
        ("1.10", "1.9", "", 1),
        ("1.0", "1.0", "", 0),
        ("1.0~rc1", "1.0", "DPKG", -1),
        ("1:0.9", "2.0", "DPKG", 1),
        ("1.0-1", "1.0-1ubuntu1", "dpkg", -1),
        ("1.0^", "1.0", "RHEL", 1),
        ("1.0~rc1", "1.0", "rhel", -1),
        ("5.5p1", "5.5p10", "RHEL", -1),
        ("1.5-1", "1.5", "ARCH", 0),
        ("1.0rc", "1.0", "Arch", -1),
        ("2___a", "2_a", "ARCH", 1),
    ];
    for (a, b, flavor, want) in cases {
        let sql = if flavor.is_empty() {
            format!("SELECT version_compare('{a}', '{b}')")
        } else {
            format!("SELECT version_compare('{a}', '{b}', '{flavor}')")
        };
        assert_eq!(one(&e, &sql), Value::Integer(want), "{sql}");
        // The collation gives the same answer.
        let collation = match flavor.to_ascii_uppercase().as_str() {
            "" => "VERSION".to_owned(),
            f => format!("VERSION_{f}"),
        };
        let sign = one(
            &e,
            &format!(
                "SELECT ('{a}' > '{b}' COLLATE {collation}) - ('{a}' < '{b}' COLLATE {collation})"
            ),
        );
        assert_eq!(sign, Value::Integer(want), "{a} vs {b} COLLATE {collation}");
    }
    assert_eq!(one(&e, "SELECT version_compare(2, 10)"), Value::Integer(-1));
    assert_eq!(one(&e, "SELECT version_compare(NULL, '1')"), Value::Null);
    assert_eq!(
        error(&e, "SELECT version_compare('1', '2', 'GENTOO')"),
        "version_compare: unknown flavor 'GENTOO', expected ARCH, DPKG or RHEL"
    );
    assert_eq!(
        error(&e, "SELECT version_compare('1', '2', NULL)"),
        "version_compare: flavor must be text: ARCH, DPKG or RHEL"
    );
    assert_eq!(
        error(&e, "SELECT version_compare(X'31', '2')"),
        "version_compare: versions must be text"
    );
}

#[test]
fn command_line_paths() {
    let e = engine();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_owned();
    std::fs::create_dir(dir.path().join("my app")).unwrap();
    std::fs::write(dir.path().join("my app/run"), b"").unwrap();
    std::fs::write(dir.path().join("tool"), b"").unwrap();
    std::fs::write(dir.path().join("tool x"), b"").unwrap();

    let find = |args: &str| one(&e, &format!("SELECT find_file_path_in_cmd({args})"));
    let det = |args: &str| one(&e, &format!("SELECT is_path_deterministic({args})"));
    let run = format!("{root}/my app/run");

    assert_eq!(find(&quote(&format!("{run} --flag"))), text(&run));
    assert_eq!(find(&quote(&format!("  {run}"))), text(&run));
    assert_eq!(
        find(&format!("{}, 1", quote(&format!("\"{run}\" --flag")))),
        text(&run)
    );
    assert_eq!(
        find(&quote(&format!("{root}/my\\ app/run --flag"))),
        text(&run)
    );
    assert_eq!(
        find(&format!(
            "{}, 0, '^'",
            quote(&format!("{root}/my^ app/run -x"))
        )),
        text(&run)
    );
    // Quotes are only special when allowed.
    assert_eq!(find(&quote(&format!("\"{run}\" --flag"))), text(""));
    // A directory is not a program.
    assert_eq!(find(&quote(&format!("{root} --flag"))), text(""));
    assert_eq!(
        find(&quote(&format!("{root}/tool x --y"))),
        text(&format!("{root}/tool"))
    );

    assert_eq!(det(&quote(&format!("{run} --flag"))), Value::Integer(1));
    assert_eq!(det(&quote(&run)), Value::Integer(1));
    assert_eq!(det(&quote("/nonexistent/thing --x")), Value::Integer(1));
    // Both "tool" and "tool x" exist: ambiguous.
    assert_eq!(
        det(&quote(&format!("{root}/tool x --y"))),
        Value::Integer(0)
    );

    assert_eq!(
        error(&e, "SELECT find_file_path_in_cmd(NULL)"),
        "Invalid inputs to find_binary_path_from_cmd"
    );
    assert_eq!(
        error(&e, "SELECT find_file_path_in_cmd('/bin/sh', 0, 'ab')"),
        "Invalid inputs to find_binary_path_from_cmd"
    );
    assert_eq!(
        error(&e, "SELECT find_file_path_in_cmd()"),
        "Invalid inputs to find_binary_path_from_cmd"
    );
    assert_eq!(
        error(&e, "SELECT is_path_deterministic('/bin/sh', NULL)"),
        "Invalid inputs to is_path_deterministic"
    );
}

#[test]
fn parent_directory_function() {
    let e = engine();
    assert_eq!(one(&e, "SELECT parent_directory('/a/b')"), text("/a"));
    assert_eq!(one(&e, "SELECT parent_directory('/a/b/')"), text("/a/b"));
    assert_eq!(one(&e, "SELECT parent_directory('/a')"), text(""));
    assert_eq!(one(&e, "SELECT parent_directory('a')"), Value::Null);
    for arg in ["5", "NULL", "X'2F61'"] {
        assert_eq!(
            error(&e, &format!("SELECT parent_directory({arg})")),
            "Invalid inputs to parent_directory, TEXT was expected"
        );
    }
}

#[test]
fn sleep_function() {
    let e = engine();
    assert_eq!(one(&e, "SELECT sleep(0)"), Value::Integer(0));
    assert_eq!(one(&e, "SELECT sleep(-3)"), Value::Integer(0));
    let start = std::time::Instant::now();
    assert_eq!(one(&e, "SELECT sleep(1)"), Value::Integer(1));
    assert!(start.elapsed() >= std::time::Duration::from_secs(1));
}

#[test]
fn registration_flags() {
    let e = engine();
    let rows = e.query("PRAGMA function_list").expect("function_list").rows;
    // Columns: name, builtin, type, enc, narg, flags.
    let find = |name: &str, narg: i64| -> i64 {
        rows.iter()
            .find(|r| {
                r[0] == text(name) && r[4] == Value::Integer(narg) && r[1] == Value::Integer(0)
            })
            .map(|r| match r[5] {
                Value::Integer(f) => f,
                _ => panic!("flags"),
            })
            .unwrap_or_else(|| panic!("{name}/{narg} not registered"))
    };
    const DETERMINISTIC: i64 = 0x800;
    for (name, narg) in [
        ("sqrt", 1),
        ("power", 2),
        ("pi", 0),
        ("split", 3),
        ("regex_split", 3),
        ("regex_match", 3),
        ("inet_aton", 1),
        ("concat", -1),
        ("concat_ws", -1),
        ("to_base64", 1),
        ("from_base64", 1),
        ("conditional_to_base64", 1),
        ("md5", 1),
        ("sha1", 1),
        ("sha256", 1),
        ("community_id_v1", 5),
        ("community_id_v1", 6),
        ("community_id_v1_strict", 5),
        ("community_id_v1_strict", 6),
        ("in_cidr_block", 2),
        ("version_compare", 2),
        ("version_compare", 3),
        ("is_path_deterministic", -1),
        ("find_file_path_in_cmd", -1),
        ("parent_directory", 1),
    ] {
        assert_ne!(find(name, narg) & DETERMINISTIC, 0, "{name}/{narg}");
    }
    assert_eq!(find("sleep", 1) & DETERMINISTIC, 0);
}
