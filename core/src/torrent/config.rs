//! What a torrent is made from: its content ([`TorrentInfo`]), its
//! settings ([`TorrentConfig`]) and how it begins ([`StartMode`]).

use std::sync::Arc;

use bytes::Bytes;

use super::choker::SeedChoking;
use super::peers;
use crate::bitfield::Bitfield;
use crate::handles::ConnIds;
use crate::metainfo::hash_tree::FileTrees;
use crate::metainfo::{FileLayout, Info, InfoHash, PieceHash, PieceIndex};
use crate::peer::SessionConfig;
use crate::wire::{PeerId, Reserved};

/// What a torrent needs to know about its content.
#[derive(Clone, Debug)]
pub struct TorrentInfo {
    /// The info-hash on the wire: the v1 one, or a v2-only torrent's v2
    /// hash truncated (BEP 52).
    pub info_hash: InfoHash,
    /// The full v2 info-hash of a hybrid or v2-only torrent.
    pub info_hash_v2: Option<[u8; 32]>,
    /// A hybrid's v1 info-hash (SHA-1 of its info dictionary), which is
    /// its second name when it goes by its v2 name (added by a `btmh`
    /// magnet link); `None` for v1-only and v2-only torrents.
    pub info_hash_v1: Option<InfoHash>,
    /// Piece and file geometry.
    pub layout: FileLayout,
    /// What every piece must hash to (v1 SHA-1s, or BEP 52 merkle roots
    /// for a v2-only torrent).
    pub piece_hashes: Vec<PieceHash>,
    /// BEP 27: peers only from trackers.
    pub private: bool,
    /// Tracker tiers (BEP 12), each a list of announce URLs.
    pub trackers: Vec<Vec<String>>,
    /// The bencoded info dictionary, served to peers that ask for it
    /// (BEP 9); `None` when not kept.
    pub metadata: Option<Bytes>,
    /// Web seed URLs (BEP 19 `url-list`).
    pub web_seeds: Vec<String>,
    /// A v2 torrent's hash trees above the piece layer, which v2 peers
    /// may ask for (BEP 52 `hash request`); empty for v1.
    pub trees: Arc<FileTrees>,
}

impl TorrentInfo {
    /// A hybrid torrent's other name on the wire (BEP 52): its v2
    /// info-hash truncated, which peers of the v2 swarm know it by — or,
    /// for a hybrid that goes by that name (added by a `btmh` magnet
    /// link), its v1 info-hash. `None` for v1-only and v2-only torrents
    /// (those have one name).
    pub fn other_hash(&self) -> Option<InfoHash> {
        let v2 = InfoHash::truncated(self.info_hash_v2.as_ref()?);
        if v2 != self.info_hash {
            return Some(v2);
        }
        self.info_hash_v1.filter(|v1| *v1 != self.info_hash)
    }

    /// Every name the torrent answers to: its info-hash, then a hybrid's
    /// v2 name.
    pub fn names(&self) -> Vec<InfoHash> {
        std::iter::once(self.info_hash)
            .chain(self.other_hash())
            .collect()
    }

    /// From a parsed .torrent.
    pub fn from_metainfo(m: &crate::metainfo::Metainfo<'_>) -> TorrentInfo {
        let trackers = m
            .trackers()
            .into_iter()
            .map(|tier| tier.into_iter().map(str::to_owned).collect())
            .collect();
        let raw = Bytes::copy_from_slice(m.info.raw());
        let mut info = TorrentInfo::from_info(m.info_hash, &m.info, trackers, raw);
        info.web_seeds = m.url_list.iter().map(|u| (*u).to_owned()).collect();
        // Parsing checked every piece layer a v2-only torrent needs.
        info.piece_hashes = m.piece_hashes().unwrap_or_default();
        info.info_hash_v2 = m.info_hash_v2;
        // A hybrid's parse named it by its v1 hash already.
        info.info_hash_v1 = m.info.is_hybrid().then_some(m.info_hash);
        info.trees = Arc::new(FileTrees::from_layers(
            m.piece_layers.iter().map(|(root, layer)| (root, *layer)),
            m.info.piece_length(),
        ));
        info
    }

