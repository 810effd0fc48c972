//! `ut_holepunch` messages (BEP 55): how a peer connected to two others
//! that cannot reach each other (both behind NATs that drop unsolicited
//! packets) helps them connect.
//!
//! The initiator A sends `rendezvous(B)` to a relay R connected to both;
//! R answers with an error, or sends `connect(B)` to A and `connect(A)` to
//! B, and both dial each other over uTP at once: each one's outgoing
//! datagrams open its own NAT for the other's.
//!
//! Unlike BEP 9 and 11 the payload is binary, not bencoded (BEP 55):
//!
//! ```text
//! msg_type  u8          0 rendezvous, 1 connect, 2 error
//! addr_type u8          0 IPv4, 1 IPv6
//! addr      4 or 16 bytes
//! port      u16         big endian
//! err_code  u32         big endian; 0 unless msg_type is error
//! ```
//!
//! libtorrent (2.0, `bt_peer_connection::write_holepunch_msg`) leaves
//! `err_code` out of rendezvous and connect messages, so those are 8 or
//! 20 bytes; we read both forms ([`HolepunchForm`]) and send BEP 55's
//! (libtorrent reads what it needs and ignores the rest).
//!
//! Otherwise decoding is strict: a message too short for its address
//! type, an unknown message or address type, bytes after `err_code`, and
//! a non-zero `err_code` on a rendezvous or connect are errors, so every
//! message that decodes encodes back, in its form, to exactly the bytes
//! it came from.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{DecodeError, DecodeErrorKind};

/// The extension's name in the BEP 10 handshake's `m`.
pub const UT_HOLEPUNCH: &str = "ut_holepunch";

/// Bytes of an IPv4 message: type, address type, 4 + 2 address bytes,
/// error code.
const LEN_V4: usize = 1 + 1 + 4 + 2 + 4;
/// Bytes of an IPv6 message.
const LEN_V6: usize = 1 + 1 + 16 + 2 + 4;
/// Bytes of `err_code`, which libtorrent leaves out of rendezvous and
/// connect messages.
const ERR_CODE_LEN: usize = 4;

/// How a message was laid out on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HolepunchForm {
    /// BEP 55's: `err_code` always there (0 but in errors).
    Bep55,
    /// libtorrent's for rendezvous and connect: no `err_code`.
    NoErrorCode,
}

/// The BEP 55 message types.
mod msg_type {
    pub(super) const RENDEZVOUS: u8 = 0x00;
    pub(super) const CONNECT: u8 = 0x01;
    pub(super) const ERROR: u8 = 0x02;
}

/// The BEP 55 address types.
mod addr_type {
    pub(super) const IPV4: u8 = 0x00;
    pub(super) const IPV6: u8 = 0x01;
}

/// One `ut_holepunch` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HolepunchMessage {
    /// To a relay: "connect me to this peer of yours".
    Rendezvous(SocketAddr),
    /// From a relay: "this peer will dial you now; dial it too".
    Connect(SocketAddr),
    /// From a relay: the rendezvous for `addr` cannot happen.
    Error {
        /// The peer the rendezvous named.
        addr: SocketAddr,
        /// Why not.
        code: HolepunchErrorCode,
    },
}

/// Why a relay refused a rendezvous (BEP 55 `err_code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HolepunchErrorCode {
    /// 1: the target is not a peer the relay knows.
    NoSuchPeer,
    /// 2: the relay is not connected to the target.
    NotConnected,
    /// 3: the target does not speak `ut_holepunch`.
    NoSupport,
    /// 4: the target is the initiator itself.
    NoSelf,
    /// A code BEP 55 does not define (0 included), kept as sent.
    Other(u32),
}

impl HolepunchErrorCode {
    /// The wire value.
    pub fn code(self) -> u32 {
        match self {
            HolepunchErrorCode::NoSuchPeer => 1,
            HolepunchErrorCode::NotConnected => 2,
            HolepunchErrorCode::NoSupport => 3,
            HolepunchErrorCode::NoSelf => 4,
            HolepunchErrorCode::Other(c) => c,
        }
    }

