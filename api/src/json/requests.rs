//! What the API accepts: request bodies and query strings, each with
//! `deny_unknown_fields` so a misspelt option is a 400, not a silent
//! default.

use std::net::SocketAddr;
use std::path::PathBuf;

use bittide_core::picker::Priority;
use bittide_driver::session::views::{SettingsPatch, TorrentView};
use serde::{Deserialize, Deserializer};

/// `PATCH /api/v1/settings`: only the fields present change; `null`
/// removes a limit or goal.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsPatchJson {
    upload_rate: Option<u64>,
    download_rate: Option<u64>,
    max_connections: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    active_downloads: Option<Option<usize>>,
    #[serde(default, deserialize_with = "present")]
    active_seeds: Option<Option<usize>>,
    #[serde(default, deserialize_with = "present")]
    seed_ratio: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    seed_time: Option<Option<u64>>,
    seed_goal_remove: Option<bool>,
    download_dir: Option<PathBuf>,
}

impl SettingsPatchJson {
    pub(crate) fn into_patch(self) -> Result<SettingsPatch, String> {
        if let Some(Some(ratio)) = self.seed_ratio {
            if !ratio.is_finite() || ratio < 0.0 {
                return Err("seed_ratio must be a number ≥ 0, or null".into());
            }
        }
        Ok(SettingsPatch {
            upload_rate: self.upload_rate,
            download_rate: self.download_rate,
            max_connections: self.max_connections,
            active_downloads: self.active_downloads,
            active_seeds: self.active_seeds,
            seed_ratio: self.seed_ratio,
            seed_time: self.seed_time,
            seed_inactive_time: None,
            content_layout: None,
            seed_goal_remove: self.seed_goal_remove,
            download_dir: self.download_dir,
        })
    }
}

/// A field that is present (possibly `null`) becomes `Some(..)`; an absent
/// one stays `None` through `#[serde(default)]`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The options of an add, shared by the JSON body and the query string of
/// a raw upload. In a query string, `only`, `tags` and `peers` are
/// comma-separated.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddJson {
    pub(crate) magnet: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) torrent_base64: Option<String>,
    pub(crate) save_path: Option<PathBuf>,
    #[serde(default)]
    pub(crate) paused: bool,
    pub(crate) only: Option<Vec<usize>>,
    pub(crate) category: Option<String>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) sequential: bool,
    #[serde(default)]
    pub(crate) first_last_piece: bool,
    #[serde(default)]
    pub(crate) peers: Vec<SocketAddr>,
}

/// The query string of a raw .torrent upload (`?paused=true&only=0,2`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddQuery {
    pub(crate) save_path: Option<PathBuf>,
    #[serde(default)]
    pub(crate) paused: bool,
    pub(crate) only: Option<String>,
    pub(crate) category: Option<String>,
    pub(crate) tags: Option<String>,
    #[serde(default)]
    pub(crate) sequential: bool,
    #[serde(default)]
    pub(crate) first_last_piece: bool,
    pub(crate) peers: Option<String>,
}

impl AddQuery {
    /// The same options as a JSON add would give.
    pub(crate) fn into_json(self) -> Result<AddJson, String> {
        Ok(AddJson {
            save_path: self.save_path,
            paused: self.paused,
            only: self
                .only
                .map(|list| parse_list(&list, "only", "file indices"))
                .transpose()?,
            category: self.category,
            tags: match self.tags {
                Some(list) => parse_list(&list, "tags", "tags")?,
                None => Vec::new(),
            },
            sequential: self.sequential,
            first_last_piece: self.first_last_piece,
            peers: match self.peers {
                Some(list) => parse_list(&list, "peers", "ip:port addresses")?,
                None => Vec::new(),
            },
            ..AddJson::default()
        })
    }
}

fn parse_list<T: std::str::FromStr>(list: &str, field: &str, what: &str) -> Result<Vec<T>, String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| format!("{field}: expected comma-separated {what}"))
        })
        .collect()
}

/// `GET /api/v1/torrents?state=&category=&tag=&q=`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListFilter {
    state: Option<String>,
    category: Option<String>,
    tag: Option<String>,
    q: Option<String>,
}

