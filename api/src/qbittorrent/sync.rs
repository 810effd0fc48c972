//! `sync/maindata`: what qBittorrent's web UI and most front ends poll.
//! Each answer carries a `rid`; a request naming the `rid` of an earlier
//! answer gets only what changed since (the changed fields of changed
//! torrents, `torrents_removed`, new and removed categories and tags, the
//! changed `server_state` fields). `rid` 0, or one no longer remembered,
//! gets everything with `full_update: true`
//! (`src/webui/api/synccontroller.cpp`).

use std::collections::{BTreeMap, VecDeque};

use axum::response::Response;
use bittide_driver::runtime::Runtime;
use serde_json::{json, Map, Value};

use super::app::server_state;
use super::{json, labels, lock, torrents, Call, QbtError};

/// Answers remembered to diff against: a few pollers at once each find
/// their last one.
const KEPT: usize = 8;

/// One answer, in full.
#[derive(Clone, Default)]
struct Snapshot {
    torrents: BTreeMap<String, Map<String, Value>>,
    categories: Map<String, Value>,
    tags: Vec<String>,
    server_state: Map<String, Value>,
}

/// The last answers, newest last.
#[derive(Default)]
pub(crate) struct Snapshots {
    kept: VecDeque<(u64, Snapshot)>,
    last_rid: u64,
}

pub(crate) async fn maindata<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let rid = call.params.int("rid")?.unwrap_or(0);
    let list = call.app.session.list().await?;
    let refs: Vec<_> = list.iter().collect();
    let rows = torrents::rows(&call, &refs).await?;
    let now = Snapshot {
        torrents: rows
            .into_iter()
            .filter_map(|mut row| {
                let hash = row.remove("hash")?.as_str()?.to_owned();
                Some((hash, row))
            })
            .collect(),
        categories: labels::categories(&call).await?,
        tags: labels::tags(&call).await?,
        server_state: match server_state(
            &call.app.session.stats().await?,
            &call.app.session.settings().await?,
        ) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    };

    let mut state = lock(&call.app.qbt);
    let snapshots = &mut state.sync;
    snapshots.last_rid += 1;
    let new_rid = snapshots.last_rid;
    let before = u64::try_from(rid)
        .ok()
        .filter(|&r| r != 0)
        .and_then(|r| snapshots.kept.iter().find(|(k, _)| *k == r))
        .map(|(_, s)| s.clone());
    let answer = match before {
        Some(before) => delta(&before, &now, new_rid),
        None => full(&now, new_rid),
    };
    snapshots.kept.push_back((new_rid, now));
    while snapshots.kept.len() > KEPT {
        snapshots.kept.pop_front();
    }
    Ok(json(&answer))
}

fn full(now: &Snapshot, rid: u64) -> Value {
    json!({
        "rid": rid,
        "full_update": true,
        "torrents": now.torrents,
        "categories": now.categories,
        "tags": now.tags,
        "server_state": now.server_state,
    })
}

/// Only what differs between `before` and `now`; keys with nothing to say
/// are left out, as qBittorrent leaves them out.
fn delta(before: &Snapshot, now: &Snapshot, rid: u64) -> Value {
    let mut out = Map::new();
    out.insert("rid".into(), json!(rid));

    let mut changed = Map::new();
    for (hash, row) in &now.torrents {
        let fields = match before.torrents.get(hash) {
            Some(old) => changed_fields(old, row),
            None => row.clone(),
        };
        if !fields.is_empty() {
            changed.insert(hash.clone(), Value::Object(fields));
        }
    }
    if !changed.is_empty() {
        out.insert("torrents".into(), Value::Object(changed));
    }
    let removed: Vec<&String> = before
        .torrents
        .keys()
        .filter(|h| !now.torrents.contains_key(*h))
        .collect();
    if !removed.is_empty() {
        out.insert("torrents_removed".into(), json!(removed));
    }

    let new_categories: Map<String, Value> = now
        .categories
        .iter()
        .filter(|(k, v)| before.categories.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !new_categories.is_empty() {
        out.insert("categories".into(), Value::Object(new_categories));
    }
    let gone: Vec<&String> = before
        .categories
        .keys()
        .filter(|k| !now.categories.contains_key(*k))
        .collect();
    if !gone.is_empty() {
        out.insert("categories_removed".into(), json!(gone));
    }

    let added_tags: Vec<&String> = now
        .tags
        .iter()
        .filter(|t| !before.tags.contains(t))
        .collect();
    if !added_tags.is_empty() {
        out.insert("tags".into(), json!(added_tags));
    }
    let removed_tags: Vec<&String> = before
        .tags
        .iter()
        .filter(|t| !now.tags.contains(t))
        .collect();
    if !removed_tags.is_empty() {
        out.insert("tags_removed".into(), json!(removed_tags));
    }

    let server = changed_fields(&before.server_state, &now.server_state);
    if !server.is_empty() {
        out.insert("server_state".into(), Value::Object(server));
    }
    Value::Object(out)
}

fn changed_fields(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[(&str, Value)]) -> Map<String, Value> {
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn delta_names_only_what_changed() {
        let mut a = Snapshot::default();
        a.torrents.insert(
            "aa".into(),
            row(&[("state", json!("downloading")), ("name", json!("x"))]),
        );
        a.torrents
            .insert("bb".into(), row(&[("state", json!("stalledUP"))]));
        a.tags = vec!["old".into()];
        a.server_state = row(&[("dl_info_speed", json!(5)), ("dht_nodes", json!(0))]);
        let mut b = a.clone();
        b.torrents.get_mut("aa").unwrap()["state"] = json!("stalledUP");
        b.torrents.remove("bb");
        b.torrents
            .insert("cc".into(), row(&[("state", json!("metaDL"))]));
        b.tags = vec!["new".into()];
        b.server_state["dl_info_speed"] = json!(0);
        b.categories
            .insert("tv".into(), json!({"name": "tv", "savePath": ""}));

        let d = delta(&a, &b, 7);
        assert_eq!(
            d,
            json!({
                "rid": 7,
                "torrents": {"aa": {"state": "stalledUP"}, "cc": {"state": "metaDL"}},
                "torrents_removed": ["bb"],
                "categories": {"tv": {"name": "tv", "savePath": ""}},
                "tags": ["new"],
                "tags_removed": ["old"],
                "server_state": {"dl_info_speed": 0},
            })
        );
        assert_eq!(delta(&b, &b, 8), json!({"rid": 8}));
        assert_eq!(full(&b, 9)["full_update"], json!(true));
    }
}
