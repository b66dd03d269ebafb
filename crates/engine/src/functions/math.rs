//! The math functions osquery adds (from the old SQLite extension-functions set).
//!
//! osquery calls the C library and turns a set `errno` into an SQL error whose
//! message is `strerror(errno)`. We compute in Rust and decide, per function, when
//! glibc would have set `errno`, so the same inputs fail with the same text.

use super::{Out, ScalarFn, add, fail, value_double};
use rusqlite::Connection;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;
use std::f64::consts::PI;

/// glibc's `strerror(EDOM)`.
const EDOM: &str = "Numerical argument out of domain";
/// glibc's `strerror(ERANGE)`.
const ERANGE: &str = "Numerical result out of range";

type MathResult = Result<f64, &'static str>;

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    let unary: [(&str, ScalarFn); 13] = [
        ("sqrt", |c| unary(c, sqrt)),
        ("acos", |c| unary(c, acos)),
        ("asin", |c| unary(c, asin)),
        ("atan", |c| unary(c, |x| Ok(x.atan()))),
        ("cos", |c| unary(c, cos)),
        ("sin", |c| unary(c, sin)),
        ("tan", |c| unary(c, tan)),
        ("cot", |c| unary(c, |x| tan(x).map(|t| 1.0 / t))),
        ("exp", |c| unary(c, exp)),
        ("log", |c| unary(c, |x| log(x, f64::ln))),
        ("log10", |c| unary(c, |x| log(x, f64::log10))),
        // Same operation order as osquery so the rounding is identical.
        ("degrees", |c| unary(c, |x| Ok(180.0 * x / PI))),
        ("radians", |c| unary(c, |x| Ok(x * PI / 180.0))),
    ];
    for (name, f) in unary {
        add(conn, name, 1, f)?;
    }
    add(conn, "power", 2, power)?;
    add(conn, "ceil", 1, |c| rounded(c, f64::ceil))?;
    add(conn, "floor", 1, |c| rounded(c, f64::floor))?;
    add(conn, "pi", 0, |_| Ok(Out::Real(PI)))?;
    Ok(())
}

/// NULL → NULL; otherwise the argument as a double. (A NaN result becomes NULL
/// inside SQLite, as it does for osquery.)
fn unary(ctx: &Context<'_>, f: fn(f64) -> MathResult) -> rusqlite::Result<Out> {
    let v = ctx.get_raw(0);
    if v == ValueRef::Null {
        return Ok(Out::Null);
    }
    match f(value_double(v)) {
        Ok(r) => Ok(Out::Real(r)),
        Err(msg) => fail(msg),
    }
}

fn sqrt(x: f64) -> MathResult {
    if x < 0.0 { Err(EDOM) } else { Ok(x.sqrt()) }
}

fn acos(x: f64) -> MathResult {
    if x.abs() > 1.0 {
        Err(EDOM)
    } else {
        Ok(x.acos())
    }
}

fn asin(x: f64) -> MathResult {
    if x.abs() > 1.0 {
        Err(EDOM)
    } else {
        Ok(x.asin())
    }
}

fn cos(x: f64) -> MathResult {
    if x.is_infinite() {
        Err(EDOM)
    } else {
        Ok(x.cos())
    }
}

fn sin(x: f64) -> MathResult {
    if x.is_infinite() {
        Err(EDOM)
    } else {
        Ok(x.sin())
    }
}

fn tan(x: f64) -> MathResult {
    if x.is_infinite() {
        Err(EDOM)
    } else {
        Ok(x.tan())
    }
}

/// osquery calls `expl` (long double): it only overflows or underflows to zero
/// far beyond double's range, so e.g. `exp(710)` is +Inf without an error, and
/// only `exp(x)` for |x| past long double's limits fails with ERANGE.
fn exp(x: f64) -> MathResult {
    const LDBL_MAX_LN: f64 = 11356.523406294143;
    const LDBL_ZERO_LN: f64 = -11399.498531488861;
    if x.is_nan() || (LDBL_ZERO_LN..=LDBL_MAX_LN).contains(&x) {
        Ok(x.exp())
    } else {
        Err(ERANGE)
    }
}

/// Negative input is a domain error; zero is a pole (ERANGE, glibc returns -Inf).
fn log(x: f64, f: fn(f64) -> f64) -> MathResult {
    if x < 0.0 {
        Err(EDOM)
    } else if x == 0.0 {
        Err(ERANGE)
    } else {
        Ok(f(x))
    }
}

/// glibc `pow`: NaN from non-NaN operands is EDOM; a pole (0 to a negative
/// power), an overflow to ±Inf or an underflow to zero from finite operands is
/// ERANGE.
fn pow(x: f64, y: f64) -> MathResult {
    let r = x.powf(y);
    let finite = x.is_finite() && y.is_finite();
    if r.is_nan() && !x.is_nan() && !y.is_nan() {
        Err(EDOM)
    } else if finite && (r.is_infinite() || (r == 0.0 && x != 0.0)) {
        Err(ERANGE)
    } else {
        Ok(r)
    }
}

fn power(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    let (x, y) = (ctx.get_raw(0), ctx.get_raw(1));
    if x == ValueRef::Null || y == ValueRef::Null {
        return Ok(Out::Null);
    }
    match pow(value_double(x), value_double(y)) {
        Ok(r) => Ok(Out::Real(r)),
        Err(msg) => fail(msg),
    }
}

/// `ceil`/`floor`: an integer comes back unchanged; anything else is rounded and
/// converted to a 64-bit integer (out-of-range values saturate; C leaves that
/// undefined).
fn rounded(ctx: &Context<'_>, f: fn(f64) -> f64) -> rusqlite::Result<Out> {
    Ok(match ctx.get_raw(0) {
        ValueRef::Null => Out::Null,
        ValueRef::Integer(i) => Out::Int(i),
        v => Out::Int(f(value_double(v)) as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_rules() {
        assert_eq!(sqrt(-1.0), Err(EDOM));
        assert_eq!(sqrt(-0.0), Ok(-0.0));
        assert_eq!(sqrt(4.0), Ok(2.0));
        assert_eq!(acos(1.5), Err(EDOM));
        assert_eq!(asin(-1.0001), Err(EDOM));
        assert_eq!(sin(f64::INFINITY), Err(EDOM));
        assert_eq!(log(0.0, f64::ln), Err(ERANGE));
        assert_eq!(log(-1.0, f64::ln), Err(EDOM));
        assert_eq!(log10(100.0), Ok(2.0));
        assert_eq!(exp(0.0), Ok(1.0));
        assert_eq!(exp(710.0), Ok(f64::INFINITY));
        assert_eq!(exp(20000.0), Err(ERANGE));
        assert_eq!(exp(-20000.0), Err(ERANGE));
        assert_eq!(pow(-8.0, 1.0 / 3.0), Err(EDOM));
        assert_eq!(pow(0.0, -1.0), Err(ERANGE));
        assert_eq!(pow(10.0, 400.0), Err(ERANGE));
        assert_eq!(pow(10.0, -400.0), Err(ERANGE));
        assert_eq!(pow(0.0, 2.0), Ok(0.0));
        assert_eq!(pow(2.0, 10.0), Ok(1024.0));
        assert!(sqrt(f64::NAN).unwrap().is_nan());
    }

    fn log10(x: f64) -> MathResult {
        log(x, f64::log10)
    }
}
