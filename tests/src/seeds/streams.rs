//! Seeds for the receive path: what a peer sends, read in various sizes.

use super::*;

/// `receive_buffer`: full blocks with other frames between them, every
/// kind of small frame, bytes that are not a handshake (an encrypted
/// stream), and a length prefix no frame may have. The first byte is the
/// mode (bit 0: a handshake first; bits 1-4: read sizes less one), then
/// the read sizes (times 331 bytes).
pub(super) fn receive_buffer() -> Seeds {
    let seed = |handshake: bool, sizes: &[u8], body: &[u8]| {
        let mut v = vec![u8::from(handshake) | ((sizes.len() as u8 - 1) << 1)];
        v.extend_from_slice(sizes);
        v.extend_from_slice(body);
        v
    };
    let mut blocks = Vec::new();
    for i in 0..4u32 {
        Frame::Piece {
            piece: PieceIndex(i / 2),
            offset: (i % 2) * 16384,
            data: Bytes::from(vec![i as u8; 16384]),
        }
        .encode(&mut blocks);
        if i == 1 {
            Frame::Have(PieceIndex(7)).encode(&mut blocks);
            Frame::KeepAlive.encode(&mut blocks);
        }
    }
    let mut rng = Rng::new(Seed::from_u64(84));
    let mut noise = vec![0u8; 4096];
    rng.fill(&mut noise);
    let mut huge = 0xffff_fff0u32.to_be_bytes().to_vec();
    huge.extend_from_slice(&[0x07; 600]);
    vec![
        ("blocks", seed(true, &[50, 0, 200, 7], &blocks)),
        ("small-frames", seed(true, &[1, 2, 13], &all_frames())),
        ("not-a-handshake", seed(false, &[3, 9], &noise)),
        ("huge-length", seed(true, &[1, 60], &huge)),
    ]
}
