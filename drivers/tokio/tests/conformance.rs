//! The shared runtime conformance suite (`bittide_driver::conformance`) on
//! tokio. One test, so descriptor counts are not disturbed by others.

use bittide_driver::conformance;
use bittide_tokio::runtime::TokioRuntime;

#[test]
fn conformance_suite() {
    let dir = std::env::temp_dir().join(format!("bittide-conf-tokio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .expect("tokio runtime");
    let r = rt.block_on(async { conformance::all(TokioRuntime::current(), dir.clone()).await });
    let _ = std::fs::remove_dir_all(&dir);
    r.unwrap();
}
