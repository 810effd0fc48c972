//! `bittide daemon`: one long-lived session with many torrents, kept in a
//! state folder, controlled through the HTTP JSON API (`docs/api.md`) that
//! the remote commands (`bittide add`, `list`, …) and scripts use.
//!
//! It runs in the foreground as a service manager expects: logs go to
//! stderr (`log`), SIGTERM or SIGINT shuts down gracefully (the API stops
//! taking requests, trackers hear `stopped`, disks are synced and resume
//! data written, so the next start checks nothing it vouched for) and
//! exits 0; a second signal exits at once with 130.
//!
//! Start-up order matters for safety: the API configuration is checked
//! (a non-loopback bind without a login is refused) before the state
//! folder is opened or any socket bound.

mod config;
mod log;
mod signals;

use std::time::Duration;

use bittide_api::{ApiConfig, DEFAULT_MAX_BODY};
use bittide_core::engine::Transports;
use bittide_driver::client::SessionDht;
use bittide_driver::driver::Ended;
use bittide_driver::session::state::StateError;
use bittide_driver::session::views::SettingsPatch;
use bittide_driver::session::{OpenError, Session, SessionConfig, SessionHandle};
use bittide_tokio::runtime::TokioRuntime;
use tokio::net::TcpListener;

use self::config::Effective;
use self::signals::Signals;
use crate::exit::{Exit, Failure};
use crate::output::print;

/// How long a graceful shutdown may take before the daemon exits anyway
/// (a tracker that never answers must not keep a service manager
/// waiting; resume data not yet written only costs a recheck).
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(30);

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    #[command(flatten)]
    options: config::Options,
}

const EXAMPLES: &str = "\
Examples:
  bittide daemon                                   (API on 127.0.0.1:9850, peers on 6881)
  bittide daemon --download-dir /srv/dl --listen 51413 --upload-limit 2M
  bittide daemon --config /etc/bittide/daemon.toml --print-config
  bittide daemon --api 0.0.0.0:9850 --api-username admin --api-password …";

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let print_config = args.options.print_config;
    let settings = config::resolve(args.options)?;
    if print_config {
        return print(&settings.to_toml()?);
    }
    let api = ApiConfig {
        username: settings.api_username.clone(),
        password: settings.api_password.clone(),
        allowed_hosts: settings.allowed_host.clone(),
        max_body: DEFAULT_MAX_BODY,
        bind: settings.api,
        index: Some(settings.index.clone()),
    };
    // Before anything is opened or bound: an exposed API is refused.
    api.check()
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    log::init(settings.log_format);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Io, format!("runtime: {e}")))?;
    let result = rt.block_on(run(settings, api));
    // Tasks still blocked (a stuck disk) must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    if let Err(f) = &result {
        tracing::error!(error = %f, "bittide daemon failed");
    }
    result
}

/// Why the daemon stops.
enum Stop {
    /// SIGTERM or SIGINT.
    Signal(&'static str),
    /// The API server ended by itself (it cannot serve any more).
    Api(String),
    /// The session's loop ended by itself.
    Session(String),
}

async fn run(s: Effective, api: ApiConfig) -> Result<(), Failure> {
    let io = |what: &str, e: std::io::Error| Failure::new(Exit::Io, format!("{what}: {e}"));
    // Installed first, so a signal during start-up is not fatal at once.
    let mut signals = Signals::new().map_err(|e| io("signal handlers", e))?;

    let session = Session::open(TokioRuntime::current(), session_config(&s))
        .await
        .map_err(open_failure)?;
    for warning in session.warnings() {
        tracing::warn!(%warning, "state entry not loaded");
    }
    let listener = TcpListener::bind(api.bind)
        .await
        .map_err(|e| io(&format!("cannot listen for the API on {}", api.bind), e))?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| io("the API's address", e))?;
    let handle = session.handle();
    let listen = session.listen_addr();
    tokio::spawn(log::events(handle.subscribe()));
    let mut running = tokio::spawn(session.run());

