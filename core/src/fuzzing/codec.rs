//! Codec targets: every decoder of outside bytes, each checked by a round
//! trip through its encoder.

use crate::bencode::{self, Decoder};
use crate::metainfo::{Magnet, Metainfo, PieceIndex};

/// bencode: lenient decode; if it succeeds, the canonical encoding must
/// decode strictly to the same value and re-encode to the same bytes; and
/// input that was canonical must round-trip byte for byte. The pull
/// [`bencode::Reader`] must accept exactly what the tree decoder accepts,
/// and refuse the rest with the same error; so must a decoder told to
/// leave `info.files` unparsed (as .torrent files are read), with the
/// same key-order findings.
pub fn bencode(data: &[u8]) {
    let walked = walk(data);
    let decoded = Decoder::new().decode(data);
    let shallow = Decoder::new()
        .leave_unparsed(&[b"info", b"files"])
        .decode(data);
    match (&decoded, &shallow) {
        (Ok(a), Ok(b)) => assert_eq!(a.key_order, b.key_order, "key order differs unparsed"),
        (Err(a), Err(b)) => assert_eq!(a, b, "unparsed decoding fails differently"),
        _ => panic!("leaving info.files unparsed changed whether the input decodes"),
    }
    match (&walked, &decoded) {
        (Ok(()), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b, "reader and decoder disagree"),
        _ => panic!(
            "reader {walked:?} vs decoder {:?}",
            decoded.as_ref().map(|_| ())
        ),
    }
    let Ok(doc) = decoded else {
        return;
    };
    let encoded = doc.root.to_vec();
    let again = bencode::decode_strict(&encoded).expect("canonical encoding must decode strictly");
    assert_eq!(again.to_vec(), encoded, "encoding is not idempotent");
    if doc.key_order.is_canonical() {
        assert_eq!(encoded, data, "canonical input did not round-trip");
    }
    assert_eq!(doc.root.raw(), data, "root span must cover the input");
}

/// Walks `data` with the pull reader to its end.
fn walk(data: &[u8]) -> Result<(), crate::error::DecodeError> {
    let mut r = bencode::Reader::new(data);
    loop {
        r.next_token()?;
        if r.depth() == 0 {
            return r.finish();
        }
    }
}

/// metainfo: a torrent that parses must re-encode (canonically) to a
/// torrent that parses to the same content, and its layout must cover every
/// piece exactly.
pub fn metainfo(data: &[u8]) {
    let Ok(m) = Metainfo::from_bytes(data) else {
        return;
    };
    assert_eq!(m.info_hash, crate::InfoHash::of_info(m.info.raw()));
    let layout = m.info.layout();
    let mut covered = 0u64;
    for p in 0..layout.piece_count().min(4096) {
        let size = layout.piece_size(PieceIndex(p));
        let sum: u64 = layout.piece_slices(PieceIndex(p)).map(|s| s.length).sum();
        assert_eq!(sum, u64::from(size));
        covered += sum;
    }
    if layout.piece_count() <= 4096 {
        assert_eq!(covered, layout.total_length());
    }
    let reencoded = bencode::decode(data).unwrap().to_vec();
    let m2 = Metainfo::from_bytes_strict(&reencoded).expect("re-encoded torrent must parse");
    assert_eq!(m2.info.files(), m.info.files());
    assert_eq!(m2.info.name(), m.info.name());
    assert_eq!(m2.info.piece_length(), m.info.piece_length());
    assert_eq!(m2.info.piece_count(), m.info.piece_count());
    assert_eq!(m2.trackers(), m.trackers());
    assert_eq!(m2.info.v2_files(), m.info.v2_files());
    if m.key_order.is_canonical() {
        assert_eq!(m2.info_hash, m.info_hash);
        assert_eq!(m2.info_hash_v2, m.info_hash_v2);
    }
}

