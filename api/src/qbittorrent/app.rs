//! `app/…` (version, preferences) and `transfer/…` (the session's rates
//! and limits), mapped onto the session's settings
//! (`src/webui/api/appcontroller.cpp`, `transfercontroller.cpp`).

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::Response;
use bittide_driver::disk::ContentLayout;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::{SessionSettings, SettingsPatch};
use serde_json::{json, Value};

use super::{json, ok, text, Call, QbtError};

/// The qBittorrent release whose WebAPI this answers like.
pub(crate) const APP_VERSION: &str = "v5.0.2";
/// Its WebAPI version: ≥ 2.11.0 makes clients use `stop`/`start` and
/// expect `stoppedDL`/`stoppedUP`.
pub(crate) const WEBAPI_VERSION: &str = "2.11.2";

pub(crate) async fn handle<R: Runtime>(call: Call<R>, method: &str) -> Result<Response, QbtError> {
    match method {
        "version" => Ok(text(StatusCode::OK, APP_VERSION)),
        "webapiVersion" => Ok(text(StatusCode::OK, WEBAPI_VERSION)),
        "buildInfo" => Ok(json(&json!({
            "qt": "", "libtorrent": "", "boost": "", "openssl": "", "zlib": "",
            "bitness": usize::BITS,
            "platform": std::env::consts::OS,
        }))),
        "defaultSavePath" => {
            let s = call.app.session.settings().await?;
            Ok(text(StatusCode::OK, s.download_dir.display().to_string()))
        }
        "preferences" => {
            let s = call.app.session.settings().await?;
            Ok(json(&preferences(&s)))
        }
        "setPreferences" => set_preferences(call).await,
        _ => Err(QbtError::NotFound(String::new())),
    }
}

/// The preferences the *arr apps and web front ends read.
fn preferences(s: &SessionSettings) -> Value {
    let queueing = s.active_downloads.is_some() || s.active_seeds.is_some();
    let active = |v: Option<usize>| v.map_or(-1, |n| n as i64);
    json!({
        "save_path": s.download_dir.display().to_string(),
        "temp_path_enabled": false,
        "temp_path": "",
        "max_ratio_enabled": s.seed_ratio.is_some(),
        "max_ratio": s.seed_ratio.unwrap_or(-1.0),
        "max_seeding_time_enabled": s.seed_time.is_some(),
        // qBittorrent counts seeding time in minutes.
        "max_seeding_time": s.seed_time.map_or(-1, |secs| (secs / 60) as i64),
        "max_inactive_seeding_time_enabled": s.seed_inactive_time.is_some(),
        "max_inactive_seeding_time": s.seed_inactive_time.map_or(-1, |secs| (secs / 60) as i64),
        // 0: stop the torrent, 1: remove it (its data kept).
        "max_ratio_act": u8::from(s.seed_goal_remove),
        "queueing_enabled": queueing,
        "max_active_downloads": active(s.active_downloads),
        "max_active_uploads": active(s.active_seeds),
        "max_active_torrents": -1,
        "dl_limit": s.download_rate,
        "up_limit": s.upload_rate,
        "max_connec": s.max_connections,
        "max_connec_per_torrent": -1,
        "dht": true,
        "pex": true,
        "lsd": false,
        "encryption": 0,
        "auto_tmm_enabled": false,
        "start_paused_enabled": false,
        "create_subfolder_enabled": s.content_layout != ContentLayout::NoSubfolder,
        "torrent_content_layout": super::add::layout_name(s.content_layout),
        "web_ui_port": 0,
        "locale": "en",
    })
}

/// `app/setPreferences`: form field `json`, an object of the keys above;
/// keys bittide has no setting for are ignored, as qBittorrent ignores
/// unknown ones.
async fn set_preferences<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let raw = call.params.require("json")?;
    let v: Value = serde_json::from_str(raw)
        .map_err(|_| QbtError::BadParams("'json' is not a JSON object".into()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| QbtError::BadParams("'json' is not a JSON object".into()))?;
    let current = call.app.session.settings().await?;
    let patch = patch_of(obj, &current)?;
    call.app.session.set_settings(patch).await?;
    Ok(ok())
}

