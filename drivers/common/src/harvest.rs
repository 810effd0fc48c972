//! A crawling engine over any runtime: the DHT walk (BEP 51) and the
//! metadata fetches (BEP 9) an index is built from
//! (`bittide dht crawl --index`, and the simulator's index scenario).
//!
//! One engine, one UDP socket (the DHT) and one TCP listener on the same
//! port (peers that connect back while we fetch). It crawls from the
//! start; the application sees every event (the harvested info-hashes,
//! the fetched metadata) and sends [`Command::FetchMetadata`] through the
//! [`Handle`] for the hashes it wants. It holds no torrent of its own and
//! writes nothing but the DHT state file (every five minutes and at the
//! end, as a download does).

use std::net::SocketAddr;
use std::time::Duration;

use bittide_core::dht::crawler::CrawlConfig;
use bittide_core::engine::{Engine, EngineConfig, Event, FetchConfig, Transports};

use crate::client::{dht_settings, peer_id_from, save_dht, SessionDht, DHT_SAVE_INTERVAL};
use crate::clock::os_seed;
use crate::driver::{Control, Driver, Ended, Handle};
use crate::runtime::Runtime;

/// The seed's child that names the peer id (the engine gets the seed).
const PEER_ID_SEED: u64 = 0x7065_6572;

/// What to crawl with.
#[derive(Clone, Debug)]
pub struct HarvestOptions {
    /// The UDP (DHT) and TCP (peers) address; an IPv6 one runs the IPv6
    /// DHT (BEP 32).
    pub listen: SocketAddr,
    /// Where to join, and the state file (the node's id and table).
    pub dht: SessionDht,
    /// Keep nodes whose id does not match their IP (BEP 42) out of the
    /// routing table.
    pub enforce_node_ids: bool,
    /// Stop after this long (`None`: when `on_event` says so).
    pub duration: Option<Duration>,
    /// The walk's limits (queries a second, nodes remembered).
    pub crawl: CrawlConfig,
    /// The fetches' limits (at once, queued, deadline, size).
    pub fetch: FetchConfig,
    /// The engine's seed (`None`: from the OS; the simulator gives one).
    pub seed: Option<bittide_core::Seed>,
}

/// Why a harvest could not start.
#[derive(Debug)]
pub struct HarvestError(pub String);

impl std::fmt::Display for HarvestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarvestError {}

/// Binds, starts the crawl, and runs the loop until `duration` has passed
/// or `on_event` asks to stop; `on_start` gets the handle (to send
/// fetches) and the address the sockets got.
pub async fn harvest<R: Runtime>(
    rt: R,
    options: HarvestOptions,
    on_start: impl FnOnce(Handle, SocketAddr),
    mut on_event: impl FnMut(Option<&Event>, &Engine) -> Control,
) -> Result<Ended, HarvestError> {
    let listener = rt
        .listen(options.listen)
        .await
        .map_err(|e| HarvestError(format!("cannot listen on {}: {e}", options.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| HarvestError(format!("listen address: {e}")))?;
    let udp = rt
        .bind_udp(local)
        .await
        .map_err(|e| HarvestError(format!("cannot bind UDP {local}: {e}")))?;
    let (mut dht, saved) = dht_settings(&options.dht, local.is_ipv6());
    dht.config.enforce_node_ids = options.enforce_node_ids;
    let seed = options.seed.unwrap_or_else(os_seed);
    let config = EngineConfig {
        peer_id: peer_id_from(seed.child(PEER_ID_SEED)),
        listen_port: local.port(),
        dht: Some(dht),
        // A crawler only fetches metadata: TCP reaches nearly every peer,
        // and no uTP socket competes with the DHT for the one UDP port.
        transports: Transports {
            tcp: true,
            utp: false,
        },
        ..EngineConfig::default()
    };
    let mut driver = Driver::new(rt.clone(), Engine::new(config, seed));
    driver.listen(listener);
    driver.set_udp(udp);
    let now = rt.now();
    driver.engine().set_fetch_config(options.fetch);
    driver.engine().crawl(now, options.crawl);
    on_start(driver.handle(), local);
    let state_file = options.dht.state_file;
    let end = options.duration.map(|d| now + d);
    let (mut last_save, mut snapshot) = (now, None::<Vec<u8>>);
    let ended = driver
        .run(|event, engine| {
            let at = rt.now();
            let stopped = matches!(event, Some(Event::Stopped));
            if let Some(path) = state_file
                .as_ref()
                .filter(|_| stopped || at - last_save >= DHT_SAVE_INTERVAL)
            {
                last_save = at;
                snapshot = engine.dht_state().map(|d| d.merged_over(&saved).encode());
                if let (false, Some(state)) = (stopped, snapshot.clone()) {
                    let path = path.clone();
                    rt.spawn(rt.spawn_blocking(Box::new(move || save_dht(&path, &state))));
                }
            }
            if end.is_some_and(|e| at >= e) {
                return Control::Shutdown;
            }
            on_event(event, engine)
        })
        .await;
    if let (Some(path), Some(state)) = (&state_file, &snapshot) {
        save_dht(path, state);
    }
    Ok(ended)
}
