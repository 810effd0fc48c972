//! The Mainline DHT (BEP 5): a Kademlia routing table of other nodes
//! ([`routing`]), the tokens and peer store behind `announce_peer`
//! ([`tokens`], [`store`]), and the node that answers queries and runs
//! lookups ([`Dht`]), the budgets that keep its answers from amplifying
//! floods ([`budget`]), the bookkeeping of a crawl ([`crawler`]) and its
//! flat-memory record of the info-hashes it met ([`seen`]), and the
//! state file that keeps a node's id and table across restarts
//! ([`SavedDht`]).

pub mod budget;
pub mod crawler;
mod node;
pub mod routing;
pub mod scrape;
pub mod security;
pub mod seen;
mod state;
pub mod store;
pub mod tokens;

pub use node::{Dht, DhtConfig, DhtEvent, LookupId, MAX_STATE_NODES};
pub use state::{SavedDht, SavedNode};