impl ListFilter {
    pub(crate) fn validate(&self) -> Result<(), String> {
        const STATES: [&str; 7] = [
            "metadata",
            "checking",
            "queued",
            "downloading",
            "seeding",
            "paused",
            "error",
        ];
        match &self.state {
            Some(state) if !STATES.contains(&state.as_str()) => {
                Err(format!("state: expected one of {}", STATES.join(", ")))
            }
            _ => Ok(()),
        }
    }

    /// Whether `t` passes every filter given (`q`: a case-insensitive
    /// part of the name, or the start of the info-hash).
    pub(crate) fn keeps(&self, t: &TorrentView) -> bool {
        self.state.as_deref().is_none_or(|s| s == t.state.as_str())
            && self
                .category
                .as_deref()
                .is_none_or(|c| t.category.as_deref() == Some(c))
            && self
                .tag
                .as_deref()
                .is_none_or(|tag| t.tags.iter().any(|t| t == tag))
            && self.q.as_deref().is_none_or(|q| {
                let q = q.to_lowercase();
                t.name.to_lowercase().contains(&q) || t.info_hash.to_string().starts_with(&q)
            })
    }
}

/// `POST …/files`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrioritiesJson {
    pub(crate) priorities: Vec<FilePriorityJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilePriorityJson {
    pub(crate) index: usize,
    pub(crate) priority: PriorityJson,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PriorityJson {
    Skip,
    Low,
    Normal,
    High,
}

impl From<PriorityJson> for Priority {
    fn from(p: PriorityJson) -> Priority {
        match p {
            PriorityJson::Skip => Priority::Skip,
            PriorityJson::Low => Priority::Low,
            PriorityJson::Normal => Priority::Normal,
            PriorityJson::High => Priority::High,
        }
    }
}

/// `POST …/limits`: bytes/s, 0 for none; an absent field stays as it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsJson {
    pub(crate) upload: Option<u64>,
    pub(crate) download: Option<u64>,
}

/// `POST …/move`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveJson {
    pub(crate) save_path: PathBuf,
}

/// `POST …/rename`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameJson {
    pub(crate) name: String,
}

/// `POST …/options`: every field optional; `category: null` clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionsJson {
    pub(crate) sequential: Option<bool>,
    pub(crate) first_last_piece: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) category: Option<Option<String>>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) queue_position: Option<usize>,
}

/// `POST /api/v1/torrents/pause|resume`: `{"hashes": [...]}` or
/// `{"all": true}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkJson {
    #[serde(default)]
    pub(crate) hashes: Vec<String>,
    #[serde(default)]
    pub(crate) all: bool,
}

/// `DELETE /api/v1/torrents/{hash}?delete_data=true`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveQuery {
    #[serde(default)]
    pub(crate) delete_data: bool,
}

/// `POST /api/v1/login`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginJson {
    pub(crate) username: String,
    pub(crate) password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_patch_tells_null_from_absent() {
        let patch: SettingsPatchJson =
            serde_json::from_str(r#"{"active_downloads": null, "seed_ratio": 1.5}"#).unwrap();
        let patch = patch.into_patch().unwrap();
        assert_eq!(patch.active_downloads, Some(None));
        assert_eq!(patch.active_seeds, None);
        assert_eq!(patch.seed_ratio, Some(Some(1.5)));
        assert_eq!(patch.upload_rate, None);

        let negative: SettingsPatchJson = serde_json::from_str(r#"{"seed_ratio": -1}"#).unwrap();
        assert!(negative.into_patch().is_err());
        assert!(serde_json::from_str::<SettingsPatchJson>(r#"{"upload": 1}"#).is_err());
    }

    #[test]
    fn add_query_lists_are_comma_separated() {
        let query: AddQuery = parse_query("paused=true&only=0,2&tags=a,b&peers=127.0.0.1:6881");
        let add = query.into_json().unwrap();
        assert!(add.paused);
        assert_eq!(add.only, Some(vec![0, 2]));
        assert_eq!(add.tags, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(add.peers, vec!["127.0.0.1:6881".parse().unwrap()]);

        let bad: AddQuery = parse_query("only=0,x");
        assert_eq!(
            bad.into_json().err().unwrap(),
            "only: expected comma-separated file indices"
        );
    }

    /// Parses a query string the way the handlers do.
    fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> T {
        let uri: axum::http::Uri = format!("/x?{query}").parse().unwrap();
        axum::extract::Query::<T>::try_from_uri(&uri).unwrap().0
    }
}
