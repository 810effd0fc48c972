//! The download limit paces requests, and requests it alone holds back
//! are always due at a deadline: whatever else the torrent hears meanwhile
//! (a send reported moves its clock on without asking for anything), they
//! go out once the bucket has a block's worth, not at the next choke
//! round ten seconds later. (Found by `bittide demo`: 16 MiB at 8 MiB/s
//! took 30 s.)

use super::leech::Leech;
use super::*;

const PIECE: u32 = 64 << 10;
/// A burst of four blocks (the bucket's least), then one every 250 ms.
const RATE: u64 = 64 << 10;

#[test]
fn requests_held_back_by_the_limit_are_due_whatever_comes_meanwhile() {
    let mut l = Leech::limited(PIECE, 8, 8 << 20, RATE);
    // The burst is asked for and sent; then the bucket is empty.
    let mut sent = 0;
    loop {
        let asked = l.asked();
        if asked.is_empty() {
            break;
        }
        sent += asked.len();
        for b in asked {
            l.send(b);
        }
    }
    assert!(sent >= 4, "the burst: {sent} blocks");
    let due = l.t.poll_timeout().expect("a deadline");
    assert!(due > l.now, "the bucket is empty at {:?}", l.now);
    let block_time = Duration::from_secs(u64::from(BLOCK_SIZE)) / RATE as u32;
    assert!(due <= l.now + block_time, "due {due:?}, now {:?}", l.now);

    // The tokens are back, and the first the torrent hears of the time is
    // a send reported on the connection.
    l.now = due + Duration::from_millis(1);
    l.t.handle_sent(l.now, l.conn, 17);
    l.disk();
    assert!(l.asked().is_empty(), "a reported send asks for nothing");
    let due = l.t.poll_timeout().expect("a deadline");
    assert!(
        due <= l.now,
        "the held requests are due ({due:?} at {:?})",
        l.now
    );
    l.t.handle_timeout(l.now);
    l.disk();
    assert_eq!(
        l.asked().len(),
        1,
        "one block's worth of tokens, one request"
    );
}

#[test]
fn an_unlimited_or_idle_download_has_no_rate_deadline() {
    // No limit: no deadline sooner than the choke round.
    let mut l = Leech::new(PIECE, 8, 8 << 20);
    let _ = l.asked();
    let due = l.t.poll_timeout().expect("a deadline");
    assert!(due >= l.now + Duration::from_secs(1), "due {due:?}");
    // A limit with tokens to spare and nothing left to ask: none either.
    let mut l = Leech::limited(PIECE, 1, 8 << 20, 100 << 20);
    l.serve(|_| false, |_| true);
    assert!(l
        .t
        .poll_timeout()
        .is_none_or(|t| t >= l.now + Duration::from_secs(1)));
}
