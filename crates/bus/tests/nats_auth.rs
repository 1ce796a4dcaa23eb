//! NATS credentials and TLS for real, against `nats-server`s this test starts on free ports:
//! one requiring a user/password or an nkey, one a token, one in operator mode taking `.creds`
//! files, and one serving TLS with a certificate from a CA generated here. A refused
//! credential or certificate ends start-up at once with an error naming the settings.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bazaar_bus::{BusError, NatsAuth, NatsOptions, NatsTransport};
use bazaar_testkit::LocalPki;
use nkeys::KeyPair;

/// Long enough for a slow machine, short against the transport's retries forever: a refusal
/// must come back well within it.
const WITHIN: Duration = Duration::from_secs(20);

async fn connect(url: &str, options: NatsOptions) -> Result<NatsTransport, BusError> {
    let namespace = format!("auth_{}", std::process::id());
    NatsTransport::connect_with_options_and_timeout(url, &namespace, &options, WITHIN).await
}

fn with(auth: NatsAuth) -> NatsOptions {
    NatsOptions {
        auth,
        ca_file: None,
    }
}

/// The error of a connect that must fail fast (not time out) and name `setting`.
async fn refused(url: &str, options: NatsOptions, setting: &str) {
    let err = match connect(url, options).await {
        Ok(_) => panic!("connected although it should not have"),
        Err(e) => e.to_string(),
    };
    assert!(
        !err.contains("not reachable within"),
        "retried instead of failing: {err}"
    );
    assert!(err.contains(setting), "{setting} missing from: {err}");
}

#[tokio::test]
async fn nats_user_password_nkey_and_token() {
    let user = KeyPair::new_user();
    let config = format!(
        "authorization {{ users: [ {{ user: svc, password: pw-secret }}, {{ nkey: {} }} ] }}",
        user.public_key()
    );
    let Some(server) = bazaar_testkit::nats::start(&config) else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", server.port);
    let password = |p: &str| {
        with(NatsAuth::UserPassword {
            user: "svc".into(),
            password: p.into(),
        })
    };
    connect(&url, password("pw-secret"))
        .await
        .unwrap_or_else(|e| panic!("user/password: {e}\n{}", server.log()));
    connect(&url, with(NatsAuth::NkeySeed(user.seed().unwrap())))
        .await
        .expect("nkey seed");
    refused(&url, password("wrong"), "BAZAAR_NATS_USER/PASSWORD").await;
    refused(&url, with(NatsAuth::None), "BAZAAR_NATS_TOKEN").await;
    let stranger = KeyPair::new_user().seed().unwrap();
    refused(
        &url,
        with(NatsAuth::NkeySeed(stranger)),
        "BAZAAR_NATS_NKEY_SEED",
    )
    .await;

    let Some(server) = bazaar_testkit::nats::start("authorization { token: tok-secret }") else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", server.port);
    connect(&url, with(NatsAuth::Token("tok-secret".into())))
        .await
        .expect("token");
    refused(
        &url,
        with(NatsAuth::Token("wrong".into())),
        "BAZAAR_NATS_TOKEN",
    )
    .await;
}

#[tokio::test]
async fn nats_tls_trusts_the_ca_file() {
    let Some(certs) = LocalPki::new("nats") else {
        return;
    };
    let Some(server) = bazaar_testkit::nats::start(&bazaar_testkit::nats::tls_block(&certs.server))
    else {
        return;
    };
    let trusting = |ca: &std::path::Path| NatsOptions {
        auth: NatsAuth::None,
        ca_file: Some(ca.to_owned()),
    };
    let url = format!("tls://127.0.0.1:{}", server.port);
    let transport = connect(&url, trusting(&certs.server.ca))
        .await
        .unwrap_or_else(|e| panic!("TLS with our CA: {e}\n{}", server.log()));
    transport.delete_stream().await.unwrap();
    // The CA file alone turns TLS on, whatever the URL's scheme.
    let plain_scheme = format!("nats://127.0.0.1:{}", server.port);
    connect(&plain_scheme, trusting(&certs.server.ca))
        .await
        .expect("nats:// with a CA file upgrades to TLS");
    refused(&url, trusting(&certs.stranger.ca), "BAZAAR_NATS_CA_FILE").await;
}

/// A NATS JWT signed by `issuer`, as nsc writes them (the server checks the signature and
/// the issuer chain operator → account → user).
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        "jti": format!("{:X}", std::process::id() as u64 * 7919 + name.len() as u64),
        "iat": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let signature = URL_SAFE_NO_PAD.encode(issuer.sign(signed.as_bytes()).unwrap());
    format!("{signed}.{signature}")
}

#[tokio::test]
async fn nats_creds_file_in_operator_mode() {
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let user = KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "test-operator",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1
    });
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "bazaar",
        serde_json::json!({"limits": unlimited, "type": "account", "version": 2}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "bazaar-svc",
        serde_json::json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                           "type": "user", "version": 2}),
    );
    // JetStream in operator mode needs a system account.
    let system = KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"type": "account", "version": 2}),
    );
    let config = format!(
        "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{ {sys}: {system_jwt}, {}: {account_jwt} }}",
        account.public_key(),
        sys = system.public_key(),
    );
    let Some(server) = bazaar_testkit::nats::start(&config) else {
        return;
    };
    let creds = |seed: String| {
        let path = server.dir.path().join(format!("{}.creds", &seed[..8]));
        std::fs::write(
            &path,
            format!(
                "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
            ),
        )
        .unwrap();
        with(NatsAuth::CredsFile(path))
    };
    let url = format!("nats://127.0.0.1:{}", server.port);
    let transport = connect(&url, creds(user.seed().unwrap()))
        .await
        .unwrap_or_else(|e| panic!(".creds file: {e}\n{}", server.log()));
    transport.delete_stream().await.unwrap();
    // The right JWT with someone else's seed cannot sign the server's nonce.
    refused(
        &url,
        creds(KeyPair::new_user().seed().unwrap()),
        "BAZAAR_NATS_CREDS_FILE",
    )
    .await;
    let missing = with(NatsAuth::CredsFile(server.dir.path().join("absent.creds")));
    refused(&url, missing, "BAZAAR_NATS_CREDS_FILE").await;
}
