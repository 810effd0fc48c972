//! `torrents/add`: `urls` (newline-separated magnets or http(s) URLs)
//! and/or `torrents` files, with `savepath`, `category`, `tags`,
//! `paused`/`stopped`, `sequentialDownload`, `firstLastPiecePrio`,
//! `upLimit`/`dlLimit`. Each torrent is in the session (so in
//! `torrents/info`) once this answers: the *arr apps look for it at once.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::Response;
use bittide_driver::disk::ContentLayout;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::{AddOptions, AddSource, RequestError};

use super::{labels, shares, text, Call, QbtError};

pub(crate) async fn add<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let p = &call.params;
    let mut sources = Vec::new();
    if let Some(urls) = p.get("urls") {
        for url in urls.lines().map(str::trim).filter(|u| !u.is_empty()) {
            let lower = url.to_ascii_lowercase();
            if lower.starts_with("magnet:") {
                sources.push(AddSource::Magnet(url.to_owned()));
            } else if lower.starts_with("http://") || lower.starts_with("https://") {
                sources.push(AddSource::Url(url.to_owned()));
            } else if url.len() == 40 && url.bytes().all(|b| b.is_ascii_hexdigit()) {
                // qBittorrent takes a bare info-hash as a magnet.
                sources.push(AddSource::Magnet(format!("magnet:?xt=urn:btih:{url}")));
            }
        }
    }
    // Every uploaded file is a .torrent, whatever its field is called
    // (qbittorrent-api names the field after the file).
    for (_, name, bytes) in &p.files {
        if bittide_core::metainfo::Metainfo::from_bytes(bytes).is_err() {
            return Err(QbtError::UnsupportedMediaType(format!(
                "Error: '{name}' is not a valid torrent file."
            )));
        }
        sources.push(AddSource::TorrentFile(bytes.clone()));
    }
    if sources.is_empty() {
        return Err(QbtError::BadParams(String::new()));
    }

    let category = p
        .get("category")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let tags = labels::split_tags(p.get("tags").unwrap_or(""));
    let mut save_path = p
        .get("savepath")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    if let Some(c) = &category {
        // An unknown category is created, as qBittorrent does; a known
        // one's save path applies when none is given.
        match call.app.session.categories().await.get(c) {
            Some(path) => {
                if save_path.is_none() {
                    save_path = path.clone();
                }
            }
            None => call.app.session.set_category_path(c.clone(), None).await?,
        }
    }
    call.app.session.create_tags(&tags).await?;
    let share = shares::parse(&call, "ratioLimit", "seedingTimeLimit", false).await?;
    let paused = p.flag("stopped").or(p.flag("paused")).unwrap_or(false);
    let content_layout =
        match p.get("contentLayout") {
            None => None,
            Some(name) => Some(layout_from_name(name).ok_or_else(|| {
                QbtError::BadParams(format!("'contentLayout' is invalid: {name}"))
            })?),
        };
    let options = AddOptions {
        save_path,
        paused,
        only: None,
        category,
        tags,
        sequential: p.flag("sequentialDownload").unwrap_or(false),
        first_last_piece: p.flag("firstLastPiecePrio").unwrap_or(false),
        peers: Vec::new(),
        content_layout,
    };
    let up = p.int("upLimit")?.and_then(|v| u64::try_from(v).ok());
    let down = p.int("dlLimit")?.and_then(|v| u64::try_from(v).ok());

    let mut added = 0;
    let mut first_error = None;
    for source in sources {
        match call.app.session.add(source, options.clone()).await {
            Ok(hash) => {
                added += 1;
                if let Some(limits) = share {
                    call.app.session.set_share_limits(hash, limits).await?;
                }
                if up.is_some() || down.is_some() {
                    call.app
                        .session
                        .set_torrent_limits(hash, up.unwrap_or(0), down.unwrap_or(0))
                        .await?;
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (added, first_error) {
        (0, Some(RequestError::BadTorrent(m))) => Err(QbtError::UnsupportedMediaType(m)),
        (0, Some(RequestError::ShuttingDown)) => Err(QbtError::Unavailable),
        // qBittorrent 5.0 answers a request that added nothing (a
        // duplicate, a URL that failed) with `Fails.`.
        (0, _) => Ok(text(StatusCode::OK, "Fails.")),
        _ => Ok(text(StatusCode::OK, "Ok.")),
    }
}

/// qBittorrent's name of a content layout (`torrent_content_layout`,
/// `contentLayout`).
pub(crate) fn layout_name(layout: ContentLayout) -> &'static str {
    match layout {
        ContentLayout::Original => "Original",
        ContentLayout::Subfolder => "Subfolder",
        ContentLayout::NoSubfolder => "NoSubfolder",
    }
}

/// The content layout qBittorrent calls `name`.
pub(crate) fn layout_from_name(name: &str) -> Option<ContentLayout> {
    [
        ContentLayout::Original,
        ContentLayout::Subfolder,
        ContentLayout::NoSubfolder,
    ]
    .into_iter()
    .find(|l| layout_name(*l) == name.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_are_qbittorrents() {
        for name in ["Original", "Subfolder", "NoSubfolder"] {
            let layout = layout_from_name(name).unwrap();
            assert_eq!(layout_name(layout), name);
        }
        assert_eq!(layout_from_name("Create"), None);
    }
}
