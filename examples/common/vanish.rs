//! Vanished-peer rows (network namespaces): filled in by the dead-peer work.

use super::{Row, Table};

pub fn rows(table: &mut Table) {
    table.push(Row::skipped(
        "peer vanished, idle (keepalive)",
        "not built yet",
    ));
}