    /// From the wire value.
    pub fn from_code(code: u32) -> HolepunchErrorCode {
        match code {
            1 => HolepunchErrorCode::NoSuchPeer,
            2 => HolepunchErrorCode::NotConnected,
            3 => HolepunchErrorCode::NoSupport,
            4 => HolepunchErrorCode::NoSelf,
            c => HolepunchErrorCode::Other(c),
        }
    }
}

impl fmt::Display for HolepunchErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HolepunchErrorCode::NoSuchPeer => f.write_str("the relay does not know that peer"),
            HolepunchErrorCode::NotConnected => f.write_str("the relay is not connected to it"),
            HolepunchErrorCode::NoSupport => f.write_str("that peer does not speak ut_holepunch"),
            HolepunchErrorCode::NoSelf => f.write_str("that peer is the initiator itself"),
            HolepunchErrorCode::Other(c) => write!(f, "holepunch error code {c}"),
        }
    }
}

/// Why a `ut_holepunch` payload did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolepunchDecodeError {
    /// Fewer bytes than the message and address type need.
    Truncated {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A `msg_type` other than 0, 1 and 2.
    UnknownMessageType(u8),
    /// An `addr_type` other than 0 and 1.
    UnknownAddressType(u8),
    /// Bytes after `err_code`.
    TrailingBytes(usize),
    /// A rendezvous or connect with a non-zero `err_code` (BEP 55: "0
    /// unless msg_type is error").
    ErrorCodeOutsideError(u32),
}

impl fmt::Display for HolepunchDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HolepunchDecodeError::Truncated { needed, got } => {
                write!(f, "ut_holepunch message of {got} bytes, needs {needed}")
            }
            HolepunchDecodeError::UnknownMessageType(t) => {
                write!(f, "unknown ut_holepunch msg_type {t}")
            }
            HolepunchDecodeError::UnknownAddressType(t) => {
                write!(f, "unknown ut_holepunch addr_type {t}")
            }
            HolepunchDecodeError::TrailingBytes(n) => {
                write!(f, "{n} bytes after the ut_holepunch message")
            }
            HolepunchDecodeError::ErrorCodeOutsideError(c) => {
                write!(f, "ut_holepunch err_code {c} on a message that is no error")
            }
        }
    }
}

impl std::error::Error for HolepunchDecodeError {}

impl From<HolepunchDecodeError> for DecodeError {
    fn from(e: HolepunchDecodeError) -> DecodeError {
        let (kind, offset, context) = match e {
            HolepunchDecodeError::Truncated { got, .. } => {
                (DecodeErrorKind::UnexpectedEnd, got, "ut_holepunch message")
            }
            HolepunchDecodeError::UnknownMessageType(_) => {
                (DecodeErrorKind::OutOfRange, 0, "ut_holepunch msg_type")
            }
            HolepunchDecodeError::UnknownAddressType(_) => {
                (DecodeErrorKind::OutOfRange, 1, "ut_holepunch addr_type")
            }
            HolepunchDecodeError::TrailingBytes(n) => {
                (DecodeErrorKind::TrailingBytes, n, "ut_holepunch message")
            }
            HolepunchDecodeError::ErrorCodeOutsideError(_) => {
                (DecodeErrorKind::OutOfRange, 0, "ut_holepunch err_code")
            }
        };
        DecodeError::new(kind, offset, context)
    }
}

impl HolepunchMessage {
    /// The address the message names.
    pub fn addr(&self) -> SocketAddr {
        match *self {
            HolepunchMessage::Rendezvous(a) | HolepunchMessage::Connect(a) => a,
            HolepunchMessage::Error { addr, .. } => addr,
        }
    }

