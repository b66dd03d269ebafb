//! `lxd_certificates`: the certificates the LXD daemon trusts.

use super::lxd::{self, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "lxd_certificates",
    description: "Certificates the LXD daemon trusts (GET /1.0/certificates?recursion=1 on --lxd_socket). No daemon: no rows.",
    columns: {
        name: Text [] "Name of the certificate",
        r#type: Text [] "Type of the certificate (client, server, metrics)",
        fingerprint: Text [COLLATE_NOCASE] "SHA-256 fingerprint of the certificate (hex)",
        certificate: Text [] "The certificate (PEM)",
    },
    examples: ["select name, type, fingerprint from lxd_certificates"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for cert in lxd::list(ctx, TABLE.spec.name.as_ref(), "/1.0/certificates")? {
        ctx.check()?;
        let mut row = rows.row();
        row.set(Col::name, text(&cert, "name"));
        row.set(Col::r#type, text(&cert, "type"));
        row.set(Col::fingerprint, text(&cert, "fingerprint"));
        row.set(Col::certificate, text(&cert, "certificate"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::lxd::testing::daemon;
    use crate::testing::{rows_of, text};

    /// The trusted certificate the harness made: its name, its SHA-256 fingerprint as
    /// `openssl x509 -fingerprint` computes it, and its PEM text.
    #[test]
    fn matches_the_certificate_the_test_trusted() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&d.cert_file)
            .output()
            .unwrap();
        let line = String::from_utf8(out.stdout).unwrap();
        let want_fp = line
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_ascii_lowercase();
        assert_eq!(want_fp.len(), 64, "{line}");
        let mine: Vec<_> = rows
            .iter()
            .filter(|r| text(&r[Col::fingerprint as usize]) == want_fp)
            .collect();
        assert_eq!(mine.len(), 1, "{rows:?}");
        let r = mine[0];
        assert_eq!(text(&r[Col::name as usize]), d.cert_name);
        assert_eq!(text(&r[Col::r#type as usize]), "client");
        let pem = std::fs::read_to_string(&d.cert_file).unwrap();
        assert_eq!(text(&r[Col::certificate as usize]).trim(), pem.trim());
    }
}
