//! `systemd_units`: every unit systemd's manager has loaded, asked over the system D-Bus.
//!
//! One `ListUnits` call gives the first ten columns for all units (no cap on the count).
//! `fragment_path`, `source_path`, `unit_file_state` and `user` each cost one property
//! round trip per unit, so they are read only when the query uses them. Without a system
//! bus, or without systemd on it, the table has no rows and says why in the log.

use oxquery_sys::systemd::{Manager, Unit, UnitProperty};
use oxquery_table::{QueryContext, RowMut, Rows, TableResult, table};

table! {
    name: "systemd_units",
    description: "Units known to systemd (services, sockets, timers, mounts, targets, ...) with their load, activity and job state, from the service manager over D-Bus.",
    columns: {
        id: Text [] "Unit name, such as sshd.service",
        description: Text [] "Human-readable description of the unit",
        load_state: Text [] "Whether the unit's configuration was loaded: loaded, not-found, masked, error, ...",
        active_state: Text [] "General activation state: active, inactive, failed, activating, deactivating, ...",
        sub_state: Text [] "Finer state specific to the unit type, such as running, exited, listening or dead",
        unit_file_state: Text [] "Install state of the unit file: enabled, disabled, static, masked, generated, ...",
        following: Text [] "Unit whose state this unit mirrors, empty if none",
        object_path: Text [] "D-Bus object path of the unit",
        job_id: BigInt [] "Identifier of the job queued for the unit, 0 if none",
        job_type: Text [] "Kind of the queued job (start, stop, restart, ...), empty if none",
        job_path: Text [] "D-Bus object path of the queued job, / if none",
        fragment_path: Text [] "Unit file the unit was loaded from",
        user: Text [] "Account a service runs as (empty when not set or not a service)",
        source_path: Text [] "File the unit was generated from (an init script, fstab, ...), empty if none",
    },
    examples: [
        "select id, active_state, sub_state from systemd_units where id like '%.service'",
        "select id, fragment_path from systemd_units where unit_file_state = 'enabled'",
    ],
}

/// The per-unit property behind each column that needs a round trip.
const PROPERTY_COLUMNS: [(Col, UnitProperty); 4] = [
    (Col::fragment_path, UnitProperty::FragmentPath),
    (Col::source_path, UnitProperty::SourcePath),
    (Col::unit_file_state, UnitProperty::UnitFileState),
    (Col::user, UnitProperty::User),
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    match Manager::connect_system() {
        Ok(manager) => generate_from(&manager, ctx, rows),
        Err(e) => {
            log::info!("systemd_units: no rows: {e}");
            Ok(())
        }
    }
}

/// The table's rows as `manager` reports them.
fn generate_from(manager: &Manager, ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let units = match manager.list_units() {
        Ok(units) => units,
        Err(e) => {
            log::info!("systemd_units: no rows: {e}");
            return Ok(());
        }
    };
    let wanted: Vec<(Col, UnitProperty)> = PROPERTY_COLUMNS
        .into_iter()
        .filter(|(col, _)| ctx.is_used(*col))
        .collect();
    for unit in units {
        ctx.check()?;
        let mut row = rows.row();
        for &(col, property) in &wanted {
            row.set(col, manager.unit_property_or_empty(&unit, property));
        }
        set_list_columns(&mut row, unit);
    }
    Ok(())
}

