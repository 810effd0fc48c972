//! Tags as a registry of their own: qBittorrent's `torrents/createTags`
//! makes a tag that no torrent carries yet, and clients list it with the
//! others. Kept in `STATE/tags` (`docs/state-folder.md`): a bencoded
//! dictionary `{version, tags: [name…]}`. Tags on torrents are kept with
//! each torrent's settings; the registry holds every tag ever created or
//! put on a torrent until it is deleted.

use std::collections::BTreeSet;
use std::path::Path;

use bittide_core::bencode::{self, Value};

use super::handle::SessionHandle;
use super::state::load_registry;
use super::views::RequestError;
use crate::runtime::Runtime;

/// Tag names, sorted.
pub type Tags = BTreeSet<String>;

const VERSION: i64 = 1;
const FILE: &str = "tags";

fn encode(tags: &Tags) -> Vec<u8> {
    let names = tags.iter().map(|t| Value::bytes(t.as_bytes())).collect();
    Value::dict(vec![
        (&b"version"[..], Value::int(VERSION)),
        (b"tags", Value::list(names)),
    ])
    .to_vec()
}

fn decode(bytes: &[u8]) -> Option<Tags> {
    let root = bencode::decode(bytes).ok()?;
    let d = root.as_dict()?;
    if d.get(b"version")?.as_int()? != VERSION {
        return None;
    }
    d.get(b"tags")?
        .as_list()?
        .iter()
        .map(|t| Some(std::str::from_utf8(t.as_bytes()?).ok()?.to_owned()))
        .collect()
}

/// The tags kept in the state folder `root`.
pub(crate) fn load(root: &Path, warnings: &mut Vec<String>) -> Tags {
    load_registry(root, FILE, decode, warnings)
}

/// qBittorrent's rule for a tag name: not empty, no comma (the list
/// separator of its API), no leading or trailing blanks.
pub fn valid_tag(name: &str) -> bool {
    !name.is_empty() && !name.contains(',') && name.trim() == name
}

impl<R: Runtime> SessionHandle<R> {
    /// Every registered tag and every tag a torrent carries, sorted.
    pub async fn tags(&self) -> Tags {
        let reg = self.shared.registry();
        let mut all = reg.tags.clone();
        for e in reg.entries.values() {
            all.extend(e.settings.tags.iter().cloned());
        }
        all
    }

    /// Registers tags (known ones are left as they are).
    pub async fn create_tags(&self, names: &[String]) -> Result<(), RequestError> {
        if let Some(bad) = names.iter().find(|n| !valid_tag(n)) {
            return Err(RequestError::BadRequest(format!("invalid tag {bad:?}")));
        }
        let changed = {
            let mut reg = self.shared.registry();
            let before = reg.tags.len();
            reg.tags.extend(names.iter().cloned());
            reg.tags.len() != before
        };
        if changed {
            self.save_tags().await?;
        }
        Ok(())
    }

    /// Forgets tags: out of the registry and off every torrent.
    pub async fn delete_tags(&self, names: &[String]) -> Result<(), RequestError> {
        let carrying: Vec<_> = {
            let mut reg = self.shared.registry();
            for name in names {
                reg.tags.remove(name);
            }
            reg.entries
                .iter()
                .filter(|(_, e)| e.settings.tags.iter().any(|t| names.contains(t)))
                .map(|(h, e)| {
                    let kept = e
                        .settings
                        .tags
                        .iter()
                        .filter(|t| !names.contains(t))
                        .cloned()
                        .collect();
                    (*h, kept)
                })
                .collect()
        };
        for (hash, kept) in carrying {
            self.set_tags(hash, kept).await?;
        }
        self.save_tags().await
    }

    async fn save_tags(&self) -> Result<(), RequestError> {
        let bytes = encode(&self.shared.registry().tags);
        self.save_state_file(FILE, bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_survive_their_file() {
        let tags: Tags = ["tv", "two words", "ünïcode"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(decode(&encode(&tags)), Some(tags));
        assert_eq!(decode(&encode(&Tags::new())), Some(Tags::new()));
        assert_eq!(
            decode(b"d4:tagsl1:ae7:versioni2ee"),
            None,
            "a newer version"
        );
        assert_eq!(decode(b"d4:tagsli1ee7:versioni1ee"), None, "not a string");
        assert_eq!(decode(b"garbage"), None);
    }

    #[test]
    fn tag_names_follow_qbittorrent() {
        assert!(valid_tag("tv"));
        assert!(valid_tag("two words"));
        assert!(!valid_tag(""));
        assert!(!valid_tag("a,b"));
        assert!(!valid_tag(" padded"));
    }
}
