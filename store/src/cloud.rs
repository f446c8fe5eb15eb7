//! Cloud clients: the object_store builders for `s3://`, `gs://` and `az://`, configured from
//! the process environment and/or explicit variables ([`StoreOptions`]), and a description of
//! the credentials each one will use ([`credential_source`]) for error messages.
//!
//! Custom endpoints (an emulator, MinIO/Ceph, a private endpoint) are the documented variables
//! `AWS_ENDPOINT_URL[_S3]`, `AZURE_STORAGE_ENDPOINT` (the account URL, path-style for Azurite:
//! `http://127.0.0.1:10000/ACCOUNT`) and `GOOGLE_BASE_URL`; an `http://` endpoint allows
//! plain HTTP unless `AWS_ALLOW_HTTP` / `AZURE_ALLOW_HTTP` / `GOOGLE_ALLOW_HTTP` say otherwise.
//! S3 with an endpoint uses path-style requests unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` is set.
//!
//! The description names variables, files and account names, never a secret's value: it is
//! what an operator needs to see which credential a refused request carried.

use object_store::ClientConfigKey;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};

use crate::StoreOptions;

/// S3: the environment, explicit variables, path-style and HTTP for custom endpoints.
pub(crate) fn s3_builder(bucket: &str, options: &StoreOptions) -> AmazonS3Builder {
    let mut b = if options.ignore_process_env { AmazonS3Builder::new() } else { AmazonS3Builder::from_env() };
    for (key, value) in options.timeouts("AWS_") {
        b = b.with_config(AmazonS3ConfigKey::Client(key), value);
    }
    for (key, value) in options.vars_with_prefix("AWS_") {
        if let Ok(key) = key.parse::<AmazonS3ConfigKey>() {
            b = b.with_config(key, value);
        }
    }
    if let Some(endpoint) = first_var(options, &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]) {
        if options.lookup("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_none() {
            b = b.with_virtual_hosted_style_request(false);
        }
        if endpoint.starts_with("http://") && options.lookup("AWS_ALLOW_HTTP").is_none() {
            b = b.with_allow_http(true);
        }
    }
    b.with_url(format!("s3://{bucket}")).with_retry(options.retry.object_store_config())
}

/// GCS: `GOOGLE_*` (service-account file or key, application credentials, base URL) or the
/// metadata server.
pub(crate) fn gcs_builder(bucket: &str, options: &StoreOptions) -> GoogleCloudStorageBuilder {
    let mut b = match options.ignore_process_env {
        true => GoogleCloudStorageBuilder::new(),
        false => GoogleCloudStorageBuilder::from_env(),
    };
    for (key, value) in options.timeouts("GOOGLE_") {
        b = b.with_config(GoogleConfigKey::Client(key), value);
    }
    for (key, value) in options.vars_with_prefix("GOOGLE_") {
        if let Ok(key) = key.parse::<GoogleConfigKey>() {
            b = b.with_config(key, value);
        }
    }
    let base_url = options.lookup("GOOGLE_BASE_URL");
    if base_url.is_some_and(|u| u.starts_with("http://")) && options.lookup("GOOGLE_ALLOW_HTTP").is_none() {
        b = b.with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), "true");
    }
    b.with_url(format!("gs://{bucket}")).with_retry(options.retry.object_store_config())
}

/// Azure Blob: `AZURE_*` (account name and key or SAS, service principal, federated token
/// file, endpoint).
pub(crate) fn azure_builder(container: &str, options: &StoreOptions) -> MicrosoftAzureBuilder {
    let mut b = match options.ignore_process_env {
        true => MicrosoftAzureBuilder::new(),
        false => MicrosoftAzureBuilder::from_env(),
    };
    for (key, value) in options.timeouts("AZURE_") {
        b = b.with_config(AzureConfigKey::Client(key), value);
    }
    for (key, value) in options.vars_with_prefix("AZURE_") {
        if let Ok(key) = key.parse::<AzureConfigKey>() {
            b = b.with_config(key, value);
        }
    }
    let endpoint = first_var(options, &["AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT"]);
    if endpoint.is_some_and(|e| e.starts_with("http://")) && options.lookup("AZURE_ALLOW_HTTP").is_none() {
        b = b.with_config(AzureConfigKey::Client(ClientConfigKey::AllowHttp), "true");
    }
    b.with_url(format!("az://{container}")).with_retry(options.retry.object_store_config())
}

