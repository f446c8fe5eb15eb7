//! `az://` against a real Azure Blob server: Microsoft's Azurite on 127.0.0.1, started by this
//! test with `scripts/az-server.sh` (its own account, a random key) and stopped by PID when the
//! guard drops. Credentials the documented way: `AZURE_STORAGE_ACCOUNT_NAME` +
//! `AZURE_STORAGE_ACCOUNT_KEY` (or `AZURE_STORAGE_SAS_KEY`) + `AZURE_STORAGE_ENDPOINT`. Covers
//! put/get/head/list/delete, put_if_absent (`If-None-Match: *`, one winner under concurrency),
//! block-list `put_file`, plan and fetch with globs, progress objects, a SAS token, and a wrong
//! key or SAS refused with an error naming the URI and the credential, not its value.
//!
//! Run: `cargo test -p labeljob-store --test azure -- --include-ignored` (needs
//! `scripts/az-server.sh install`, which `make test-deps` runs).

mod common;

use bytes::Bytes;
use common::{ScriptServer, chain};
use labeljob_store::{Location, StoreError, StoreOptions};

fn uri(server: &ScriptServer, prefix: &str) -> String {
    format!("az://{}/{prefix}", server.var("AZURE_CONTAINER"))
}

fn key_options(server: &ScriptServer) -> StoreOptions {
    server.options("AZURE_STORAGE_", &[])
}

fn location(server: &ScriptServer, prefix: &str, options: &StoreOptions) -> Location {
    Location::parse_with(&uri(server, prefix), options).expect("az location")
}

async fn with_sas_token(server: &ScriptServer) {
    let sas = server.var("AZURE_TEST_SAS");
    let opts = StoreOptions::from_vars([
        ("AZURE_STORAGE_ACCOUNT_NAME", server.var("AZURE_STORAGE_ACCOUNT_NAME")),
        ("AZURE_STORAGE_ENDPOINT", server.var("AZURE_STORAGE_ENDPOINT")),
        ("AZURE_STORAGE_SAS_KEY", sas),
    ]);
    let loc = location(server, "sas", &opts);
    assert!(loc.credentials().starts_with("SAS token AZURE_STORAGE_SAS_KEY"), "{}", loc.credentials());
    loc.put("s.json", Bytes::from_static(b"sas")).await.expect("put with SAS");
    let by_key = location(server, "sas", &key_options(server));
    assert_eq!(by_key.get("s.json").await.expect("get by key").as_ref(), b"sas");
    assert_eq!(loc.list("").await.expect("list with SAS").len(), 1);
}

async fn wrong_credentials_are_named_not_shown(server: &ScriptServer) {
    let good = location(server, "denied", &key_options(server));
    good.put("x.json", Bytes::from_static(b"x")).await.expect("put");
    // a well-formed key of the right length that is not the account's
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3I=";
    let opts = server
        .options("AZURE_STORAGE_", &[("AZURE_STORAGE_ACCOUNT_KEY", wrong_key)])
        .with_origin("Secret labeljob/az-creds");
    let bad = location(server, "denied", &opts);
    for err in [
        bad.get("x.json").await.expect_err("wrong key: get"),
        bad.list("").await.expect_err("wrong key: list"),
        bad.put("y.json", Bytes::from_static(b"y")).await.expect_err("wrong key: put"),
    ] {
        assert!(matches!(err, StoreError::Denied { .. }), "{err:?}");
        let text = chain(&err);
        let container = server.var("AZURE_CONTAINER");
        assert!(text.contains(&format!("az://{container}/denied")), "names the URI: {text}");
        assert!(
            text.contains(
                "account key AZURE_STORAGE_ACCOUNT_KEY (account labeljob), from Secret labeljob/az-creds"
            ),
            "names the credential: {text}"
        );
        assert!(
            !text.contains(wrong_key) && !text.contains(server.var("AZURE_STORAGE_ACCOUNT_KEY")),
            "{text}"
        );
    }

    // a SAS whose signature does not match: refused, and the token is not in the message
    let sas = server.var("AZURE_TEST_SAS");
    let (head, sig) = sas.split_once("sig=").expect("sig in SAS");
    let forged = format!("{head}sig=AAAA{}", &sig[4..]);
    let opts = StoreOptions::from_vars([
        ("AZURE_STORAGE_ACCOUNT_NAME", server.var("AZURE_STORAGE_ACCOUNT_NAME")),
        ("AZURE_STORAGE_ENDPOINT", server.var("AZURE_STORAGE_ENDPOINT")),
        ("AZURE_STORAGE_SAS_KEY", forged.as_str()),
    ]);
    let err = location(server, "denied", &opts).get("x.json").await.expect_err("forged SAS");
    let text = chain(&err);
    assert!(matches!(err, StoreError::Denied { .. }), "{text}");
    assert!(text.contains("SAS token AZURE_STORAGE_SAS_KEY"), "{text}");
    assert!(!text.contains(&sig[4..20]) && !text.contains("sig="), "no SAS signature in: {text}");

    // a key that is not base64 is refused when the client is built, naming the variable
    let opts = server.options("AZURE_STORAGE_", &[("AZURE_STORAGE_ACCOUNT_KEY", "not base64 !")]);
    let err = Location::parse_with(&uri(server, "denied"), &opts).expect_err("bad key");
    let text = chain(&err);
    assert!(matches!(err, StoreError::Configure { .. }), "{text}");
    assert!(text.contains("az://labeljob/denied") && text.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{text}");
    assert!(!text.contains("not base64 !"), "{text}");
}

#[test]
#[ignore = "needs Azurite (scripts/az-server.sh install); run by make test"]
fn azure_against_azurite() {
    let server = ScriptServer::start("az-server.sh", "AZURITE_PID");
    let opts = key_options(&server);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let ops = location(&server, "ops/", &opts);
        assert_eq!(ops.uri(), uri(&server, "ops"));
        common::location_operations(&ops, &location(&server, "ops-other", &opts)).await;
        common::put_if_absent_semantics(&location(&server, "cas", &opts)).await;
        common::multipart_put_file(&location(&server, "big", &opts)).await;
        common::plan_input_and_progress(
            &uri(&server, "images"),
            &opts,
            &location(&server, "jobs/one", &opts),
        )
        .await;
        with_sas_token(&server).await;
        wrong_credentials_are_named_not_shown(&server).await;
    });
}
