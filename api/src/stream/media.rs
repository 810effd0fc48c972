//! What a player needs to know about a file beside its bytes: its media
//! type from the extension, a `Content-Disposition` with its name
//! (RFC 6266, with RFC 8187's UTF-8 form), stream URLs with the file's
//! path, and an M3U playlist of a torrent's media files.

/// Media types by extension (lower case). HTML, SVG and other types a
/// browser would run script from are deliberately absent: a torrent's
/// files are someone else's, and served from the daemon's own origin a
/// script in them could call the API. They go out as
/// `application/octet-stream`.
const MEDIA_TYPES: &[(&str, &str)] = &[
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("mkv", "video/x-matroska"),
    ("webm", "video/webm"),
    ("avi", "video/x-msvideo"),
    ("mov", "video/quicktime"),
    ("ogv", "video/ogg"),
    ("mpg", "video/mpeg"),
    ("mpeg", "video/mpeg"),
    ("ts", "video/mp2t"),
    ("m2ts", "video/mp2t"),
    ("wmv", "video/x-ms-wmv"),
    ("flv", "video/x-flv"),
    ("3gp", "video/3gpp"),
    ("mp3", "audio/mpeg"),
    ("flac", "audio/flac"),
    ("ogg", "audio/ogg"),
    ("oga", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("wav", "audio/wav"),
    ("m4a", "audio/mp4"),
    ("m4b", "audio/mp4"),
    ("aac", "audio/aac"),
    ("wma", "audio/x-ms-wma"),
    ("srt", "application/x-subrip"),
    ("vtt", "text/vtt"),
    ("ass", "text/x-ssa"),
    ("ssa", "text/x-ssa"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("bmp", "image/bmp"),
    ("txt", "text/plain; charset=utf-8"),
    ("nfo", "text/plain; charset=utf-8"),
    ("md", "text/plain; charset=utf-8"),
    ("pdf", "application/pdf"),
    ("epub", "application/epub+zip"),
    ("zip", "application/zip"),
];

/// Anything else.
const OCTET_STREAM: &str = "application/octet-stream";

/// The media type of a file named `path`, from its extension.
pub(crate) fn media_type(path: &str) -> &'static str {
    let name = file_name(path);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return OCTET_STREAM;
    };
    MEDIA_TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or(OCTET_STREAM, |(_, t)| t)
}

/// Whether a player would list it: audio or video.
pub(crate) fn is_playable(path: &str) -> bool {
    let t = media_type(path);
    t.starts_with("video/") || t.starts_with("audio/")
}

/// The last component of a path in a torrent (`/`-separated; `\` too,
/// as the session shows paths the way the OS stores them).
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `inline` with the file's name: an ASCII `filename` for old clients
/// (other bytes as `_`) and the exact UTF-8 `filename*` (RFC 8187).
pub(crate) fn content_disposition(path: &str) -> String {
    let name = file_name(path);
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut exact = String::new();
    for b in name.bytes() {
        // RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            exact.push(char::from(b));
        } else {
            exact.push_str(&format!("%{b:02X}"));
        }
    }
    format!("inline; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

/// A path in a torrent as URL path segments: each component
/// percent-encoded (RFC 3986 unreserved characters kept), joined by `/`.
pub(crate) fn url_path(path: &str) -> String {
    let mut out = String::new();
    for (i, part) in path.split(['/', '\\']).enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in part.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// An extended M3U playlist: each `(title, url)` as an `#EXTINF` entry
/// with unknown duration (`-1`). Titles lose line breaks, which would
/// end the entry.
pub(crate) fn m3u(entries: &[(String, String)]) -> String {
    let mut out = String::from("#EXTM3U\n");
    for (title, url) in entries {
        let title: String = title
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(&format!("#EXTINF:-1,{title}\n{url}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_extension() {
        assert_eq!(media_type("Show/S01E01.MKV"), "video/x-matroska");
        assert_eq!(media_type("a.b.mp4"), "video/mp4");
        assert_eq!(media_type("clip.webm"), "video/webm");
        assert_eq!(media_type("song.flac"), "audio/flac");
        assert_eq!(media_type("subs/en.srt"), "application/x-subrip");
        assert_eq!(media_type("subs/en.vtt"), "text/vtt");
        assert_eq!(media_type("cover.JPG"), "image/jpeg");
        assert_eq!(media_type("readme.txt"), "text/plain; charset=utf-8");
        assert_eq!(media_type("no-extension"), OCTET_STREAM);
        assert_eq!(media_type("dir.mp4/file"), OCTET_STREAM);
        // Never a type a browser would run script from.
        assert_eq!(media_type("index.html"), OCTET_STREAM);
        assert_eq!(media_type("x.svg"), OCTET_STREAM);
        assert!(is_playable("a/b.opus") && !is_playable("a/b.srt"));
    }

    #[test]
    fn disposition_names_the_file_in_ascii_and_utf8() {
        assert_eq!(
            content_disposition("Folder/My \"film\" é.mp4"),
            "inline; filename=\"My _film_ _.mp4\"; \
             filename*=UTF-8''My%20%22film%22%20%C3%A9.mp4"
        );
    }

    #[test]
    fn url_paths_encode_each_component() {
        assert_eq!(
            url_path("Show/S01 E01 #1?.mkv"),
            "Show/S01%20E01%20%231%3F.mkv"
        );
        assert_eq!(url_path("a\\b/ü"), "a/b/%C3%BC");
    }

    #[test]
    fn playlists_are_extended_m3u() {
        let list = m3u(&[
            ("a\nb.mp4".into(), "http://h/1".into()),
            ("c.mp3".into(), "http://h/2".into()),
        ]);
        assert_eq!(
            list,
            "#EXTM3U\n#EXTINF:-1,a b.mp4\nhttp://h/1\n#EXTINF:-1,c.mp3\nhttp://h/2\n"
        );
    }
}
