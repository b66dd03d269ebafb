//! `azure_instance_tags`: the tags of this Azure VM, from its compute metadata.

use oxquery_table::{QueryContext, Rows, TableResult, table};

use super::instance::{self, CloudSettings};

table! {
    name: "azure_instance_tags",
    description: "Tags of this Azure VM, one row each, parsed from the `tags` string (`key:value;key:value`) of the Azure instance metadata service's compute metadata as osquery does. Asked only on a machine identified as an Azure VM (see azure_instance_metadata); elsewhere there are no rows.",
    attributes: [CACHEABLE],
    columns: {
        vm_id: Text [] "Unique identifier for the VM",
        key: Text [] "The tag key",
        value: Text [] "The tag value",
    },
    examples: ["select key, value from azure_instance_tags"],
}

const TABLE_NAME: &str = "azure_instance_tags";

/// `key:value` pairs separated by `;`, split at the first colon; a part without a colon
/// is skipped (osquery's reading).
fn parse_tags(tags: &str) -> Vec<(&str, &str)> {
    tags.split(';')
        .filter_map(|tag| tag.split_once(':'))
        .collect()
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_with(ctx, rows, &CloudSettings::from_context(ctx))
}

fn generate_with(ctx: &QueryContext, rows: &mut Rows, settings: &CloudSettings) -> TableResult {
    let Some(compute) = instance::azure_compute(TABLE_NAME, ctx, settings) else {
        return ctx.check();
    };
    let vm_id = instance::member_text(&compute, "vmId");
    let tags = instance::member_text(&compute, "tags");
    for (key, value) in parse_tags(&tags) {
        let mut row = rows.row();
        row.set(Col::vm_id, vm_id.as_str());
        row.set(Col::key, key);
        row.set(Col::value, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::azure_instance_metadata::tests::{
        assert_hostile_answers_warn, azure, azure_root, not_azure_root, settings,
    };
    use super::super::instance::CloudSettings;
    use super::super::instance::testing::{Server, collect};
    use super::*;
    use crate::common::testing::{capture_log, within_10s};
    use crate::testing::text;
    use oxquery_table::{Host, Value};

    fn scan(settings: CloudSettings) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        within_10s(move || {
            capture_log(|| {
                let host = Host::default();
                let ctx = QueryContext::everything(&SPEC, &host);
                let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, &settings));
                result.unwrap();
                rows
            })
        })
    }

    #[test]
    fn tags_split_as_osquery_splits_them() {
        assert_eq!(
            parse_tags("env:prod;owner:ops:team;broken;role:"),
            [("env", "prod"), ("owner", "ops:team"), ("role", "")]
        );
        assert!(parse_tags("").is_empty());
    }

    #[test]
    fn an_azure_vm_gets_one_row_per_tag() {
        let server = Server::start(azure);
        let root = azure_root();
        let (rows, logged) = scan(settings(root.path(), &server.base));
        let got: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(text).collect()).collect();
        let vm = "02aab8a4-74ef-476e-8182-f6d2ba4166a6";
        assert_eq!(
            got,
            [
                [vm, "env", "prod"],
                [vm, "owner", "ops:team"],
                [vm, "role", ""]
            ],
            "{logged:?}"
        );
        assert_eq!(server.seen()[0].headers["metadata"], "true");
    }

    #[test]
    fn a_machine_elsewhere_sends_nothing() {
        let server = Server::start(azure);
        let root = not_azure_root();
        let (rows, _) = scan(settings(root.path(), &server.base));
        assert!(rows.is_empty());
        assert!(server.seen().is_empty());
    }

    #[test]
    fn hostile_answers_give_no_rows_and_a_warning() {
        assert_hostile_answers_warn(scan);
    }
}