fn set_list_columns(row: &mut RowMut<'_>, unit: Unit) {
    row.set(Col::id, unit.id);
    row.set(Col::description, unit.description);
    row.set(Col::load_state, unit.load_state);
    row.set(Col::active_state, unit.active_state);
    row.set(Col::sub_state, unit.sub_state);
    row.set(Col::following, unit.following);
    row.set(Col::object_path, unit.object_path);
    row.set(Col::job_id, i64::from(unit.job_id));
    row.set(Col::job_type, unit.job_type);
    row.set(Col::job_path, unit.job_path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_sys::systemd::testing::{PrivateBus, sample_units, serve};
    use oxquery_table::{Host, Value};

    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    #[test]
    fn every_unit_of_a_fake_manager_with_all_columns() {
        let bus = PrivateBus::start().expect("start a private dbus-daemon");
        let units = sample_units(1_207);
        let server = serve(bus.address(), units.clone()).expect("serve the fake manager");
        let manager = Manager::connect(bus.address()).expect("connect");
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_from(&manager, &ctx, &mut rows).unwrap();
        assert_eq!(
            rows.len(),
            units.len(),
            "more than 1,000 units, none dropped"
        );
        for (row, f) in rows.iter().zip(&units) {
            let u = &f.unit;
            let expected = [
                (Col::id, text(&u.id)),
                (Col::description, text(&u.description)),
                (Col::load_state, text(&u.load_state)),
                (Col::active_state, text(&u.active_state)),
                (Col::sub_state, text(&u.sub_state)),
                (Col::unit_file_state, text(&f.unit_file_state)),
                (Col::following, text(&u.following)),
                (Col::object_path, text(&u.object_path)),
                (Col::job_id, Value::Integer(i64::from(u.job_id))),
                (Col::job_type, text(&u.job_type)),
                (Col::job_path, text(&u.job_path)),
                (Col::fragment_path, text(&f.fragment_path)),
                (Col::user, text(f.user.as_deref().unwrap_or(""))),
                (Col::source_path, text(&f.source_path)),
            ];
            for (col, want) in expected {
                assert_eq!(row[col as usize], want, "{} column {col:?}", u.id);
            }
        }
        // One read per unit for each of the three unit properties, one per service.
        let services = units.iter().filter(|f| f.user.is_some()).count();
        assert_eq!(server.property_reads(), 3 * units.len() + services);
    }

    #[test]
    fn unused_property_columns_cost_no_round_trip() {
        let bus = PrivateBus::start().expect("start a private dbus-daemon");
        let units = sample_units(50);
        let server = serve(bus.address(), units.clone()).expect("serve the fake manager");
        let manager = Manager::connect(bus.address()).expect("connect");
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).using([Col::id, Col::active_state]);
        let mut rows = Rows::for_context(&ctx);
        generate_from(&manager, &ctx, &mut rows).unwrap();
        assert_eq!(server.property_reads(), 0);
        let ids: Vec<&Value> = rows.column(Col::id);
        let want: Vec<Value> = units.iter().map(|f| text(&f.unit.id)).collect();
        assert_eq!(ids, want.iter().collect::<Vec<_>>());
        assert_eq!(
            rows.get(0).unwrap()[Col::fragment_path as usize],
            Value::Null
        );

        let ctx = QueryContext::everything(&SPEC, &host).using([Col::id, Col::user]);
        let mut rows = Rows::for_context(&ctx);
        generate_from(&manager, &ctx, &mut rows).unwrap();
        let services = units.iter().filter(|f| f.user.is_some()).count();
        assert_eq!(server.property_reads(), services);
    }

    #[test]
    fn a_bus_without_systemd_gives_no_rows() {
        let bus = PrivateBus::start().expect("start a private dbus-daemon");
        let manager = Manager::connect(bus.address()).expect("connect");
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_from(&manager, &ctx, &mut rows).unwrap();
        assert!(rows.is_empty());
    }

    /// The live host. This machine has no system bus, so the query must succeed with no
    /// rows; on a host with systemd the unit count must match `systemctl`'s.
    #[test]
    fn live_query_succeeds() {
        let engine = oxquery_engine::Engine::new(
            &[&TABLE],
            &oxquery_engine::TableFilter::default(),
            oxquery_table::InstanceInfo::default(),
        )
        .expect("engine");
        let rows = engine
            .query("select id, active_state from systemd_units")
            .expect("the query must not fail without a system bus")
            .rows;
        if Manager::connect_system().is_err() {
            assert!(rows.is_empty(), "no bus, yet rows: {rows:?}");
        } else if let Ok(out) = std::process::Command::new("systemctl")
            .args([
                "list-units",
                "--all",
                "--plain",
                "--no-legend",
                "--no-pager",
            ])
            .output()
        {
            let listed = String::from_utf8_lossy(&out.stdout).lines().count();
            assert!(out.status.success() && listed > 0);
            // Units can come and go between the two listings; allow a little drift.
            assert!(
                rows.len().abs_diff(listed) <= 5,
                "{} vs {listed}",
                rows.len()
            );
        }
    }
}