/// file_tree: a BEP 52 `file tree` that parses has only safe path
/// components, never an empty path, and a pieces root for every file
/// that has bytes; re-encoding it parses to the same files.
pub fn file_tree(data: &[u8]) {
    let Ok(tree) = bencode::decode(data) else {
        return;
    };
    let Ok(files) = crate::metainfo::parse_file_tree(&tree) else {
        return;
    };
    for f in &files {
        assert!(!f.path.is_empty(), "a file without a path");
        assert!(f
            .path
            .iter()
            .all(|c| crate::metainfo::check_component(c).is_ok()));
        assert!(f.length == 0 || f.pieces_root.is_some());
    }
    let again = tree.to_vec();
    let tree2 = bencode::decode(&again).expect("re-encoded");
    assert_eq!(
        crate::metainfo::parse_file_tree(&tree2).expect("re-parses"),
        files
    );
}

/// hash_tree: a file's piece layer (1 to 64 hashes from the input) and
/// BEP 52 hash requests against its tree: an answer has the requested
/// hashes and as many uncles as libtorrent counts, proves the file's
/// root when the request is aligned, and its `hashes` frame decodes back
/// to the same request and hashes.
pub fn hash_tree(data: &[u8]) {
    use crate::metainfo::hash_tree::{implied_root, FileTree};
    use crate::metainfo::merkle::LEAF;
    use crate::wire::{Frame, FrameDecoder, HashList, HashRequest};
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let pieces = usize::from(head % 64) + 1;
    let piece_length = (LEAF as u32) << (head / 64);
    let layer: Vec<[u8; 32]> = (0..pieces)
        .map(|i| {
            let mut h = [0u8; 32];
            h[0] = i as u8;
            h[1..9].copy_from_slice(&rest.get(i * 8..i * 8 + 8).unwrap_or(&[0; 8])[..8]);
            h
        })
        .collect();
    let tree = FileTree::from_piece_layer(&layer, piece_length);
    let piece_layer = (piece_length as usize / LEAF).trailing_zeros();
    for q in rest.get(pieces * 8..).unwrap_or(&[]).chunks_exact(4) {
        let request = HashRequest {
            pieces_root: tree.root(),
            base_layer: piece_layer + u32::from(q[0] % 4),
            index: u32::from(q[1]),
            length: u32::from(q[2] % 80),
            proof_layers: u32::from(q[3] % 9),
        };
        let Some(answer) = tree.hashes(&request) else {
            continue;
        };
        assert_eq!(
            answer.len(),
            request.length as usize + request.uncle_count() as usize,
            "{request:?}"
        );
        // The layer the proof ends at, above the piece layer: the
        // requested hashes' subtree root, or above the last uncle.
        let (k, p) = (request.length.trailing_zeros(), request.proof_layers);
        let end = k.max(p + 1);
        let top = pieces.next_power_of_two().trailing_zeros();
        let aligned =
            request.length.is_power_of_two() && request.index.is_multiple_of(request.length);
        if aligned && request.base_layer - piece_layer + end == top {
            assert_eq!(
                implied_root(&request, &answer, [0; 32]),
                Some(tree.root()),
                "{request:?}"
            );
        }
        let frame = Frame::Hashes {
            request,
            hashes: HashList::from_hashes(&answer),
        };
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let mut d = FrameDecoder::default();
        d.push(&bytes);
        assert_eq!(d.next_frame().expect("our frame decodes"), Some(frame));
    }
}

/// magnet: a magnet that parses must format to a URI that parses back
/// equal.
pub fn magnet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Magnet::parse(text) else {
        return;
    };
    let formatted = m.to_string();
    let again = Magnet::parse(&formatted).expect("formatted magnet must parse");
    assert_eq!(again, m, "magnet did not round-trip through {formatted}");
}

/// handshake: a 68-byte handshake that decodes re-encodes to the same
/// bytes; `check_prefix` never refuses a prefix of a valid one.
pub fn handshake(data: &[u8]) {
    use crate::wire::Handshake;
    if let Ok(h) = Handshake::decode(data) {
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, data);
        for n in 0..out.len() {
            assert!(Handshake::check_prefix(&out[..n]).is_ok());
        }
    }
}

