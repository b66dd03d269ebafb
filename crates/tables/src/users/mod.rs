//! Tables of the `users` domain: accounts, groups, credentials, logins and per-user files.
//!
//! Accounts come from `oxquery_sys::users`; the tables that read home directories
//! (`authorized_keys`, `known_hosts`, `user_ssh_keys`, `ssh_configs`, `shell_history`)
//! pick their users with `common::users_by_uid` from the query's `uid` constraint, read
//! the users' files only through `oxquery_sys::safe_read` (via `common`), and expose a
//! `generate_for(ctx, users, ...)` that tests drive with invented accounts whose homes are
//! temporary directories (`common::testing::generate_for_home`).

pub mod authorized_keys;
pub mod groups;
pub mod known_hosts;
pub mod last;
pub mod logged_in_users;
pub mod shadow;
pub mod shell_history;
pub mod ssh_configs;
pub mod sudoers;
pub mod user_groups;
pub mod user_ssh_keys;
// Every table file is named after its table, `users` included.
#[allow(clippy::module_inception)]
pub mod users;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &users::TABLE,
        &groups::TABLE,
        &user_groups::TABLE,
        &shadow::TABLE,
        &sudoers::TABLE,
        &authorized_keys::TABLE,
        &known_hosts::TABLE,
        &user_ssh_keys::TABLE,
        &ssh_configs::TABLE,
        &logged_in_users::TABLE,
        &last::TABLE,
        &shell_history::TABLE,
    ]
}
