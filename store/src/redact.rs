//! Credential redaction: the one function, [`redact_uri`], that every writer and logger of a
//! source URI uses (manifest, shard files, `annotations.json`, `errors.jsonl`, report, retry
//! log lines, error messages).
//!
//! What is redacted, keeping scheme, host, port and path (the object key):
//! - user info: `https://user:pass@host/…` → `https://REDACTED:REDACTED@host/…`;
//! - the values of query parameters that carry secrets: presigned URLs of S3
//!   (`X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, and the v2
//!   `Signature` / `AWSAccessKeyId`), GCS (`X-Goog-Signature`, `X-Goog-Credential`,
//!   `GoogleAccessId`), Azure SAS (`sig`), and generic `token`, `access_token`, `key`,
//!   `api_key`, `password`, `secret`, … (names compared case-insensitively; any name that
//!   contains `signature`, `credential`, `token`, `secret`, `password` or `apikey` counts).
//!   Other parameters (`size=large`, Azure's `se`/`sp`/`sv`) are kept byte for byte;
//! - the fragment, whatever it is (it is never sent, and OAuth puts tokens there).
//!
//! Text that does not parse as a URL loses everything from the first `?` or `#` and any
//! user info before an `@` of its authority, so a malformed URL cannot smuggle a secret out.

/// What replaces a secret.
pub const REDACTED: &str = "REDACTED";

/// Query parameter names (lower case) whose values are secrets.
const SECRET_PARAMS: [&str; 20] = [
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "x-goog-security-token",
    "googleaccessid",
    "awsaccesskeyid",
    "signature",
    "sig",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "key",
    "api_key",
    "apikey",
    "password",
    "secret",
    "client_secret",
];

/// Substrings of parameter names (lower case) that mark a secret.
const SECRET_PARTS: [&str; 6] = ["signature", "credential", "token", "secret", "password", "apikey"];

/// Whether the query parameter `name` (already percent-decoded) carries a secret.
pub fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.contains(&name.as_str()) || SECRET_PARTS.iter().any(|part| name.contains(part))
}

/// `uri` with credentials replaced by [`REDACTED`] (see the module documentation). URIs
/// without secrets come back unchanged.
pub fn redact_uri(uri: &str) -> String {
    let Ok(mut url) = url::Url::parse(uri) else {
        return redact_unparsed(uri);
    };
    if !url.username().is_empty() {
        // only fails for URLs that cannot have user info, which then have none
        let _ = url.set_username(REDACTED);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(REDACTED));
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        let redacted = redact_query(query);
        if redacted != query {
            url.set_query(Some(&redacted));
        }
    }
    if url.fragment().is_some() {
        url.set_fragment(Some(REDACTED));
    }
    let redacted = url.to_string();
    // the parser normalises (`HTTP://H` → `http://h/`); keep the input as given when no secret
    // was touched, so that redaction never changes the key of a harmless URI
    if contains_secret(uri, &redacted) { redacted } else { uri.to_string() }
}

/// Whether redaction changed anything beyond the parser's normalisation.
fn contains_secret(original: &str, redacted: &str) -> bool {
    match url::Url::parse(original) {
        Ok(parsed) => parsed.as_str() != redacted,
        Err(_) => true,
    }
}

/// A raw query with the values of secret parameters replaced; other pairs kept verbatim.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (raw_name, value) = match pair.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (pair, None),
            };
            let name: String = url::form_urlencoded::parse(raw_name.as_bytes())
                .next()
                .map(|(name, _)| name.into_owned())
                .unwrap_or_default();
            match value {
                Some(_) if is_secret_param(&name) => format!("{raw_name}={REDACTED}"),
                _ => pair.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Redaction of text that is not a URL: cut at `?` / `#`, drop user info of the authority.
fn redact_unparsed(text: &str) -> String {
    let cut = text.find(['?', '#']).map_or(text, |at| &text[..at]);
    let (scheme, rest) = match cut.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, cut),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("{REDACTED}@{}", &rest[at + 1..]),
        None => rest.to_string(),
    };
    let mut out = match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest,
    };
    if cut.len() < text.len() {
        out.push('?');
        out.push_str(REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_redacted() {
        assert_eq!(
            redact_uri("https://alice:s3cret@h.example/a.jpg"),
            "https://REDACTED:REDACTED@h.example/a.jpg"
        );
        assert_eq!(redact_uri("https://tok@h.example/a.jpg"), "https://REDACTED@h.example/a.jpg");
    }

    #[test]
    fn presigned_query_values_are_redacted_and_others_kept() {
        let s3 = "https://b.s3.amazonaws.com/photos/a.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256\
                  &X-Amz-Credential=AKIAXXX%2F20240101%2Fus-east-1&X-Amz-Date=20240101T000000Z\
                  &X-Amz-Expires=900&X-Amz-Security-Token=FwoGZX&X-Amz-SignedHeaders=host\
                  &X-Amz-Signature=deadbeef";
        let out = redact_uri(s3);
        assert_eq!(
            out,
            "https://b.s3.amazonaws.com/photos/a.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=REDACTED&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900\
             &X-Amz-Security-Token=REDACTED&X-Amz-SignedHeaders=host&X-Amz-Signature=REDACTED"
        );
        let gcs = "https://storage.googleapis.com/b/o.png?X-Goog-Credential=sa%40p.iam&X-Goog-Signature=abc";
        assert_eq!(
            redact_uri(gcs),
            "https://storage.googleapis.com/b/o.png?X-Goog-Credential=REDACTED&X-Goog-Signature=REDACTED"
        );
        let sas =
            "https://acct.blob.core.windows.net/c/x.jpg?sv=2022-11-02&se=2030-01-01&sp=r&sig=AbC%2Bd%3D";
        assert_eq!(
            redact_uri(sas),
            "https://acct.blob.core.windows.net/c/x.jpg?sv=2022-11-02&se=2030-01-01&sp=r&sig=REDACTED"
        );
        for name in ["token", "access_token", "key", "API_KEY", "Signature", "my_secret", "x-auth-token"] {
            let out = redact_uri(&format!("https://h/a.jpg?size=large&{name}=hunter2"));
            assert_eq!(out, format!("https://h/a.jpg?size=large&{name}=REDACTED"), "{name}");
        }
    }

    #[test]
    fn harmless_uris_are_unchanged() {
        for uri in [
            "https://h.example/img/c.jpg?size=large",
            "http://127.0.0.1:8080/a%20b.png",
            "s3://bucket/photos/a.jpg",
            "file:///data/in/x.jpg",
            "https://h/a.jpg?flag",
        ] {
            assert_eq!(redact_uri(uri), uri);
        }
    }

    #[test]
    fn fragments_and_unparsable_text_lose_their_secrets() {
        assert_eq!(redact_uri("https://h/a.jpg#access_token=x"), "https://h/a.jpg#REDACTED");
        assert_eq!(redact_uri("https://u:p@[::1/a.jpg?sig=x"), "https://REDACTED@[::1/a.jpg?REDACTED");
        assert_eq!(redact_uri("not a url ?token=x"), "not a url ?REDACTED");
        assert_eq!(redact_uri("photos/a@b.jpg"), "photos/a@b.jpg");
    }
}