    /// Decodes an extended message's payload, in either form; never
    /// panics.
    pub fn decode(payload: &[u8]) -> Result<HolepunchMessage, HolepunchDecodeError> {
        HolepunchMessage::decode_form(payload).map(|(m, _)| m)
    }

    /// Decodes a payload and says which form it had.
    pub fn decode_form(
        payload: &[u8],
    ) -> Result<(HolepunchMessage, HolepunchForm), HolepunchDecodeError> {
        let truncated = |needed| HolepunchDecodeError::Truncated {
            needed,
            got: payload.len(),
        };
        let [kind, family, rest @ ..] = payload else {
            return Err(truncated(LEN_V4));
        };
        if !matches!(
            *kind,
            msg_type::RENDEZVOUS | msg_type::CONNECT | msg_type::ERROR
        ) {
            return Err(HolepunchDecodeError::UnknownMessageType(*kind));
        }
        let (ip_len, len) = match *family {
            addr_type::IPV4 => (4, LEN_V4),
            addr_type::IPV6 => (16, LEN_V6),
            other => return Err(HolepunchDecodeError::UnknownAddressType(other)),
        };
        let short = len - ERR_CODE_LEN;
        let form = match payload.len() {
            n if n == short && *kind != msg_type::ERROR => HolepunchForm::NoErrorCode,
            n if n < len => return Err(truncated(len)),
            n if n > len => return Err(HolepunchDecodeError::TrailingBytes(n - len)),
            _ => HolepunchForm::Bep55,
        };
        let (ip_bytes, rest) = rest.split_at(ip_len);
        let ip = match *ip_bytes {
            [a, b, c, d] => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            _ => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(ip_bytes);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
        };
        let (err, port) = match *rest {
            [p0, p1] => (0, [p0, p1]),
            [p0, p1, e0, e1, e2, e3] => (u32::from_be_bytes([e0, e1, e2, e3]), [p0, p1]),
            _ => return Err(truncated(len)),
        };
        let addr = SocketAddr::new(ip, u16::from_be_bytes(port));
        let message = match *kind {
            msg_type::ERROR => HolepunchMessage::Error {
                addr,
                code: HolepunchErrorCode::from_code(err),
            },
            _ if err != 0 => return Err(HolepunchDecodeError::ErrorCodeOutsideError(err)),
            msg_type::RENDEZVOUS => HolepunchMessage::Rendezvous(addr),
            _ => HolepunchMessage::Connect(addr),
        };
        Ok((message, form))
    }

