//! `osquery_events`: the event publishers and subscribers of this process, with what
//! each has published or stored and, beyond osquery, what each has lost and why.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_events",
    description: "Information about the event publishers and subscribers. Beyond osquery, the hidden columns dropped and dropped_reasons count the events each lost (a kernel queue overflow, the events_max cap) and why.",
    attributes: [UTILITY],
    columns: {
        name: Text [] "Event publisher or subscriber name",
        publisher: Text [] "Name of the associated publisher",
        r#type: Text [] "Either publisher or subscriber",
        subscriptions: Integer [] "Number of subscriptions the publisher received or subscriber used",
        events: Integer [] "Number of events emitted or received since osquery started",
        refreshes: Integer [] "Publisher only: number of runloop restarts",
        active: Integer [] "1 if the publisher or subscriber is active else 0",
        dropped: BigInt [HIDDEN] "Events lost since start (oxquery)",
        dropped_reasons: Text [HIDDEN] "Why they were lost, with a count per reason (oxquery)",
    },
    examples: ["select name, type, events, active from osquery_events"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let statuses = ctx.host().event_statuses();
    for status in &statuses {
        let mut row = rows.row();
        row.set(Col::name, status.name.as_str());
        row.set(Col::publisher, status.publisher.as_str());
        row.set(Col::r#type, status.kind);
        row.set(Col::subscriptions, status.subscriptions);
        row.set(Col::events, status.events);
        row.set(Col::refreshes, status.refreshes);
        row.set(Col::active, status.active);
        row.set(Col::dropped, status.dropped);
        row.set(Col::dropped_reasons, status.dropped_reasons.as_str());
    }
    // Evented tables whose publisher is not running (events disabled, or the flag that
    // turns the publisher on is off) are subscribers too, inactive.
    for name in ctx.host().idle_evented_tables(&statuses) {
        let mut row = rows.row();
        row.set(Col::name, name.as_str());
        row.set(Col::r#type, "subscriber");
        row.set(Col::subscriptions, 0);
        row.set(Col::events, 0);
        row.set(Col::refreshes, 0);
        row.set(Col::active, 0);
        row.set(Col::dropped, 0);
        row.set(Col::dropped_reasons, "");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EventStatuses;
    use oxquery_table::{Attributes, EventStatus, Host, Registry, Table, Value};
    use std::sync::Arc;

    #[test]
    fn lists_the_hubs_publishers_and_subscribers_and_idle_evented_tables() {
        let evented =
            oxquery_table::TableSpec::new("idle_events", "", vec![], Attributes::EVENT_BASED);
        struct Idle(oxquery_table::TableSpec);
        impl Table for Idle {
            fn spec(&self) -> &oxquery_table::TableSpec {
                &self.0
            }
            fn generate(&self, _: &QueryContext<'_>, _: &mut Rows<'_>) -> TableResult {
                Ok(())
            }
        }
        let registry = Registry::with_tables([
            Arc::new(Idle(evented)) as Arc<dyn Table>,
            Arc::new(&TABLE) as Arc<dyn Table>,
        ])
        .unwrap();
        let host = Host {
            tables: registry,
            events: Some(Arc::new(EventStatuses(vec![EventStatus {
                name: "inotify".into(),
                publisher: "inotify".into(),
                kind: "publisher",
                subscriptions: 1,
                events: 12,
                refreshes: 1,
                active: 1,
                dropped: 3,
                dropped_reasons: "inotify queue overflow: 3".into(),
            }]))),
            ..Host::default()
        };
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let rows: Vec<&[Value]> = rows.iter().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][Col::events as usize], Value::Integer(12));
        assert_eq!(
            rows[0][Col::dropped_reasons as usize],
            Value::from("inotify queue overflow: 3")
        );
        assert_eq!(rows[1][Col::name as usize], Value::from("idle_events"));
        assert_eq!(rows[1][Col::active as usize], Value::Integer(0));
        assert_eq!(rows[1][Col::publisher as usize], Value::Null);
    }
}
