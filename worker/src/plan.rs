//! Plan: list the input once, sorted and filtered, into a frozen `manifest.jsonl`.
