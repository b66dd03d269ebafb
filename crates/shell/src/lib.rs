//! osqueryi: the shell. (Minimal bootstrap: `--json SQL` only; the full shell replaces it.)

use oxquery_engine::{Engine, TableFilter};
use oxquery_table::{TableDef, Value};

pub fn run(tables: &[&'static TableDef], args: &[String]) -> i32 {
    let engine = match Engine::new(
        tables,
        &TableFilter::default(),
        oxquery_engine::instance::current(None),
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let Some(sql) = args.iter().find(|a| !a.starts_with("--")) else {
        return 0;
    };
    match engine.query(sql) {
        Ok(result) => {
            let mut out = String::from("[\n");
            for (i, row) in result.rows.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                let mut pairs: Vec<(&String, &Value)> = result.columns.iter().zip(row).collect();
                pairs.sort_by(|a, b| a.0.cmp(b.0));
                out.push_str("  {");
                for (j, (k, v)) in pairs.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    let text = match v {
                        Value::Real(f) => oxquery_engine::format_real(*f),
                        other => other.to_string(),
                    };
                    out.push_str(&format!("{:?}:{:?}", k, text));
                }
                out.push('}');
            }
            out.push_str("\n]\n");
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
