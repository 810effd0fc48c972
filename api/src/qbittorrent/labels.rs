//! Categories (with a save path each) and tags: qBittorrent keeps both
//! as lists of their own, so a category or tag exists before any torrent
//! has it; the session keeps both lists in its state folder. The lists
//! answered are those plus every one a torrent uses.

use std::path::PathBuf;

use axum::response::Response;
use bittide_driver::runtime::Runtime;
use serde_json::{json, Map, Value};

use super::{json, ok, Call, QbtError};

pub(crate) async fn handle<R: Runtime>(call: Call<R>, method: &str) -> Result<Response, QbtError> {
    match method {
        "categories" => Ok(json(&Value::Object(categories(&call).await?))),
        "createCategory" | "editCategory" => {
            let name = call.params.require("category")?.trim().to_owned();
            if name.is_empty() {
                return Err(QbtError::BadParams("Category cannot be empty".into()));
            }
            let path = call
                .params
                .get("savePath")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from);
            let exists = call.app.session.categories().await.contains_key(&name);
            if method == "createCategory" {
                if !valid_category(&name) || exists {
                    return Err(QbtError::Conflict("Unable to create category".into()));
                }
            } else if !exists {
                return Err(QbtError::Conflict("Unable to edit category".into()));
            }
            call.app.session.set_category_path(name, path).await?;
            Ok(ok())
        }
        "removeCategories" => {
            let names: Vec<String> = call
                .params
                .require("categories")?
                .lines()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            call.app.session.remove_categories(&names).await?;
            Ok(ok())
        }
        "setCategory" => {
            let name = call.params.require("category")?.trim().to_owned();
            if !name.is_empty() && !categories(&call).await?.contains_key(&name) {
                return Err(QbtError::Conflict("Incorrect category name".into()));
            }
            let category = (!name.is_empty()).then_some(name);
            for hash in call.hashes().await? {
                call.app
                    .session
                    .set_category(hash, category.clone())
                    .await?;
            }
            Ok(ok())
        }
        "tags" => Ok(json(&Value::from(tags(&call).await?))),
        "createTags" => {
            let new = split_tags(call.params.require("tags")?);
            call.app.session.create_tags(&new).await?;
            Ok(ok())
        }
        "deleteTags" => {
            let gone = split_tags(call.params.require("tags")?);
            call.app.session.delete_tags(&gone).await?;
            Ok(ok())
        }
        "addTags" | "removeTags" => {
            let given = split_tags(call.params.get("tags").unwrap_or(""));
            let adding = method == "addTags";
            if adding {
                call.app.session.create_tags(&given).await?;
            }
            for hash in call.hashes().await? {
                let mut tags = call.app.session.torrent(hash).await?.torrent.tags;
                if adding {
                    for t in &given {
                        if !tags.contains(t) {
                            tags.push(t.clone());
                        }
                    }
                } else if given.is_empty() {
                    // No tags named: qBittorrent removes them all.
                    tags.clear();
                } else {
                    tags.retain(|t| !given.contains(t));
                }
                call.app.session.set_tags(hash, tags).await?;
            }
            Ok(ok())
        }
        _ => Err(QbtError::NotFound(String::new())),
    }
}

/// qBittorrent's rule: no empty path segment, no leading or trailing `/`,
/// no `\`.
fn valid_category(name: &str) -> bool {
    !name.starts_with('/') && !name.ends_with('/') && !name.contains("//") && !name.contains('\\')
}

/// A comma-separated list of tags (qBittorrent's form), blanks trimmed.
pub(crate) fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `{name: {name, savePath}}`: the session's categories and any other a
/// torrent is in (one added before the registry existed, or by bittide's
/// own API).
pub(crate) async fn categories<R: Runtime>(call: &Call<R>) -> Result<Map<String, Value>, QbtError> {
    let mut all = call.app.session.categories().await;
    for t in call.app.session.list().await? {
        if let Some(c) = t.category {
            all.entry(c).or_insert(None);
        }
    }
    Ok(all
        .into_iter()
        .map(|(name, path)| {
            let save_path = path.map(|p| p.display().to_string()).unwrap_or_default();
            let entry = json!({"name": name, "savePath": save_path});
            (name, entry)
        })
        .collect())
}

/// Created tags and those in use, sorted (the session's registry).
pub(crate) async fn tags<R: Runtime>(call: &Call<R>) -> Result<Vec<String>, QbtError> {
    Ok(call.app.session.tags().await.into_iter().collect())
}