    /// Appends the payload in BEP 55's form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_form(HolepunchForm::Bep55, out);
    }

    /// Appends the payload in `form` (an error always carries its code).
    pub fn encode_form(&self, form: HolepunchForm, out: &mut Vec<u8>) {
        let (kind, code) = match *self {
            HolepunchMessage::Rendezvous(_) => (msg_type::RENDEZVOUS, 0),
            HolepunchMessage::Connect(_) => (msg_type::CONNECT, 0),
            HolepunchMessage::Error { code, .. } => (msg_type::ERROR, code.code()),
        };
        let addr = self.addr();
        out.push(kind);
        match addr.ip() {
            IpAddr::V4(ip) => {
                out.push(addr_type::IPV4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(addr_type::IPV6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&addr.port().to_be_bytes());
        if form == HolepunchForm::Bep55 || kind == msg_type::ERROR {
            out.extend_from_slice(&code.to_be_bytes());
        }
    }

    /// The payload as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN_V6);
        self.encode(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> SocketAddr {
        "10.1.2.3:6881".parse().unwrap()
    }

    #[test]
    fn bep55_layout_ipv4() {
        let m = HolepunchMessage::Connect(v4());
        assert_eq!(
            m.to_vec(),
            [1, 0, 10, 1, 2, 3, 0x1a, 0xe1, 0, 0, 0, 0],
            "msg_type, addr_type, address, port, err_code"
        );
        let e = HolepunchMessage::Error {
            addr: v4(),
            code: HolepunchErrorCode::NoSupport,
        };
        assert_eq!(e.to_vec(), [2, 0, 10, 1, 2, 3, 0x1a, 0xe1, 0, 0, 0, 3]);
    }

    #[test]
    fn round_trips_both_families_and_every_code() {
        let v6: SocketAddr = "[2001:db8::7]:51413".parse().unwrap();
        let mut all = vec![
            HolepunchMessage::Rendezvous(v4()),
            HolepunchMessage::Rendezvous(v6),
            HolepunchMessage::Connect(v6),
        ];
        for code in [1, 2, 3, 4, 0, 99] {
            all.push(HolepunchMessage::Error {
                addr: v6,
                code: HolepunchErrorCode::from_code(code),
            });
        }
        for m in all {
            let bytes = m.to_vec();
            assert_eq!(bytes.len(), if m.addr().is_ipv4() { 12 } else { 24 });
            assert_eq!(HolepunchMessage::decode(&bytes), Ok(m));
        }
        assert_eq!(HolepunchErrorCode::from_code(4), HolepunchErrorCode::NoSelf);
    }

    #[test]
    fn libtorrents_form_without_err_code_is_read() {
        // What libtorrent 2.0 sends: no err_code on rendezvous and connect.
        let short = [1, 0, 10, 1, 2, 3, 0x1a, 0xe1];
        let (m, form) = HolepunchMessage::decode_form(&short).unwrap();
        assert_eq!(
            (m, form),
            (HolepunchMessage::Connect(v4()), HolepunchForm::NoErrorCode)
        );
        let mut again = Vec::new();
        m.encode_form(form, &mut again);
        assert_eq!(again, short);
        assert_eq!(m.to_vec().len(), 12, "we send BEP 55's form");
        // An error needs its code.
        assert!(HolepunchMessage::decode(&[2, 0, 10, 1, 2, 3, 0x1a, 0xe1]).is_err());
        let v6: SocketAddr = "[2001:db8::7]:51413".parse().unwrap();
        let mut short6 = HolepunchMessage::Rendezvous(v6).to_vec();
        short6.truncate(20);
        assert_eq!(
            HolepunchMessage::decode(&short6),
            Ok(HolepunchMessage::Rendezvous(v6))
        );
    }

    #[test]
    fn malformed_messages_are_errors() {
        let good = HolepunchMessage::Rendezvous(v4()).to_vec();
        for cut in (0..good.len()).filter(|&c| c != 8) {
            assert!(
                matches!(
                    HolepunchMessage::decode(&good[..cut]),
                    Err(HolepunchDecodeError::Truncated { .. })
                ),
                "{cut} bytes"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            HolepunchMessage::decode(&long),
            Err(HolepunchDecodeError::TrailingBytes(1))
        );
        let mut kind = good.clone();
        kind[0] = 3;
        assert_eq!(
            HolepunchMessage::decode(&kind),
            Err(HolepunchDecodeError::UnknownMessageType(3))
        );
        let mut family = good.clone();
        family[1] = 2;
        assert_eq!(
            HolepunchMessage::decode(&family),
            Err(HolepunchDecodeError::UnknownAddressType(2))
        );
        // An IPv4 message claiming IPv6 is too short for it.
        family[1] = 1;
        assert!(matches!(
            HolepunchMessage::decode(&family),
            Err(HolepunchDecodeError::Truncated { needed: 24, .. })
        ));
        let mut code = good;
        code[11] = 1;
        assert_eq!(
            HolepunchMessage::decode(&code),
            Err(HolepunchDecodeError::ErrorCodeOutsideError(1))
        );
        let e: DecodeError = HolepunchDecodeError::UnknownMessageType(3).into();
        assert_eq!(e.kind(), DecodeErrorKind::OutOfRange);
        assert!(HolepunchDecodeError::TrailingBytes(2)
            .to_string()
            .contains("2 bytes"));
    }
}
