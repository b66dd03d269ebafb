//! The authorizer every connection runs with: reading is allowed, changing the host or
//! escaping the in-memory database is not (osquery's rules).

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Pragmas that only read schema or harmless settings.
const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "function_list",
    "journal_mode",
    "case_sensitive_like",
    "collation_list",
];

pub fn authorize(ctx: AuthContext<'_>) -> Authorization {
    use AuthAction::*;
    match ctx.action {
        Read { .. }
        | Select
        | Insert { .. }
        | Update { .. }
        | Delete { .. }
        | CreateVtable { .. }
        | DropVtable { .. }
        | CreateTable { .. }
        | CreateTempTable { .. }
        | DropTable { .. }
        | DropTempTable { .. }
        | CreateView { .. }
        | CreateTempView { .. }
        | DropView { .. }
        | DropTempView { .. }
        | Function { .. }
        | Recursive
        | Transaction { .. } => Authorization::Allow,
        Pragma { pragma_name, .. }
            if ALLOWED_PRAGMAS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(pragma_name)) =>
        {
            Authorization::Allow
        }
        _ => Authorization::Deny,
    }
}
