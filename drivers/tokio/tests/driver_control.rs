//! The control part of the conformance suite (`bittide_driver::conformance::
//! control`) on a one-thread tokio runtime, as the CLI runs: the loop, the
//! socket reader and the test share one thread, so nothing but the loop's
//! order decides whether a command gets through a full data channel. (The
//! multi-threaded runtime runs it in `conformance.rs`.)

use bittide_driver::conformance;
use bittide_tokio::runtime::TokioRuntime;

#[test]
fn control_channel_on_one_thread() {
    let dir = std::env::temp_dir().join(format!("bittide-control-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move { conformance::control(TokioRuntime::current(), dir).await })
        .unwrap();
}
