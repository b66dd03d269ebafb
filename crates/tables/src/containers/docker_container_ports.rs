//! `docker_container_ports`: the ports the Docker daemon's containers expose or publish.

use super::docker::{self, asked_ids, int, reported_id, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_container_ports",
    description: "Ports of Docker containers, one row per exposed or published port and host address, from the Ports of GET /containers/json?all=1 (only running containers publish). id = becomes the API's id filter (an id may be a prefix of the full id). No daemon: no rows.",
    columns: {
        id: Text [ADDITIONAL | COLLATE_NOCASE] "Container id (64 hex digits, or the prefix the query asked for)",
        r#type: Text [] "Protocol: tcp, udp or sctp",
        port: Integer [] "Port inside the container",
        host_ip: Text [] "Host address the port is published on ('' when only exposed)",
        host_port: Integer [] "Host port it is published on (0 when only exposed)",
    },
    examples: ["select id, port, host_ip, host_port from docker_container_ports where host_port != 0"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let ids = asked_ids(ctx, Col::id);
    let Some(containers) = docker::list_containers(ctx, table, ids.as_deref(), None)? else {
        return Ok(());
    };
    for c in &containers {
        ctx.check()?;
        let id = reported_id(&text(c, "Id"), ids.as_deref());
        let ports = c.get("Ports").and_then(|p| p.as_array());
        for p in ports.into_iter().flatten() {
            let mut row = rows.row();
            row.set(Col::id, id.as_str());
            row.set(Col::r#type, text(p, "Type"));
            row.set(Col::port, int(p, "PrivatePort"));
            row.set(Col::host_ip, text(p, "IP"));
            row.set(Col::host_port, int(p, "PublicPort"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::{Op, Value};
    use std::collections::BTreeSet;

    #[test]
    fn matches_docker_port() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            d.running_id.clone(),
        );
        let rows = rows_of(&ctx, generate);
        let got: BTreeSet<String> = rows
            .iter()
            .map(|r| {
                let port = |c: Col| match r[c as usize] {
                    Value::Integer(i) => i,
                    ref v => panic!("{v:?}"),
                };
                format!(
                    "{}/{} -> {}:{}",
                    port(Col::port),
                    text(&r[Col::r#type as usize]),
                    text(&r[Col::host_ip as usize]),
                    port(Col::host_port)
                )
            })
            .collect();
        // `docker port` prints `8080/tcp -> 127.0.0.1:49153`.
        let want: BTreeSet<String> = d
            .cli(&["port", &d.running_id])
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(got, want);
        assert_eq!(rows.len(), 2);
    }
}
