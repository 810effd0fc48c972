//! The Mainline DHT (BEP 5): a Kademlia routing table of other nodes and,
//! to come, the node that answers queries, stores peers and runs lookups.

pub mod routing;