fn limits_from(data: &[u8]) -> (crate::wire::FrameLimits, &[u8]) {
    use crate::wire::FrameLimits;
    match data.split_first() {
        Some((&b, rest)) if b & 1 == 1 => (
            FrameLimits {
                piece_count: Some(u32::from(b >> 1) * 8 + u32::from(b & 7)),
                ..FrameLimits::default()
            },
            rest,
        ),
        Some((_, rest)) => (FrameLimits::default(), rest),
        None => (FrameLimits::default(), data),
    }
}

fn decode_all(
    limits: crate::wire::FrameLimits,
    chunks: &[&[u8]],
) -> (Vec<crate::wire::Frame>, Option<crate::DecodeError>) {
    let mut d = crate::wire::FrameDecoder::new(limits);
    let mut frames = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

/// wire_frame: every frame decoded from a stream re-encodes to exactly the
/// bytes it was decoded from.
pub fn wire_frame(data: &[u8]) {
    let (limits, input) = limits_from(data);
    let (frames, _) = decode_all(limits, &[input]);
    let mut out = Vec::new();
    for f in &frames {
        f.encode(&mut out);
    }
    assert_eq!(
        &input[..out.len()],
        &out[..],
        "frames did not re-encode to their bytes"
    );
}

/// wire_stream: the input split at fuzz-chosen points decodes to the same
/// frames (and the same error) as the whole input at once.
pub fn wire_stream(data: &[u8]) {
    let (limits, rest) = limits_from(data);
    let Some((&n_cuts, rest)) = rest.split_first() else {
        return;
    };
    let n_cuts = usize::from(n_cuts % 16).min(rest.len() / 2);
    let (cut_bytes, input) = rest.split_at(n_cuts);
    let mut cuts: Vec<usize> = cut_bytes
        .iter()
        .map(|&c| usize::from(c) * input.len() / 256)
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut at = 0;
    for c in cuts {
        chunks.push(&input[at..c]);
        at = c;
    }
    chunks.push(&input[at..]);
    let whole = decode_all(limits, &[input]);
    let split = decode_all(limits, &chunks);
    assert_eq!(whole.0, split.0, "chunking changed the frames");
    assert_eq!(
        whole.1.map(|e| e.kind()),
        split.1.map(|e| e.kind()),
        "chunking changed the error"
    );
}

/// krpc: a datagram that decodes re-encodes to one that decodes to the
/// same message, and that encoding is stable.
pub fn krpc(data: &[u8]) {
    use crate::krpc::Message;
    let Ok(m) = Message::decode(data) else {
        return;
    };
    let mut out = Vec::new();
    m.encode(&mut out);
    let again = Message::decode(&out).expect("our encoding decodes");
    assert_eq!(again, m, "krpc round trip");
    let mut out2 = Vec::new();
    again.encode(&mut out2);
    assert_eq!(out2, out, "krpc encoding is stable");
}

/// ut_metadata: a payload that decodes re-encodes to one that decodes to
/// the same message (a data piece's bytes included), stably.
pub fn ut_metadata(data: &[u8]) {
    use crate::wire::MetadataMessage;
    let Ok(m) = MetadataMessage::decode(&bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut out = Vec::new();
    m.encode(&mut out);
    let again =
        MetadataMessage::decode(&bytes::Bytes::from(out.clone())).expect("our encoding decodes");
    assert_eq!(again, m, "ut_metadata round trip");
    let mut out2 = Vec::new();
    again.encode(&mut out2);
    assert_eq!(out2, out, "ut_metadata encoding is stable");
}

/// pex: a payload that decodes re-encodes (canonically) to one that
/// decodes to the same peers and flags, stably.
pub fn pex(data: &[u8]) {
    use crate::wire::PexMessage;
    let Ok(m) = PexMessage::decode(data) else {
        return;
    };
    assert!(m.added.len() <= 2 * crate::wire::MAX_PEX_PEERS);
    assert!(m.dropped.len() <= 2 * crate::wire::MAX_PEX_PEERS);
    let mut out = Vec::new();
    m.encode(&mut out);
    let again = PexMessage::decode(&out).expect("our encoding decodes");
    assert_eq!(again, m, "pex round trip");
    assert_eq!(
        bencode::decode_strict(&out).expect("canonical").to_vec(),
        out,
        "pex encoding is canonical"
    );
}

/// lsd_announce: a BEP 14 announce (from anyone on the network) that
/// decodes holds a non-zero port and at most `MAX_HASHES` info-hashes, and
/// re-encodes to one that decodes equal; the machine reading it never
/// panics and reports only info-hashes it announces itself.
pub fn lsd_announce(data: &[u8]) {
    use crate::lsd::{LocalDiscovery, LsdMessage, GROUP_V6, MAX_HASHES};
    use crate::{Instant, IpFamily, Seed};
    let mut lsd = LocalDiscovery::new(Instant::ZERO, 6881, &IpFamily::ALL, Seed::from_u64(1));
    let ours = crate::metainfo::InfoHash([0x11; 20]);
    lsd.add(Instant::ZERO, ours);
    lsd.handle_datagram(
        Instant::ZERO,
        "10.0.0.1:6771".parse().expect("an address"),
        data,
    );
    while let Some(p) = lsd.poll_peer() {
        assert_eq!(p.info_hash, ours, "a peer for a torrent we do not have");
        assert_ne!(p.addr.port(), 0);
    }
    let Ok(m) = LsdMessage::decode(data) else {
        return;
    };
    assert!(m.port != 0 && !m.info_hashes.is_empty() && m.info_hashes.len() <= MAX_HASHES);
    let again = LsdMessage::decode(&m.encode(GROUP_V6)).expect("our encoding decodes");
    // A cookie is kept as text, trimmed; one with a line break cannot be
    // written back as one header.
    if m.cookie
        .as_deref()
        .is_none_or(|c| !c.contains(['\r', '\n']))
    {
        assert_eq!(again, m, "lsd round trip");
    }
}

/// ut_holepunch: a payload that decodes (BEP 55, binary) encodes back, in
/// the form it came in (BEP 55's, or libtorrent's without `err_code`), to
/// exactly its bytes: the decoder is strict, so nothing is lost or made up.
pub fn ut_holepunch(data: &[u8]) {
    use crate::wire::HolepunchMessage;
    let Ok((m, form)) = HolepunchMessage::decode_form(data) else {
        return;
    };
    let mut out = Vec::new();
    m.encode_form(form, &mut out);
    assert_eq!(out, data, "ut_holepunch re-encodes to the same bytes");
    assert_eq!(HolepunchMessage::decode(&m.to_vec()), Ok(m), "BEP 55 form");
}

/// extension_handshake: a BEP 10 handshake that decodes re-encodes
/// (canonically) to one that decodes to the same value, stably; what it
/// keeps stays within the decoder's limits.
pub fn extension_handshake(data: &[u8]) {
    use crate::wire::ExtensionHandshake;
    let Ok(h) = ExtensionHandshake::decode(data) else {
        return;
    };
    assert!(h.messages.len() <= 128, "more extensions than the limit");
    assert!(
        h.messages.windows(2).all(|w| w[0].0 < w[1].0),
        "extension names not sorted and unique"
    );
    assert!(h.port != Some(0) && h.reqq != Some(0));
    let mut out = Vec::new();
    h.encode(&mut out);
    let again = ExtensionHandshake::decode(&out).expect("our encoding decodes");
    assert_eq!(again, h, "extension handshake round trip");
    let mut out2 = Vec::new();
    again.encode(&mut out2);
    assert_eq!(out2, out, "extension handshake encoding is stable");
    assert_eq!(
        bencode::decode_strict(&out).expect("canonical").to_vec(),
        out,
        "extension handshake encoding is canonical"
    );
}

/// bitfield: the first two bytes are the piece count, the rest the wire
/// bytes. `from_bytes` accepts exactly the right length with no spare
/// bit set; what it accepts gives back its bytes, counts its bits, lists
/// exactly the set pieces, and equals the same set built bit by bit.
pub fn bitfield(data: &[u8]) {
    use crate::Bitfield;
    let Some((len, bytes)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = u32::from(u16::from_be_bytes(*len));
    let spare = if len.is_multiple_of(8) {
        0
    } else {
        0xffu8 >> (len % 8)
    };
    let well_formed =
        bytes.len() == (len as usize).div_ceil(8) && bytes.last().is_none_or(|&b| b & spare == 0);
    let parsed = Bitfield::from_bytes(bytes, len);
    assert_eq!(
        parsed.is_some(),
        well_formed,
        "from_bytes accepted {len} wrong"
    );
    let Some(b) = parsed else {
        return;
    };
    assert_eq!(b.as_bytes(), bytes);
    assert_eq!(b.len(), len);
    let popcount: u32 = bytes.iter().map(|x| x.count_ones()).sum();
    assert_eq!(b.count(), popcount);
    assert_eq!(b.is_full(), popcount == len);
    let mut built = Bitfield::new(len);
    let mut listed = 0;
    for p in b.iter() {
        assert!(p.0 < len, "iter listed a piece out of range");
        assert!(b.get(p));
        assert!(built.set(p), "iter listed a piece twice");
        listed += 1;
    }
    assert_eq!(listed, popcount);
    assert_eq!(built, b, "bit by bit gives another set");
    assert!(!built.set(PieceIndex(len)), "set beyond the end");
    assert!(!b.get(PieceIndex(len)));
    for p in b.iter() {
        assert!(built.clear(p));
    }
    assert_eq!(built, Bitfield::new(len), "clearing every piece");
}

/// compact: IPv4 and IPv6 peer lists decode to one address per whole
/// entry with a non-zero port, of the right family; encoding them gives
/// back exactly those entries.
pub fn compact(data: &[u8]) {
    use crate::compact::{decode_entry, decode_v4, decode_v6, encode, V4_LEN, V6_LEN};
    for (width, v6) in [(V4_LEN, false), (V6_LEN, true)] {
        let peers: Vec<_> = if v6 {
            decode_v6(data).collect()
        } else {
            decode_v4(data).collect()
        };
        let kept: Vec<&[u8]> = data
            .chunks_exact(width)
            .filter(|c| c[width - 2..] != [0, 0])
            .collect();
        assert_eq!(peers.len(), kept.len(), "an entry lost or invented");
        let mut out = Vec::new();
        for (p, entry) in peers.iter().zip(&kept) {
            assert_eq!(p.is_ipv6(), v6, "wrong family");
            assert_ne!(p.port(), 0, "port 0 kept");
            let at = out.len();
            encode(&mut out, p);
            assert_eq!(&out[at..], *entry, "entry does not re-encode");
            assert_eq!(decode_entry(entry), Some(*p));
        }
    }
    let entry = decode_entry(data);
    assert_eq!(
        entry.is_some(),
        matches!(data.len(), V4_LEN | V6_LEN) && data[data.len() - 2..] != [0, 0]
    );
}

/// listing: any info dictionary (checked against its own SHA-1, so the
/// input reaches the parser) gives a listing or an error, never a panic;
/// a listing's text is free of control characters and within its bounds.
pub fn listing(data: &[u8]) {
    use crate::metainfo::{InfoHash, Listing, MAX_LISTED_FILES, MAX_LISTED_NAME, MAX_LISTED_PATH};
    let Ok(l) = Listing::from_metadata(InfoHash::of_info(data), data) else {
        return;
    };
    let clean = |s: &str, max: usize| s.len() <= max && !s.chars().any(char::is_control);
    assert!(clean(&l.name, MAX_LISTED_NAME), "name {:?}", l.name);
    assert!(l.files.len() <= MAX_LISTED_FILES && l.files.len() as u64 <= l.file_count);
    for f in &l.files {
        assert!(clean(&f.path, MAX_LISTED_PATH), "path {:?}", f.path);
    }
    assert!(Magnet::parse(&l.magnet()).is_ok());
}