    /// From a parsed info dictionary whose bytes are `raw` (kept, not
    /// copied: a magnet's metadata as it arrived).
    pub fn from_info(
        info_hash: InfoHash,
        info: &Info<'_>,
        trackers: Vec<Vec<String>>,
        raw: Bytes,
    ) -> TorrentInfo {
        let count = info.piece_count();
        TorrentInfo {
            info_hash,
            info_hash_v2: None,
            info_hash_v1: None,
            layout: info.layout().clone(),
            piece_hashes: (0..count)
                .filter_map(|p| info.piece_hash(PieceIndex(p)).map(PieceHash::V1))
                .collect(),
            private: info.is_private(),
            trackers,
            metadata: Some(raw),
            web_seeds: Vec::new(),
            trees: Arc::default(),
        }
    }
}

/// Settings of one torrent.
#[derive(Clone, Debug)]
pub struct TorrentConfig {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Extension bits we advertise.
    pub reserved: Reserved,
    /// Most connected peers.
    pub max_peers: usize,
    /// Most connections per IP, in either direction (a host must not take
    /// every slot).
    pub max_peers_per_ip: usize,
    /// Most connection attempts in progress at once.
    pub max_half_open: usize,
    /// Regular unchoke slots (one optimistic slot comes on top).
    pub unchoke_slots: usize,
    /// Whether to keep an optimistic unchoke slot.
    pub optimistic_unchoke: bool,
    /// How a seeding torrent picks whom to unchoke.
    pub seed_choking: SeedChoking,
    /// Peer session timing.
    pub session: SessionConfig,
    /// Budget for block data held in memory (requested, received, awaiting
    /// verification or writing).
    pub max_buffered_bytes: u64,
    /// Pieces checked against the disk at once during start-up checking.
    pub max_checks_in_flight: usize,
    /// Where this torrent's outgoing connections get their ids (an engine
    /// shares one source between itself and all its torrents).
    pub conn_ids: ConnIds,
    /// The port we accept peers on, for tracker announces.
    pub listen_port: u16,
    /// Peers to ask each tracker for.
    pub numwant: Option<u32>,
    /// Upload limit in bytes/s (0: none).
    pub upload_rate: u64,
    /// Download limit in bytes/s (0: none).
    pub download_rate: u64,
    /// Speak `ut_holepunch` (BEP 55): relay rendezvous between our peers
    /// and ask for them (never on private torrents; the engine turns it
    /// off without uTP, which holepunching needs).
    pub holepunch: bool,
    /// Download from the torrent's web seeds (BEP 19).
    pub web_seeds: bool,
    /// A magnet's metadata larger than this is not fetched: peers claiming
    /// more are not asked (BEP 9 sets no limit; an index wants less than
    /// a download will accept).
    pub max_metadata_size: u64,
}

impl Default for TorrentConfig {
    fn default() -> TorrentConfig {
        TorrentConfig {
            peer_id: PeerId(*b"-BT0001-000000000000"),
            reserved: Reserved::FAST.with(Reserved::EXTENSION),
            max_peers: 50,
            max_peers_per_ip: peers::DEFAULT_MAX_PER_IP,
            max_half_open: 8,
            unchoke_slots: 4,
            optimistic_unchoke: true,
            seed_choking: SeedChoking::UploadRate,
            session: SessionConfig::default(),
            max_buffered_bytes: 64 << 20,
            max_checks_in_flight: 4,
            conn_ids: ConnIds::new(),
            listen_port: 6881,
            numwant: Some(50),
            upload_rate: 0,
            download_rate: 0,
            holepunch: true,
            web_seeds: true,
            max_metadata_size: crate::wire::MAX_METADATA_SIZE,
        }
    }
}

/// How to begin.
#[derive(Clone, Debug)]
pub enum StartMode {
    /// Nothing on disk yet.
    Fresh,
    /// Verify whatever is on disk first ([`TorrentOutput::Check`]).
    Check,
    /// Resume data says these pieces are on disk and verified.
    Trusted(Bitfield),
}