/// The first of `names` that is set (explicit variables, then the process environment).
fn first_var(options: &StoreOptions, names: &[&str]) -> Option<String> {
    names.iter().find_map(|k| options.lookup(k))
}

/// The first of `names` that is set, as the name (set to "" counts: object_store uses it).
fn first_set<'a>(options: &StoreOptions, names: &[&'a str]) -> Option<&'a str> {
    names.iter().copied().find(|k| options.lookup(k).is_some())
}

/// Which credentials a client for `scheme` (`s3`, `gs`, `az`) will use, and where they come
/// from, in the order object_store tries them: e.g. `account key AZURE_STORAGE_ACCOUNT_KEY
/// (account labeljob), from the environment`. Names variables and file paths, never values
/// of secrets.
pub fn credential_source(scheme: &str, options: &StoreOptions) -> String {
    let what = match scheme {
        "s3" | "s3a" => s3_credentials(options),
        "gs" => gcs_credentials(options),
        "az" | "azure" => azure_credentials(options),
        _ => return "no credentials (local files)".to_string(),
    };
    format!("{what}, from {}", options.origin())
}

fn s3_credentials(options: &StoreOptions) -> String {
    if options.lookup("AWS_SKIP_SIGNATURE").is_some_and(|v| v == "true") {
        return "no credentials (AWS_SKIP_SIGNATURE=true)".into();
    }
    if options.lookup("AWS_ACCESS_KEY_ID").is_some() {
        let session = match options.lookup("AWS_SESSION_TOKEN").is_some() {
            true => " + AWS_SESSION_TOKEN",
            false => "",
        };
        return format!("static keys AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY{session}");
    }
    if let Some(file) = options.lookup("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let role = options.lookup("AWS_ROLE_ARN").unwrap_or_else(|| "no AWS_ROLE_ARN".into());
        return format!("web identity token {file} (IRSA), role {role}");
    }
    if let Some(var) =
        first_set(options, &["AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"])
    {
        return format!("container credentials {var} (EKS Pod Identity / ECS)");
    }
    "instance metadata (IMDSv2): no AWS_ACCESS_KEY_ID or AWS_WEB_IDENTITY_TOKEN_FILE set".into()
}

fn gcs_credentials(options: &StoreOptions) -> String {
    if options.lookup("GOOGLE_SKIP_SIGNATURE").is_some_and(|v| v == "true") {
        return "no credentials (GOOGLE_SKIP_SIGNATURE=true)".into();
    }
    if let Some(var) = first_set(options, &["GOOGLE_SERVICE_ACCOUNT_KEY"]) {
        return format!("service-account key in {var}");
    }
    let file_vars =
        ["GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_PATH", "GOOGLE_APPLICATION_CREDENTIALS"];
    if let Some(var) = first_set(options, &file_vars) {
        let path = options.lookup(var).unwrap_or_default();
        return format!("credentials file {path} ({var})");
    }
    if options.lookup("GOOGLE_BEARER_TOKEN").is_some() {
        return "bearer token GOOGLE_BEARER_TOKEN".into();
    }
    "the metadata server (GKE Workload Identity or the node's service account): no \
     GOOGLE_SERVICE_ACCOUNT_KEY or GOOGLE_APPLICATION_CREDENTIALS set"
        .into()
}

