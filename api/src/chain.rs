//! One way to put an error on one line, for every process: the message says what failed, each
//! source says why, joined by `": "`, a source whose text the line already holds left out (so a
//! wrapper that repeats its cause prints it once). Used for `errors.jsonl` reasons, Event notes,
//! status messages and the CLI's last line.

use std::error::Error;

/// `e` and its sources on one line, joined by `": "`, each text once.
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    error_chain_with(e, |_| None)
}

/// As [`error_chain`], with `render` giving the text of an error whose `Display` is not fit
/// for a person (e.g. a client error that prints a debug dump); `Some` also ends the chain
/// there (the rendering says the rest).
pub fn error_chain_with(
    e: &(dyn Error + 'static),
    render: impl Fn(&(dyn Error + 'static)) -> Option<String>,
) -> String {
    let (mut out, mut next) = match render(e) {
        Some(text) => return text,
        None => (e.to_string(), e.source()),
    };
    while let Some(s) = next {
        let (text, stop) = match render(s) {
            Some(text) => (text, true),
            None => (s.to_string(), false),
        };
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        if stop {
            break;
        }
        next = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("GET http://h/a.jpg failed")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("request timed out: {0}")]
    struct Middle(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("deadline 30 s")]
    struct Inner;

    #[test]
    fn joins_causes_once() {
        assert_eq!(
            error_chain(&Outer(Middle(Inner))),
            "GET http://h/a.jpg failed: request timed out: deadline 30 s"
        );
        assert_eq!(error_chain(&Inner), "deadline 30 s");
    }
}
