//! The JSON report (schema: docs/audit-report.schema.json, `schema_version` 1).
//!
//! One target: `{"schema_version":1,"target":...,"checks_run":[...],"not_tested":[...],"findings":[...]}`.
//! Several targets: `{"schema_version":1,"targets":[<the same object without schema_version>, ...]}`.

use serde::Serialize;

use super::{TargetReport, SCHEMA_VERSION};

#[derive(Serialize)]
struct One<'a> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a TargetReport,
}

#[derive(Serialize)]
struct Many<'a> {
    schema_version: u32,
    targets: &'a [TargetReport],
}

pub fn render(reports: &[TargetReport]) -> String {
    let out = match reports {
        [one] => serde_json::to_string_pretty(&One {
            schema_version: SCHEMA_VERSION,
            report: one,
        }),
        many => serde_json::to_string_pretty(&Many {
            schema_version: SCHEMA_VERSION,
            targets: many,
        }),
    };
    // Serialising plain structs of strings and numbers cannot fail.
    out.unwrap_or_default()
}