fn azure_credentials(options: &StoreOptions) -> String {
    let account = first_var(options, &["AZURE_STORAGE_ACCOUNT_NAME"]).unwrap_or_else(|| "not set".into());
    let keys = ["AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_MASTER_KEY"];
    let what = if options.lookup("AZURE_SKIP_SIGNATURE").is_some_and(|v| v == "true") {
        "no credentials (AZURE_SKIP_SIGNATURE=true)".to_string()
    } else if let Some(var) = first_set(options, &["AZURE_STORAGE_TOKEN"]) {
        format!("bearer token {var}")
    } else if let Some(var) = first_set(options, &keys) {
        format!("account key {var}")
    } else if let Some(var) = first_set(options, &["AZURE_STORAGE_SAS_KEY", "AZURE_STORAGE_SAS_TOKEN"]) {
        format!("SAS token {var}")
    } else if first_set(options, &["AZURE_STORAGE_CLIENT_SECRET", "AZURE_CLIENT_SECRET"]).is_some() {
        "service principal AZURE_CLIENT_ID + AZURE_CLIENT_SECRET".to_string()
    } else if let Some(file) = first_var(options, &["AZURE_FEDERATED_TOKEN_FILE"]) {
        format!("federated token {file} (Azure Workload Identity)")
    } else {
        "managed identity: no AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or \
         AZURE_FEDERATED_TOKEN_FILE set"
            .to_string()
    };
    format!("{what} (account {account})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_variables_not_values() {
        let opts = StoreOptions::from_vars([
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "c2VjcmV0LWtleQ=="),
        ])
        .with_origin("Secret ns/az-creds");
        let text = credential_source("az", &opts);
        assert_eq!(text, "account key AZURE_STORAGE_ACCOUNT_KEY (account acct), from Secret ns/az-creds");
        let sas = StoreOptions::from_vars([
            ("AZURE_STORAGE_ACCOUNT_NAME", "a"),
            ("AZURE_STORAGE_SAS_KEY", "sv=1&sig=S"),
        ]);
        let text = credential_source("az", &sas);
        assert!(text.starts_with("SAS token AZURE_STORAGE_SAS_KEY (account a)"), "{text}");
        assert!(!text.contains("sig="), "{text}");

        let key = StoreOptions::from_vars([("GOOGLE_SERVICE_ACCOUNT_KEY", "{\"private_key\":\"PEM\"}")]);
        assert_eq!(
            credential_source("gs", &key),
            "service-account key in GOOGLE_SERVICE_ACCOUNT_KEY, from the given variables"
        );
        let file = StoreOptions::from_vars([("GOOGLE_APPLICATION_CREDENTIALS", "/var/sa.json")]);
        assert!(
            credential_source("gs", &file)
                .starts_with("credentials file /var/sa.json (GOOGLE_APPLICATION_CREDENTIALS)")
        );
        let none = StoreOptions::from_vars(Vec::<(String, String)>::new());
        assert!(credential_source("gs", &none).starts_with("the metadata server"));
        assert!(credential_source("az", &none).starts_with("managed identity"));

        let s3 = StoreOptions::from_vars([
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ]);
        let text = credential_source("s3", &s3);
        assert!(text.starts_with("static keys AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY"), "{text}");
        assert!(!text.contains("AKIAEXAMPLE") && !text.contains("s3cr3t"), "{text}");
        let irsa = StoreOptions::from_vars([
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ]);
        assert!(credential_source("s3", &irsa).contains("(IRSA), role arn:aws:iam::1:role/r"));
    }

    #[test]
    fn http_endpoints_allow_plain_http() {
        let opts = StoreOptions::from_vars([
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "c2VjcmV0"),
            ("AZURE_STORAGE_ENDPOINT", "http://127.0.0.1:10000/acct"),
        ]);
        let b = azure_builder("c", &opts);
        assert_eq!(
            b.get_config_value(&AzureConfigKey::Client(ClientConfigKey::AllowHttp)).as_deref(),
            Some("true")
        );
        let mut https = opts.clone();
        https.vars.insert("AZURE_STORAGE_ENDPOINT".into(), "https://acct.blob.core.windows.net".into());
        let b = azure_builder("c", &https);
        assert_ne!(
            b.get_config_value(&AzureConfigKey::Client(ClientConfigKey::AllowHttp)).as_deref(),
            Some("true")
        );

        let gcs = StoreOptions::from_vars([
            ("GOOGLE_BASE_URL", "http://127.0.0.1:4443"),
            ("GOOGLE_SKIP_SIGNATURE", "true"),
        ]);
        let b = gcs_builder("b", &gcs);
        assert_eq!(
            b.get_config_value(&GoogleConfigKey::Client(ClientConfigKey::AllowHttp)).as_deref(),
            Some("true")
        );
        assert_eq!(
            b.get_config_value(&GoogleConfigKey::Client(ClientConfigKey::Timeout)).as_deref(),
            Some("120000ms")
        );
    }
}