fn patch_of(
    obj: &serde_json::Map<String, Value>,
    current: &SessionSettings,
) -> Result<SettingsPatch, QbtError> {
    let bad = |k: &str| QbtError::BadParams(format!("'{k}' has an invalid value"));
    let num = |k: &str| -> Result<Option<f64>, QbtError> {
        obj.get(k)
            .map(|v| v.as_f64().filter(|n| n.is_finite()).ok_or_else(|| bad(k)))
            .transpose()
    };
    let flag = |k: &str| -> Result<Option<bool>, QbtError> {
        obj.get(k)
            .map(|v| v.as_bool().ok_or_else(|| bad(k)))
            .transpose()
    };
    let mut patch = SettingsPatch::default();
    if let Some(path) = obj.get("save_path") {
        let path = path
            .as_str()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("save_path"))?;
        patch.download_dir = Some(PathBuf::from(path));
    }

    // A goal is on when enabled and ≥ 0; a value given alone changes the
    // goal only if it is already on.
    let ratio_on = flag("max_ratio_enabled")?.unwrap_or(current.seed_ratio.is_some());
    let ratio = num("max_ratio")?.or(current.seed_ratio);
    if obj.contains_key("max_ratio_enabled") || obj.contains_key("max_ratio") {
        patch.seed_ratio = Some(ratio.filter(|r| ratio_on && *r >= 0.0));
    }
    // Times in minutes, kept in seconds.
    let time_goal = |on_key: &str, key: &str, now: Option<u64>| {
        let on = flag(on_key)?.unwrap_or(now.is_some());
        let minutes = num(key)?.or(now.map(|s| s as f64 / 60.0));
        let given = obj.contains_key(on_key) || obj.contains_key(key);
        Ok::<_, QbtError>(given.then(|| {
            minutes
                .filter(|m| on && *m >= 0.0)
                .map(|m| (m * 60.0) as u64)
        }))
    };
    patch.seed_time = time_goal(
        "max_seeding_time_enabled",
        "max_seeding_time",
        current.seed_time,
    )?;
    patch.seed_inactive_time = time_goal(
        "max_inactive_seeding_time_enabled",
        "max_inactive_seeding_time",
        current.seed_inactive_time,
    )?;
    if let Some(v) = obj.get("torrent_content_layout") {
        let layout = v.as_str().and_then(super::add::layout_from_name);
        patch.content_layout = Some(layout.ok_or_else(|| bad("torrent_content_layout"))?);
    }
    if let Some(act) = num("max_ratio_act")? {
        patch.seed_goal_remove = match act as i64 {
            0 => Some(false),
            1 => Some(true),
            _ => return Err(bad("max_ratio_act")),
        };
    }

    let count = |k: &str| -> Result<Option<Option<usize>>, QbtError> {
        Ok(num(k)?.map(|n| (n >= 0.0).then_some(n as usize)))
    };
    let queueing = flag("queueing_enabled")?;
    let downloads = count("max_active_downloads")?;
    let seeds = count("max_active_uploads")?;
    match queueing {
        Some(false) => {
            patch.active_downloads = Some(None);
            patch.active_seeds = Some(None);
        }
        _ => {
            patch.active_downloads = downloads;
            patch.active_seeds = seeds;
        }
    }
    let rate = |k: &str| -> Result<Option<u64>, QbtError> {
        Ok(num(k)?.map(|n| if n > 0.0 { n as u64 } else { 0 }))
    };
    patch.download_rate = rate("dl_limit")?;
    patch.upload_rate = rate("up_limit")?;
    if let Some(n) = num("max_connec")? {
        if n > 0.0 {
            patch.max_connections = Some(n as usize);
        }
    }
    Ok(patch)
}

/// `transfer/…`.
pub(crate) async fn transfer<R: Runtime>(
    call: Call<R>,
    method: &str,
) -> Result<Response, QbtError> {
    match method {
        "info" => {
            let s = call.app.session.stats().await?;
            let settings = call.app.session.settings().await?;
            Ok(json(&server_state(&s, &settings)))
        }
        "speedLimitsMode" => Ok(text(StatusCode::OK, "0")),
        "downloadLimit" => {
            let s = call.app.session.settings().await?;
            Ok(text(StatusCode::OK, s.download_rate.to_string()))
        }
        "uploadLimit" => {
            let s = call.app.session.settings().await?;
            Ok(text(StatusCode::OK, s.upload_rate.to_string()))
        }
        "setDownloadLimit" | "setUploadLimit" => {
            let limit = call
                .params
                .int("limit")?
                .ok_or_else(|| QbtError::BadParams("Missing required parameter: limit".into()))?;
            let limit = u64::try_from(limit).unwrap_or(0);
            let mut patch = SettingsPatch::default();
            if method == "setDownloadLimit" {
                patch.download_rate = Some(limit);
            } else {
                patch.upload_rate = Some(limit);
            }
            call.app.session.set_settings(patch).await?;
            Ok(ok())
        }
        _ => Err(QbtError::NotFound(String::new())),
    }
}

/// `transfer/info`, and `server_state` in `sync/maindata`.
pub(crate) fn server_state(
    s: &bittide_driver::session::views::SessionStats,
    settings: &SessionSettings,
) -> Value {
    json!({
        "dl_info_speed": s.download_rate,
        "dl_info_data": s.downloaded,
        "up_info_speed": s.upload_rate,
        "up_info_data": s.uploaded,
        "dl_rate_limit": settings.download_rate,
        "up_rate_limit": settings.upload_rate,
        "dht_nodes": s.dht_nodes.unwrap_or(0),
        "connection_status": "connected",
        "queueing": settings.active_downloads.is_some() || settings.active_seeds.is_some(),
        "use_alt_speed_limits": false,
        "refresh_interval": 1500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(text: &str, current: &SessionSettings) -> SettingsPatch {
        let v: Value = serde_json::from_str(text).unwrap();
        patch_of(v.as_object().unwrap(), current).unwrap()
    }

    #[test]
    fn inactive_seeding_time_is_set_in_minutes_and_shown_back() {
        let mut s = SessionSettings::default();
        let p = patch(
            r#"{"max_inactive_seeding_time_enabled": true, "max_inactive_seeding_time": 15}"#,
            &s,
        );
        assert_eq!(p.seed_inactive_time, Some(Some(900)));
        assert_eq!(p.seed_time, None, "the seeding time is left alone");
        s.seed_inactive_time = Some(900);
        let prefs = preferences(&s);
        assert_eq!(prefs["max_inactive_seeding_time_enabled"], true);
        assert_eq!(prefs["max_inactive_seeding_time"], 15);
        // Turned off; a value alone changes an enabled goal only.
        let off = patch(r#"{"max_inactive_seeding_time_enabled": false}"#, &s);
        assert_eq!(off.seed_inactive_time, Some(None));
        let only = patch(
            r#"{"max_inactive_seeding_time": 5}"#,
            &SessionSettings::default(),
        );
        assert_eq!(only.seed_inactive_time, Some(None));
    }
}
