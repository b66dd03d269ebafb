//! `osquery_flags`: every flag of this process with its type, default and current value.
//! The values come from the host facts the shell (or daemon) filled in after parsing.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_flags",
    description: "Command-line flags this process knows, with their type, default and current value.",
    attributes: [UTILITY],
    columns: {
        name: Text [] "Flag name without the leading dashes",
        r#type: Text [] "Value type: bool, string, int32, uint32 or uint64",
        description: Text [] "Help text shown for the flag",
        default_value: Text [] "Value the flag has when not set",
        value: Text [] "Value in effect for this process",
        shell_only: Integer [] "1 if the flag applies only to the interactive shell, else 0",
    },
    examples: ["select name, value from osquery_flags where default_value <> value"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    // After a reload the live values; before, the start-up ones.
    let live = ctx.host().live().flags;
    let flags = if live.is_empty() {
        &ctx.host().instance.flags
    } else {
        &live
    };
    for flag in flags {
        let mut row = rows.row();
        row.set(Col::name, flag.name.as_str());
        row.set(Col::r#type, flag.ty.as_str());
        row.set(Col::description, flag.description.as_str());
        row.set(Col::default_value, flag.default_value.as_str());
        row.set(Col::value, flag.value.as_str());
        row.set(Col::shell_only, flag.shell_only);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{FlagValue, Host, InstanceInfo, Value};

    #[test]
    fn one_row_per_flag() {
        let flag = |name: &str, value: &str, shell_only| FlagValue {
            name: name.into(),
            ty: "bool".into(),
            description: "d".into(),
            default_value: "false".into(),
            value: value.into(),
            shell_only,
        };
        let host = Host {
            instance: InstanceInfo {
                flags: vec![flag("csv", "true", true), flag("verbose", "false", false)],
                ..InstanceInfo::default()
            },
            ..Host::default()
        };
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(
            rows.column(Col::name),
            [&Value::from("csv"), &Value::from("verbose")]
        );
        assert_eq!(
            rows.column(Col::value),
            [&Value::from("true"), &Value::from("false")]
        );
        assert_eq!(
            rows.column(Col::shell_only),
            [&Value::Integer(1), &Value::Integer(0)]
        );
    }
}
