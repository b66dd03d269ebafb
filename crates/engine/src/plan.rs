//! The plan chosen in xBestIndex, carried to xFilter in `idx_str`.
//!
//! Encoding: `<flags>;<colUsed hex>;<col>:<op>:<in>,...` where flags holds `R` when no
//! required column is constrained. The string is owned by SQLite between the two calls,
//! so no global state is needed to remember plans.

use oxquery_table::Op;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub missing_required: bool,
    pub col_used: u64,
    /// One entry per argv slot, in argv order.
    pub args: Vec<PlanArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanArg {
    /// Real column index (aliases resolved).
    pub column: usize,
    pub op: Op,
    /// The argv value is an IN list delivered all at once.
    pub in_list: bool,
}

impl Plan {
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(32 + self.args.len() * 8);
        if self.missing_required {
            s.push('R');
        }
        s.push(';');
        s.push_str(&format!("{:x};", self.col_used));
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{}:{}:{}",
                a.column,
                a.op.code(),
                u8::from(a.in_list)
            ));
        }
        s
    }

    pub fn decode(s: &str) -> Option<Plan> {
        let mut parts = s.splitn(3, ';');
        let flags = parts.next()?;
        let col_used = u64::from_str_radix(parts.next()?, 16).ok()?;
        let args_text = parts.next()?;
        let mut args = Vec::new();
        if !args_text.is_empty() {
            for a in args_text.split(',') {
                let mut f = a.split(':');
                let column = f.next()?.parse().ok()?;
                let op = Op::from_code(f.next()?.parse().ok()?)?;
                let in_list = f.next()? == "1";
                args.push(PlanArg {
                    column,
                    op,
                    in_list,
                });
            }
        }
        Some(Plan {
            missing_required: flags.contains('R'),
            col_used,
            args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let plan = Plan {
            missing_required: true,
            col_used: 0x8000_0000_0000_0005,
            args: vec![
                PlanArg {
                    column: 0,
                    op: Op::Eq,
                    in_list: true,
                },
                PlanArg {
                    column: 12,
                    op: Op::Like,
                    in_list: false,
                },
            ],
        };
        assert_eq!(Plan::decode(&plan.encode()), Some(plan));
        let empty = Plan::default();
        assert_eq!(Plan::decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Plan::decode("nonsense"), None);
        assert_eq!(Plan::decode(";zz;"), None);
        assert_eq!(Plan::decode(";1;0:99:0"), None);
    }
}
