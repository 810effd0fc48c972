//! The canonical encoder.

use super::value::{Kind, Value};

impl Value<'_> {
    /// Appends the canonical encoding of this value to `out`: dictionary
    /// keys sorted as raw bytes and unique (the first entry of a duplicated
    /// key is kept, the one lookups return).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self.kind() {
            Kind::Int(n) => encode_int(out, *n),
            Kind::Bytes(b) => encode_bytes(out, b),
            // As it came (canonical only if the input was).
            Kind::Unparsed => out.extend_from_slice(self.raw()),
            Kind::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode(out);
                }
                out.push(b'e');
            }
            Kind::Dict(dict) => {
                out.push(b'd');
                let entries = dict.entries();
                if entries.windows(2).all(|w| w[0].0 < w[1].0) {
                    for (k, v) in entries {
                        encode_bytes(out, k);
                        v.encode(out);
                    }
                } else {
                    let mut order: Vec<usize> = (0..entries.len()).collect();
                    // Stable, so the first of equal keys comes first.
                    order.sort_by(|&a, &b| entries[a].0.cmp(entries[b].0));
                    order.dedup_by(|b, a| entries[*a].0 == entries[*b].0);
                    for i in order {
                        encode_bytes(out, entries[i].0);
                        entries[i].1.encode(out);
                    }
                }
                out.push(b'e');
            }
        }
    }

    /// The canonical encoding as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Appends `i<n>e`.
pub fn encode_int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    push_decimal(out, n.unsigned_abs(), n < 0);
    out.push(b'e');
}

/// Appends `<len>:<bytes>`.
pub fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 21);
    push_decimal(out, bytes.len() as u64, false);
    out.push(b':');
    out.extend_from_slice(bytes);
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64, negative: bool) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use crate::bencode::{decode, decode_strict, Value};

    #[test]
    fn canonical_input_round_trips_byte_for_byte() {
        for input in [
            &b"i0e"[..],
            b"i-9223372036854775808e",
            b"i9223372036854775807e",
            b"0:",
            b"4:spam",
            b"le",
            b"de",
            b"d3:cow3:moo4:spam4:eggse",
            b"d4:spaml1:a1:bee",
            b"ld1:ai1eeli2eei3e5:helloe",
        ] {
            assert_eq!(decode(input).unwrap().to_vec(), input);
        }
    }

    #[test]
    fn unsorted_and_duplicate_keys_encode_canonically() {
        let v = decode(b"d1:bi1e1:ai2e1:bi3ee").unwrap();
        let out = v.to_vec();
        assert_eq!(out, b"d1:ai2e1:bi1ee");
        assert!(decode_strict(&out).is_ok());
    }

    #[test]
    fn built_values_encode() {
        let v = Value::dict(vec![
            (b"name", Value::bytes(b"x")),
            (b"length", Value::int(-12)),
            (b"files", Value::list(vec![Value::int(1)])),
        ]);
        assert_eq!(v.to_vec(), b"d5:filesli1ee6:lengthi-12e4:name1:xe");
    }
}
