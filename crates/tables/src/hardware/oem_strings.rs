//! `oem_strings`: the strings of the SMBIOS OEM Strings structures (type 11).

use super::smbios;
use oxquery_sys::smbios::text_of;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "oem_strings",
    description: "Free-form strings the system vendor stores in SMBIOS OEM Strings structures (type 11), one row per string. No rows without SMBIOS tables (see smbios_tables).",
    columns: {
        handle: Text [] "Handle of the type 11 structure, 0x and four hex digits",
        number: Integer [] "Number of the string in the structure, from 1",
        value: Text [] "The string, trailing blanks removed; empty when the structure names more strings than it holds",
    },
    examples: ["select value from oem_strings"],
}

const OEM_STRINGS: u8 = 11;

pub(super) fn generate_at(dir: &Path, _ctx: &QueryContext, rows: &mut Rows) {
    smbios::for_each_structure_of(&SPEC, dir, OEM_STRINGS, |s| {
        // The count byte says how many strings there are (osquery trusts it too).
        let Some(count) = s.byte(0x04) else { return };
        for number in 1..=count {
            let mut row = rows.row();
            row.set(Col::handle, smbios::handle(s.handle));
            row.set(Col::number, i64::from(number));
            row.set(
                Col::value,
                s.string(number).map(text_of).unwrap_or_default(),
            );
        }
    });
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    smbios::generate_from_firmware(generate_at, ctx, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::smbios::testing::*;
    use crate::testing::text;
    use oxquery_table::Value;

    #[test]
    fn agrees_with_dmidecode() {
        let f = fixture(&sample_machine(), false);
        let rows = rows_from(&SPEC, &f.sysfs(), generate_at);
        let got: Vec<(String, i64, String)> = rows
            .iter()
            .map(|r| {
                (
                    text(&r[Col::handle as usize]),
                    r[Col::number as usize].as_i64().unwrap(),
                    text(&r[Col::value as usize]),
                )
            })
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ("0x000b".into(), 3, "padded value".into()));
        let Some(records) = dmidecode_of(&f, OEM_STRINGS) else {
            return;
        };
        let mut theirs = Vec::new();
        for rec in &records {
            for (k, v) in &rec.fields {
                let n: i64 = k.trim_start_matches("String ").parse().unwrap();
                theirs.push((format!("0x{:04x}", rec.handle), n, v.trim_end().to_owned()));
            }
        }
        assert_eq!(got, theirs);
    }

    #[test]
    fn a_count_beyond_the_strings_gives_empty_values() {
        let s = Body::new(5).b(4, 3).build(OEM_STRINGS, 7, &["only one"]);
        let f = fixture(&[s, Body::new(4).build(127, 8, &[])], true);
        let rows = rows_from(&SPEC, &f.sysfs(), generate_at);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0][Col::value as usize], Value::from("only one"));
        assert_eq!(rows[2][Col::value as usize], Value::from(""));
    }
}
