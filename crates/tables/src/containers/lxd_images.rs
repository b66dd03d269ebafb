//! `lxd_images`: the images the LXD daemon holds.

use super::lxd::{self, flag, int, text, text_in};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::Value;

table! {
    name: "lxd_images",
    description: "Images the LXD daemon holds (GET /1.0/images?recursion=1 on --lxd_socket; id = asks GET /1.0/images/<id> for each id, where the id may be a unique prefix of the fingerprint and the row then carries the id as asked). No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Fingerprint of the image (SHA-256, hex), or the prefix the query asked for",
        architecture: Text [] "Architecture of the image",
        os: Text [] "Operating system of the image (properties.os)",
        release: Text [] "Release of that system (properties.release)",
        description: Text [] "Description of the image (properties.description)",
        aliases: Text [] "Aliases of the image, comma-separated",
        filename: Text [] "Name of the image's file",
        size: BigInt [] "Size of the image in bytes",
        auto_update: Integer [] "1 if the image is updated from its source automatically",
        cached: Integer [] "1 if the image was fetched for an instance and is kept as a cache",
        public: Integer [] "1 if the image is available to untrusted clients",
        created_at: Text [] "When the image was created (RFC 3339, as LXD gives it)",
        expires_at: Text [] "When the image expires",
        uploaded_at: Text [] "When the image was added to this daemon",
        last_used_at: Text [] "When an instance last used the image",
        update_source_server: Text [] "Server the image is updated from",
        update_source_protocol: Text [] "Protocol of that server (simplestreams, lxd)",
        update_source_certificate: Text [] "Certificate of that server",
        update_source_alias: Text [] "Alias of the image on that server",
    },
    examples: [
        "select id, os, release, aliases, size from lxd_images",
        "select * from lxd_images where id = '0123456789ab'",
    ],
}

/// Whether `s` can be (a prefix of) an image fingerprint: 1 to 64 hex digits. Only such
/// ids reach a request path; others match nothing.
fn is_fingerprint_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let images: Vec<(Value, Option<String>)> = match ctx.eq_texts(Col::id) {
        Some(ids) => {
            let mut found = Vec::new();
            for id in ids.into_iter().filter(|s| is_fingerprint_prefix(s)) {
                let target = format!("/1.0/images/{}", id.to_ascii_lowercase());
                if let Some(image) = lxd::get(ctx, table, &target)? {
                    found.push((image, Some(id)));
                }
            }
            found
        }
        None => lxd::list(ctx, table, "/1.0/images")?
            .into_iter()
            .map(|i| (i, None))
            .collect(),
    };
    for (image, asked) in &images {
        ctx.check()?;
        let mut row = rows.row();
        row.set(
            Col::id,
            asked.clone().unwrap_or_else(|| text(image, "fingerprint")),
        );
        row.set(Col::architecture, text(image, "architecture"));
        row.set(Col::os, text_in(image, "properties", "os"));
        row.set(Col::release, text_in(image, "properties", "release"));
        row.set(
            Col::description,
            text_in(image, "properties", "description"),
        );
        let aliases: Vec<String> = image
            .get("aliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| text(a, "name"))
            .collect();
        row.set(Col::aliases, aliases.join(","));
        row.set(Col::filename, text(image, "filename"));
        row.set(Col::size, int(image, "size"));
        row.set(Col::auto_update, flag(image, "auto_update"));
        row.set(Col::cached, flag(image, "cached"));
        row.set(Col::public, flag(image, "public"));
        row.set(Col::created_at, text(image, "created_at"));
        row.set(Col::expires_at, text(image, "expires_at"));
        row.set(Col::uploaded_at, text(image, "uploaded_at"));
        row.set(Col::last_used_at, text(image, "last_used_at"));
        row.set(
            Col::update_source_server,
            text_in(image, "update_source", "server"),
        );
        row.set(
            Col::update_source_protocol,
            text_in(image, "update_source", "protocol"),
        );
        row.set(
            Col::update_source_certificate,
            text_in(image, "update_source", "certificate"),
        );
        row.set(
            Col::update_source_alias,
            text_in(image, "update_source", "alias"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::lxd::testing::daemon;
    use crate::testing::{rows_of, text};
    use oxquery_table::{Op, Value};

    #[test]
    fn matches_the_image_the_test_imported() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let fp = d.image_fingerprint();
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let ids: Vec<String> = rows.iter().map(|r| text(&r[Col::id as usize])).collect();
        assert_eq!(ids, vec![fp.clone()]);
        let r = &rows[0];
        assert_eq!(text(&r[Col::architecture as usize]), "x86_64");
        assert_eq!(text(&r[Col::os as usize]), "oxqos");
        assert_eq!(text(&r[Col::release as usize]), "1.0");
        assert_eq!(text(&r[Col::description as usize]), "oxquery test image");
        assert_eq!(text(&r[Col::aliases as usize]), d.image_alias);
        let size: u64 = d
            .image_files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum();
        assert_eq!(r[Col::size as usize], Value::Integer(size as i64));
        for c in [Col::auto_update, Col::cached, Col::public] {
            assert_eq!(r[c as usize], Value::Integer(0));
        }
        // Imported today: the timestamps are RFC 3339 text of this year.
        let year = text(&r[Col::uploaded_at as usize]);
        assert!(year.len() > 20 && year.as_bytes()[4] == b'-', "{year}");

        // An id = (a prefix, in capitals) is asked by path and reported as asked.
        let prefix = fp[..12].to_ascii_uppercase();
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            prefix.clone(),
        );
        let by_id = rows_of(&ctx, generate);
        assert_eq!(by_id.len(), 1);
        assert_eq!(text(&by_id[0][Col::id as usize]), prefix);
        assert_eq!(by_id[0][1..], rows[0][1..]);
        for other in ["ffffffffffff", "../instances", ""] {
            let ctx =
                QueryContext::everything(TABLE.spec, &host).with_constraint(Col::id, Op::Eq, other);
            assert!(rows_of(&ctx, generate).is_empty(), "{other}");
        }
    }
}
