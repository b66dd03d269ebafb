//! Users: accounts, the files under their homes, and login records.
//!
//! * [`accounts`]: passwd/group text parsers, `/etc/passwd`, and NSS lookups.
//! * [`homes`]: which accounts a per-user query covers ([`users_for`]) and the walk over
//!   files under their homes ([`for_each_user_file`]); tables open those files with
//!   [`crate::safe_read`].
//! * [`utmp`]: utmp/wtmp login records, laid out as `libc::utmpx`.
//!
//! The items of `accounts` and `homes` are re-exported here, so callers name
//! `users::Passwd` or `users::users_for`.

pub mod accounts;
pub mod homes;
pub mod utmp;

pub use accounts::*;
pub use homes::*;
