//! `--json`: one event a line on stdout, in the versioned schema that
//! `docs/json-events.md` documents and `docs/json-events.schema.json`
//! checks.
//!
//! Every event carries `v` (the schema version), `event` (its kind), `ts`
//! (Unix time in milliseconds) and `elapsed` (seconds since the command
//! started). A reader that meets a `v` it does not know should stop
//! trusting field meanings; new fields and new event kinds come without a
//! new `v` (readers ignore what they do not know).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The schema version: raised only when an existing field changes
/// meaning or type, or is removed.
pub(super) const VERSION: u64 = 1;

/// `done` went out: it is the last event, and comes once, whoever writes
/// it (the session's end, or a second Ctrl-C racing it).
static DONE: AtomicBool = AtomicBool::new(false);

/// One event as a line of JSON (without the newline). `fields` is an
/// object; its keys join the common ones.
pub(super) fn line(event: &str, elapsed: f64, fields: Value) -> String {
    let mut m = Map::new();
    m.insert("v".into(), VERSION.into());
    m.insert("event".into(), event.into());
    m.insert("ts".into(), unix_millis().into());
    // Milliseconds are plenty, and keep lines short.
    m.insert(
        "elapsed".into(),
        ((elapsed * 1000.0).round() / 1000.0).into(),
    );
    if let Value::Object(fields) = fields {
        m.extend(fields);
    }
    Value::Object(m).to_string()
}

/// Writes one event on stdout. Nothing is written after `done`.
pub(super) fn emit(event: &str, elapsed: f64, fields: Value) {
    if DONE.load(Ordering::SeqCst) {
        return;
    }
    if event == "done" && DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let text = line(event, elapsed, fields);
    let mut out = std::io::stdout().lock();
    // A reader that went away (a closed pipe) is not worth failing over.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Now as Unix time in milliseconds (0 on a clock before 1970).
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_has_the_common_fields() {
        let l = line("state", 1.23456, serde_json::json!({"state": "seeding"}));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["event"], "state");
        assert_eq!(v["elapsed"], 1.235);
        assert_eq!(v["state"], "seeding");
        assert!(v["ts"].as_u64().unwrap() > 1_600_000_000_000, "{l}");
        assert!(!l.contains('\n'));
    }
}