    apply_given(&handle, &s).await;
    let loaded = handle.list().await.map_or(0, |l| l.len());
    tracing::info!(
        state = %s.state.display(),
        listen = %listen,
        api = %format!("http://{api_addr}"),
        torrents = loaded,
        dht = !s.no_dht,
        lsd = !s.no_lsd,
        "bittide daemon running"
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(bittide_api::serve(listener, handle.clone(), api, async {
        let _ = stop_rx.await;
    }));
    let stop = tokio::select! {
        name = signals.recv() => Stop::Signal(name),
        r = &mut server => Stop::Api(match r {
            Ok(Ok(())) => "the API server stopped".to_owned(),
            Ok(Err(e)) => format!("the API server failed: {e}"),
            Err(e) => format!("the API server failed: {e}"),
        }),
        r = &mut running => Stop::Session(match r {
            Ok(Ended::Shutdown) => "the session shut down".to_owned(),
            Ok(Ended::Aborted) => "the session was aborted".to_owned(),
            Err(e) => format!("the session failed: {e}"),
        }),
    };
    let failure = match stop {
        Stop::Signal(name) => {
            tracing::info!(
                signal = name,
                "shutting down (send it again to exit at once)"
            );
            tokio::spawn(exit_on_second_signal(signals));
            None
        }
        Stop::Api(why) | Stop::Session(why) => Some(Failure::new(Exit::Io, why)),
    };
    let _ = stop_tx.send(());
    handle.shutdown();
    let graceful = async {
        if !running.is_finished() {
            let _ = running.await;
        }
        if !server.is_finished() {
            let _ = server.await;
        }
    };
    if tokio::time::timeout(SHUTDOWN_LIMIT, graceful)
        .await
        .is_err()
    {
        return Err(Failure::new(
            Exit::Io,
            format!(
                "shutdown did not finish within {} s; exiting anyway",
                SHUTDOWN_LIMIT.as_secs()
            ),
        ));
    }
    match failure {
        Some(f) => Err(f),
        None => {
            tracing::info!("bittide daemon stopped");
            Ok(())
        }
    }
}

/// A second SIGTERM or SIGINT during shutdown: exit now, as a shell
/// reports death by SIGINT.
async fn exit_on_second_signal(mut signals: Signals) {
    signals.recv().await;
    tracing::warn!("second signal: exiting without finishing the shutdown");
    std::process::exit(Exit::Interrupted.code().into());
}

/// The session as the settings describe it.
fn session_config(s: &Effective) -> SessionConfig {
    // `Effective` always holds one address at least (the default).
    let mut c = SessionConfig::new(s.state.clone(), s.download_dir.clone(), s.listen[0]);
    c.also_listen = s.listen[1..].to_vec();
    c.lsd = !s.no_lsd;
    c.web_seeds = !s.no_web_seeds;
    c.dht = (!s.no_dht).then(|| SessionDht {
        bootstrap: s.dht_bootstrap.clone(),
        state_file: None,
        allow_local: false,
    });
    c.settings.upload_rate = s.upload_rate;
    c.settings.download_rate = s.download_rate;
    c.settings.max_connections = s.max_connections;
    c.settings.active_downloads = s.active_downloads;
    c.settings.active_seeds = s.active_seeds;
    c.settings.seed_ratio = s.seed_ratio;
    c.settings.seed_time = s.seed_time;
    c.max_peers = s.max_peers;
    c.max_peers_per_ip = s.max_peers_per_ip;
    c.encryption = s.encryption.into();
    c.transports = Transports {
        tcp: !s.no_tcp,
        utp: !s.no_utp,
    };
    c
}

/// The session keeps the settings changed through the API in its state
/// folder, and they win over the configuration at the next start — except
/// those the user gives again, by flag or config file, which are applied
/// now.
async fn apply_given(handle: &SessionHandle<TokioRuntime>, s: &Effective) {
    let g = s.given;
    let patch = SettingsPatch {
        upload_rate: g.upload_rate.then_some(s.upload_rate),
        download_rate: g.download_rate.then_some(s.download_rate),
        max_connections: g.max_connections.then_some(s.max_connections),
        active_downloads: g.active_downloads.then_some(s.active_downloads),
        active_seeds: g.active_seeds.then_some(s.active_seeds),
        seed_ratio: g.seed_ratio.then_some(s.seed_ratio),
        seed_time: g.seed_time.then_some(s.seed_time),
        seed_inactive_time: None,
        content_layout: None,
        seed_goal_remove: None,
        download_dir: g.download_dir.then(|| s.download_dir.clone()),
    };
    if patch != SettingsPatch::default() {
        if let Err(e) = handle.set_settings(patch).await {
            tracing::warn!(error = %e, "could not apply the settings given");
        }
    }
}

/// A session that cannot start, said so that the user knows what to do.
fn open_failure(e: OpenError) -> Failure {
    match e {
        OpenError::State(StateError::Locked(dir)) => Failure::new(
            Exit::Io,
            format!(
                "{}: another bittide daemon (or session) is using this state folder; \
                 stop it or pass another --state",
                dir.display()
            ),
        ),
        e => Failure::new(Exit::Io, e.to_string()),
    }
}
