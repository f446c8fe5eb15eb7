//! Object URIs as outputs write them: the path percent-escaped, so that a URI parser gets the
//! real key back. An image `photos/a b#1?.jpg` in `s3://bucket` is written (COCO `file_name`,
//! manifest, errors.jsonl) as `s3://bucket/photos/a%20b%231%3F.jpg`: unescaped, `#` would
//! start a fragment, `?` a query, and `%20` in a key would read as a space. Escaped: the
//! bytes RFC 3986 does not allow in a path segment (controls, space, `"#%<>?[\]^`{|}`, DEL)
//! and every non-ASCII byte (UTF-8 names become `%C3%BC`); `/` separates segments as in the
//! key. [`split_object_uri`] turns such a URI back into a location and a key.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, percent_encode};

/// Bytes escaped in the path of an object URI (non-ASCII bytes always are).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `path` (an object key or file path, `/`-separated, any bytes) percent-escaped for a URI.
pub fn escape_path(path: &[u8]) -> String {
    percent_encode(path, PATH).to_string()
}

/// The key an escaped URI path stands for (`%XX` decoded; not UTF-8: lossy).
pub fn unescape_path(path: &str) -> String {
    percent_decode_str(path).decode_utf8_lossy().into_owned()
}

/// Split an object URI as outputs write it (`file:///dir/a%20b.jpg`, `s3://bucket/p/a%20b.jpg`)
/// into the URI of its parent, as [`crate::Location::parse`] reads it, and the key of the
/// object in it, unescaped. `file://` parents stay escaped (the location parser decodes
/// them); cloud parents are unescaped (their parser takes the key as written). `None` when
/// the URI has no scheme or no object name.
pub fn split_object_uri(uri: &str) -> Option<(String, String)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (parent, name) = rest.rsplit_once('/')?;
    if name.is_empty() {
        return None;
    }
    let parent = match scheme {
        "file" => parent.to_string(),
        _ => unescape_path(parent),
    };
    Some((format!("{scheme}://{parent}"), unescape_path(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_bytes_are_escaped_and_come_back() {
        let key = "photos/a b#1?x=%20 [ü]\t.jpg";
        let escaped = escape_path(key.as_bytes());
        assert_eq!(escaped, "photos/a%20b%231%3Fx=%2520%20%5B%C3%BC%5D%09.jpg");
        assert_eq!(unescape_path(&escaped), key);
        assert_eq!(
            escape_path(b"plain/dir_1/a-b.c~d+e,f;g=h@i:j.jpg"),
            "plain/dir_1/a-b.c~d+e,f;g=h@i:j.jpg"
        );
        assert_eq!(escape_path(b"bad\xff.jpg"), "bad%FF.jpg", "any bytes, not only UTF-8");
    }

    #[test]
    fn escaped_uris_parse_to_the_real_path() {
        let uri = format!("file:///data/my%20dir/{}", escape_path("a#b?.jpg".as_bytes()));
        let url = url::Url::parse(&uri).expect("a valid URL");
        assert_eq!(url.fragment(), None);
        assert_eq!(url.query(), None);
        let path = url.to_file_path().expect("file path");
        assert_eq!(path, std::path::Path::new("/data/my dir/a#b?.jpg"));
    }

    #[test]
    fn object_uris_split_into_location_and_key() {
        assert_eq!(
            split_object_uri("file:///data/my%20dir/a%23b.jpg"),
            Some(("file:///data/my%20dir".into(), "a#b.jpg".into()))
        );
        assert_eq!(
            split_object_uri("s3://bucket/my%20dir/a%3F.jpg"),
            Some(("s3://bucket/my dir".into(), "a?.jpg".into()))
        );
        assert_eq!(split_object_uri("s3://bucket/"), None);
        assert_eq!(split_object_uri("no-scheme/a.jpg"), None);
    }
}
