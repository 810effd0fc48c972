//! Categories as a registry of their own: a category exists before any
//! torrent is in it and may carry a save path for the torrents added to
//! it (what qBittorrent's WebAPI and the *arr apps expect). Kept in
//! `STATE/categories` (`docs/state-folder.md`): a bencoded dictionary
//! `{version, categories: {name: {save_path?}}}`.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bittide_core::bencode::{self, Value};

use super::handle::SessionHandle;
use super::state::load_registry;
use super::views::RequestError;
use crate::runtime::Runtime;

/// Category name → the save path of its torrents (`None`: the session's
/// download folder).
pub type Categories = BTreeMap<String, Option<PathBuf>>;

const VERSION: i64 = 1;
const FILE: &str = "categories";

fn encode(categories: &Categories) -> Vec<u8> {
    let entries = categories
        .iter()
        .map(|(name, path)| {
            let fields = match path {
                Some(p) => vec![(&b"save_path"[..], Value::bytes(p.as_os_str().as_bytes()))],
                None => Vec::new(),
            };
            (name.as_bytes(), Value::dict(fields))
        })
        .collect();
    Value::dict(vec![
        (&b"version"[..], Value::int(VERSION)),
        (b"categories", Value::dict(entries)),
    ])
    .to_vec()
}

fn decode(bytes: &[u8]) -> Option<Categories> {
    let root = bencode::decode(bytes).ok()?;
    let d = root.as_dict()?;
    if d.get(b"version")?.as_int()? != VERSION {
        return None;
    }
    let mut out = Categories::new();
    for (name, fields) in d.get(b"categories")?.as_dict()?.iter() {
        let name = std::str::from_utf8(name).ok()?.to_owned();
        let path = fields
            .as_dict()
            .and_then(|f| f.get(b"save_path"))
            .and_then(Value::as_bytes)
            .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)));
        out.insert(name, path);
    }
    Some(out)
}

/// The categories kept in the state folder `root`.
pub(crate) fn load(root: &Path, warnings: &mut Vec<String>) -> Categories {
    load_registry(root, FILE, decode, warnings)
}

impl<R: Runtime> SessionHandle<R> {
    /// Every category and its save path.
    pub async fn categories(&self) -> Categories {
        self.shared.registry().categories.clone()
    }

    /// Creates a category, or changes its save path.
    pub async fn set_category_path(
        &self,
        name: String,
        save_path: Option<PathBuf>,
    ) -> Result<(), RequestError> {
        if name.trim().is_empty() {
            return Err(RequestError::BadRequest("a category needs a name".into()));
        }
        self.shared.registry().categories.insert(name, save_path);
        self.save_categories().await
    }

    /// Removes categories; their torrents are left without one.
    pub async fn remove_categories(&self, names: &[String]) -> Result<(), RequestError> {
        let emptied: Vec<_> = {
            let mut reg = self.shared.registry();
            for name in names {
                reg.categories.remove(name);
            }
            reg.entries
                .iter()
                .filter(|(_, e)| {
                    e.settings
                        .category
                        .as_ref()
                        .is_some_and(|c| names.contains(c))
                })
                .map(|(h, _)| *h)
                .collect()
        };
        for hash in emptied {
            self.set_category(hash, None).await?;
        }
        self.save_categories().await
    }

    async fn save_categories(&self) -> Result<(), RequestError> {
        let bytes = encode(&self.shared.registry().categories);
        self.save_state_file(FILE, bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_survive_their_file() {
        let mut c = Categories::new();
        c.insert("tv".into(), Some(PathBuf::from("/srv/tv shows")));
        c.insert("movies".into(), None);
        assert_eq!(decode(&encode(&c)), Some(c));
        assert_eq!(decode(b"d7:versioni2e10:categoriesdee"), None);
        assert_eq!(decode(b"garbage"), None);
    }
}
