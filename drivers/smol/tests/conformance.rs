//! The shared runtime conformance suite (`bittide_driver::conformance`) on
//! smol. One test, so descriptor counts are not disturbed by others.

use bittide_driver::conformance;

#[test]
fn conformance_suite() {
    let dir = std::env::temp_dir().join(format!("bittide-conf-smol-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let r = bittide_smol::block_on(conformance::all(bittide_smol::runtime(), dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    r.unwrap();
}
