//! qBittorrent's parameters: one flat name → value map built from the
//! query string and the body (`application/x-www-form-urlencoded` or
//! `multipart/form-data`, RFC 7578), as its WebAPI merges them. Files of a
//! multipart body (`torrents`) are kept apart, with their bytes.

use std::collections::BTreeMap;

use super::QbtError;

/// The parameters of one request.
#[derive(Debug, Default)]
pub(crate) struct Params {
    fields: BTreeMap<String, String>,
    /// Uploaded files: (form field name, file name, bytes).
    pub(crate) files: Vec<(String, String, Vec<u8>)>,
}

impl Params {
    /// The value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The value of `name`, or 400 naming it.
    pub(crate) fn require(&self, name: &str) -> Result<&str, QbtError> {
        self.get(name)
            .ok_or_else(|| QbtError::BadParams(format!("Missing required parameter: {name}")))
    }

    /// `true`/`false` (qBittorrent's spelling); anything else is `None`.
    pub(crate) fn flag(&self, name: &str) -> Option<bool> {
        match self.get(name)?.trim() {
            "true" | "True" | "1" => Some(true),
            "false" | "False" | "0" => Some(false),
            _ => None,
        }
    }

    /// An integer parameter: absent is `None`, malformed is 400.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, QbtError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| QbtError::BadParams(format!("'{name}' must be an integer")))
            })
            .transpose()
    }

    /// A number parameter: absent is `None`, malformed is 400.
    pub(crate) fn number(&self, name: &str) -> Result<Option<f64>, QbtError> {
        self.get(name)
            .map(|v| match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(n),
                _ => Err(QbtError::BadParams(format!("'{name}' must be a number"))),
            })
            .transpose()
    }

    fn insert(&mut self, name: String, value: String) {
        self.fields.insert(name, value);
    }
}

/// The query string's and body's parameters; the body's win on a clash.
pub(crate) fn parse(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Params, QbtError> {
    let mut params = Params::default();
    if let Some(q) = query {
        urlencoded(q.as_bytes(), &mut params);
    }
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = content_type.unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" | "" => urlencoded(body, &mut params),
        "multipart/form-data" => {
            let boundary = content_type
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .filter(|b| !b.is_empty() && b.len() <= 70)
                .ok_or_else(|| QbtError::BadParams("multipart body without a boundary".into()))?;
            multipart(body, &boundary, &mut params)?;
        }
        _ => return Err(QbtError::UnsupportedMediaType(String::new())),
    }
    Ok(params)
}

fn urlencoded(bytes: &[u8], params: &mut Params) {
    for pair in bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        params.insert(percent_decode(name), percent_decode(value));
    }
}

/// `+` is a space and `%XX` a byte; invalid escapes stay as written and
/// invalid UTF-8 becomes U+FFFD.
fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a multipart body: text fields into `params`, parts with a
/// `filename` into `params.files`.
fn multipart(body: &[u8], boundary: &str, params: &mut Params) -> Result<(), QbtError> {
    let malformed = || QbtError::BadParams("malformed multipart body".into());
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = match find(body, delimiter) {
        Some(i) => &body[i + delimiter.len()..],
        None => return Err(malformed()),
    };
    loop {
        if rest.starts_with(b"--") {
            return Ok(());
        }
        rest = rest.strip_prefix(b"\r\n").ok_or_else(malformed)?;
        let head_end = find(rest, b"\r\n\r\n").ok_or_else(malformed)?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let after_head = &rest[head_end + 4..];
        let mut closing = Vec::with_capacity(delimiter.len() + 2);
        closing.extend_from_slice(b"\r\n");
        closing.extend_from_slice(delimiter);
        let end = find(after_head, &closing).ok_or_else(malformed)?;
        let content = &after_head[..end];
        rest = &after_head[end + closing.len()..];

        let disposition = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then(|| v.to_owned())
            })
            .ok_or_else(malformed)?;
        let name = disposition_param(&disposition, "name").ok_or_else(malformed)?;
        match disposition_param(&disposition, "filename") {
            Some(file) => params.files.push((name, file, content.to_vec())),
            None => params.insert(name, String::from_utf8_lossy(content).into_owned()),
        }
    }
}

/// `name="value"` from a `Content-Disposition` value.
fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_query_merge_with_decoding() {
        let p = parse(
            Some("hashes=a%7Cb&x=1"),
            Some("application/x-www-form-urlencoded"),
            b"x=2&name=a+b%20c&bad=%zz&tail=%4",
        )
        .unwrap();
        assert_eq!(p.get("hashes"), Some("a|b"));
        assert_eq!(p.get("x"), Some("2"));
        assert_eq!(p.get("name"), Some("a b c"));
        assert_eq!(p.get("bad"), Some("%zz"));
        assert_eq!(p.get("tail"), Some("%4"));
    }

    #[test]
    fn multipart_fields_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\ntv\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"a.torrent\"\r\n\
Content-Type: application/x-bittorrent\r\n\r\nd4:infoe\r\n--XyZ--\r\n";
        let p = parse(None, Some("multipart/form-data; boundary=XyZ"), body).unwrap();
        assert_eq!(p.get("category"), Some("tv"));
        assert_eq!(
            p.files,
            vec![("torrents".into(), "a.torrent".into(), b"d4:infoe".to_vec())]
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for (ct, body) in [
            ("multipart/form-data", &b"--a\r\n"[..]),
            ("multipart/form-data; boundary=a", b"no delimiter"),
            ("multipart/form-data; boundary=a", b"--a\r\nno head end"),
            ("multipart/form-data; boundary=a", b"--a\r\n\r\nx\r\n--a--"),
        ] {
            assert!(
                matches!(parse(None, Some(ct), body), Err(QbtError::BadParams(_))),
                "{ct} {body:?}"
            );
        }
        assert!(matches!(
            parse(None, Some("application/json"), b"{}"),
            Err(QbtError::UnsupportedMediaType(_))
        ));
    }
}
