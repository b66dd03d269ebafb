//! The yara tables' `sig_group = G`: the rule files the config's `yara.signatures` lists
//! for group G, compiled as one rule set (as osquery compiles each group). A group the
//! config does not have gives no rows, with a log line saying so.

use oxquery_sys::yara::NamedRules;
use oxquery_table::QueryContext;

/// The rule sets of the groups a query names on its `sig_group` column.
pub(crate) fn rules(ctx: &QueryContext, table: &str, groups: Vec<String>) -> Vec<NamedRules> {
    if groups.is_empty() {
        return Vec::new();
    }
    let configured = ctx.host().live().yara_signature_groups;
    groups
        .into_iter()
        .filter_map(|group| match configured.get(&group) {
            Some(files) if !files.is_empty() => Some(NamedRules::SigGroup {
                files: files.clone(),
                group,
            }),
            Some(_) => {
                log::info!("Table {table}: signature group {group} lists no rule files");
                None
            }
            None => {
                log::info!(
                    "Table {table}: the config's yara.signatures has no group {group}; no rows for it"
                );
                None
            }
        })
        .collect()
}
