//! The shared runtime conformance suite (`bittide_driver::conformance`) on
//! async-std. One test, so descriptor counts are not disturbed by others.
#![allow(deprecated)]

use bittide_driver::conformance;

#[test]
fn conformance_suite() {
    let dir = std::env::temp_dir().join(format!("bittide-conf-async-std-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let r =
        bittide_async_std::block_on(conformance::all(bittide_async_std::runtime(), dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    r.unwrap();
}
