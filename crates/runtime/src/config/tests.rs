//! The loader's own tests: defaults, every problem reported at once, the RabbitMQ and Kafka
//! settings and unknown file keys.

use bazaar_db::DbTarget;

use super::settings::{ServiceName, Settings};
use super::sources::ConfigArgs;

#[test]
fn defaults_are_embedded_and_generate_a_lasting_secret() {
    let dir = tempfile::tempdir().unwrap();
    let args = ConfigArgs {
        data_dir: Some(dir.path().into()),
        ..Default::default()
    };
    let a = Settings::load(&args).unwrap();
    assert_eq!(a.listen.to_string(), "127.0.0.1:8000");
    assert!(
        matches!(a.db_target(ServiceName::new("users")), DbTarget::SqliteFile(p) if p.ends_with("users.db"))
    );
    let b = Settings::load(&args).unwrap();
    assert_eq!(a.jwt_secret, b.jwt_secret, "secret kept across starts");
    assert_eq!(format!("{:?}", a.jwt_secret), "[redacted]");
}

#[test]
fn every_bad_value_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bazaar.toml");
    std::fs::write(
        &file,
        "namespace = \"has space\"\nlog_format = \"xml\"\n[services.nope]\n",
    )
    .unwrap();
    let args = ConfigArgs {
        config: Some(file),
        listen: Some("not-an-address".into()),
        nats_url: Some("http://x".into()),
        data_dir: Some(dir.path().into()),
        ..Default::default()
    };
    let err = Settings::load(&args).unwrap_err().to_string();
    for needle in [
        "not-an-address",
        "namespace",
        "xml",
        "services.nope",
        "NATS URL",
    ] {
        assert!(err.contains(needle), "{needle} missing from {err}");
    }
}

#[test]
fn rabbitmq_is_a_third_bus_and_excludes_nats() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let file = dir.path().join("bazaar.toml");
    let load = |toml: String, nats: Option<&str>| {
        std::fs::write(&file, toml).unwrap();
        Settings::load(&ConfigArgs {
            config: Some(file.clone()),
            nats_url: nats.map(Into::into),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
    };
    let ok = load(
        format!(
            "amqp_url = \"amqps://app:pw@mq:5671/shop\"\namqp_ca_file = {:?}\n",
            ca.display().to_string()
        ),
        None,
    )
    .unwrap();
    assert!(ok.has_shared_bus() && !ok.is_embedded());
    assert_eq!(ok.amqp_ca_file.as_deref(), Some(ca.as_path()));
    assert_eq!(format!("{:?}", ok.amqp_url.unwrap()), "[redacted]");

    let err = load(
        "amqp_url = \"amqp://mq\"\namqp_ca_file = \"/nonexistent.pem\"\n".into(),
        Some("nats://127.0.0.1:4222"),
    )
    .unwrap_err()
    .to_string();
    for needle in ["not both", "needs an amqps://", "does not exist"] {
        assert!(err.contains(needle), "{needle} missing from {err}");
    }
    let err = load("amqp_url = \"http://mq\"\n".into(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("amqp:// or amqps://"), "{err}");
}

#[test]
fn unknown_file_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bazaar.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let args = ConfigArgs {
        config: Some(file),
        data_dir: Some(dir.path().into()),
        ..Default::default()
    };
    assert!(
        Settings::load(&args)
            .unwrap_err()
            .to_string()
            .contains("lisen")
    );
}

#[test]
fn a_service_s_own_settings_are_read_for_the_services_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bazaar.toml");
    std::fs::write(&file, "[services.catalog]\nurl = \"http://catalog:8080\"\n").unwrap();
    let args = ConfigArgs {
        config: Some(file),
        data_dir: Some(dir.path().into()),
        ..Default::default()
    };
    let catalog = ServiceName::new("catalog");
    let settings = Settings::load_for(&args, &[catalog]).unwrap();
    assert_eq!(
        settings.service_urls.get(&catalog).map(String::as_str),
        Some("http://catalog:8080")
    );
    let err = Settings::load(&args).unwrap_err().to_string();
    assert!(err.contains("services.catalog"), "{err}");
}

#[test]
fn kafka_is_a_fourth_bus_with_tls_and_sasl_and_excludes_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let file = dir.path().join("bazaar.toml");
    let load = |toml: String, nats: Option<&str>| {
        std::fs::write(&file, toml).unwrap();
        Settings::load(&ConfigArgs {
            config: Some(file.clone()),
            nats_url: nats.map(Into::into),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
    };
    let ok = load(
        format!(
            "[kafka]\nbrokers = \"k1:9093,k2:9093\"\nca_file = {:?}\nusername = \"shop\"\n\
             password = \"hunter2\"\nsasl_mechanism = \"scram-sha-256\"\npartitions = 12\n",
            ca.display().to_string()
        ),
        None,
    )
    .unwrap();
    assert!(ok.has_shared_bus() && !ok.is_embedded());
    let kafka = ok.kafka.as_ref().expect("kafka settings");
    assert_eq!(
        (kafka.brokers.as_str(), kafka.partitions),
        ("k1:9093,k2:9093", 12)
    );
    assert_eq!(kafka.replication_factor, 1, "the default for one broker");
    let sasl = kafka.sasl.as_ref().expect("sasl");
    assert_eq!(sasl.mechanism, bazaar_bus::SaslMechanism::ScramSha256);
    assert!(
        !format!("{ok:?}").contains("hunter2"),
        "the password printed"
    );

    let err = load(
        "[kafka]\nbrokers = \"k1\"\nusername = \"shop\"\nsasl_mechanism = \"GSSAPI\"\n\
         heartbeat_interval_ms = 20000\n"
            .into(),
        Some("nats://127.0.0.1:4222"),
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "not several",
        "\"k1\" is not HOST:PORT",
        "must be set together",
        "below BAZAAR_KAFKA_SESSION_TIMEOUT_MS",
    ] {
        assert!(err.contains(needle), "{needle} missing from {err}");
    }
    let err = load(
        "[kafka]\nbrokers = \"k1:9092\"\nusername = \"u\"\npassword = \"p\"\nsasl_mechanism = \"GSSAPI\"\nca_file = \"/nonexistent.pem\"\n".into(),
        None,
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        "BAZAAR_KAFKA_CA_FILE /nonexistent.pem",
    ] {
        assert!(err.contains(needle), "{needle} missing from {err}");
    }
}
