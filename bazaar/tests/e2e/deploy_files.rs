//! The deployment files in `deploy/` cannot be run here (no container engine, no cluster), so
//! this test checks that they agree with the binary instead: the services they start, the
//! subcommands and flags they pass, the `BAZAAR_*` variables they set, the endpoints and ports
//! they probe and scrape, and the metrics the Grafana dashboard queries. The Helm chart's
//! renderings are checked the same way in [`chart`].

mod chart;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

/// What every bazaar process serves besides its API (`crates/runtime/src/http.rs`).
const OPS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
/// Every bazaar container listens here; only the gateway is published, on this host port.
const CONTAINER_PORT: u64 = 8080;
const GATEWAY_HOST_PORT: u64 = 8000;
/// The image the compose file builds.
const COMPOSE_IMAGE: &str = "bazaar:local";
/// Which services a process reaches over HTTP when they do not run in it (`bazaar/src/registry.rs`).
const NEEDS: [(&str, &[&str]); 2] = [
    ("gateway", &["users", "catalog", "orders"]),
    ("orders", &["catalog"]),
];

/// Metric names the dashboard may query; each must be recorded somewhere in the code.
const DASHBOARD_METRICS: [&str; 14] = [
    "bazaar_graphql_requests_total",
    "bazaar_graphql_request_duration_seconds_bucket",
    "bazaar_internal_calls_total",
    "bazaar_orders",
    "bazaar_events_published_total",
    "bazaar_events_consumed_total",
    "bazaar_events_failed_total",
    "bazaar_events_dead_lettered_total",
    "bazaar_dead_letters",
    "bazaar_outbox_backlog",
    "bazaar_consumer_pending",
    "bazaar_stream_messages",
    "bazaar_order_confirmation_duration_seconds_bucket",
    "bazaar_outbox_oldest_age_seconds",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every YAML document in the file, with `<<` merge keys applied.
fn yaml_documents(relative: &str) -> Vec<Value> {
    use serde::Deserialize;
    let text = read(relative);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{relative}: {e}"));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{relative}: {e}"));
            value
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml(relative: &str) -> Value {
    let mut docs = yaml_documents(relative);
    assert_eq!(docs.len(), 1, "{relative}: expected one YAML document");
    docs.remove(0)
}

fn bazaar(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args(args)
        .output()
        .expect("run bazaar");
    assert!(out.status.success(), "bazaar {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// What `bazaar services` prints.
fn services() -> Vec<String> {
    let names: Vec<String> = bazaar(&["services"]).lines().map(str::to_owned).collect();
    assert!(names.contains(&"gateway".to_owned()), "{names:?}");
    names
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().map(str_of).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(other) => panic!("expected a list of strings, found {other:?}"),
    }
}

fn map_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_mapping)
        .map(|m| m.iter().map(|(k, v)| (str_of(k), str_of(v))).collect())
        .unwrap_or_default()
}

/// A bazaar container in compose or Kubernetes: where it is, the arguments after the `bazaar`
/// entrypoint, and the environment it gets.
#[derive(Debug)]
struct Process {
    place: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Process {
    /// The services `bazaar serve` runs in this process, or `None` for other subcommands.
    fn services(&self, all: &[String]) -> Option<Vec<String>> {
        if self.args.first().map(String::as_str) != Some("serve") {
            return None;
        }
        let mut named = None;
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            if let Some(value) = arg.strip_prefix("--services=") {
                named = Some(value.to_owned());
            } else if arg == "--services" {
                named = args.next().cloned();
            }
        }
        Some(
            match named.or_else(|| self.env.get("BAZAAR_SERVICES").cloned()) {
                Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
                None => all.to_vec(),
            },
        )
    }
}

fn compose() -> Value {
    yaml("deploy/compose.yaml")
}

fn compose_services(compose: &Value) -> Vec<(String, &Value)> {
    compose["services"]
        .as_mapping()
        .expect("compose services")
        .iter()
        .map(|(k, v)| (str_of(k), v))
        .collect()
}

fn compose_processes(compose: &Value) -> Vec<Process> {
    compose_services(compose)
        .into_iter()
        .filter(|(_, s)| s.get("image").and_then(Value::as_str) == Some(COMPOSE_IMAGE))
        .map(|(name, s)| {
            assert!(
                s.get("entrypoint").is_none(),
                "compose {name}: keep the bazaar entrypoint"
            );
            Process {
                place: format!("compose service {name}"),
                args: strings(s.get("command")),
                env: map_of(s.get("environment")),
            }
        })
        .collect()
}

/// `host:port` of an `http://host:port/path` URL, and the path.
fn parse_url(url: &str) -> (String, u64, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not http: {url}"));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = authority.split_once(':').unwrap_or((authority, "80"));
    let path = format!("/{}", path.split('?').next().unwrap_or_default());
    (host.to_owned(), port.parse().expect("port"), path)
}

/// Checks the processes of one deployment: real subcommands, flags and service names, every
/// service run somewhere, and the services each process needs reachable at their URL, whose
/// host `hosts` maps to the services it runs.
fn check_processes(what: &str, processes: &[Process], hosts: &BTreeMap<String, Vec<String>>) {
    let all = services();
    let top_help = bazaar(&["--help"]);
    let mut running = BTreeSet::new();
    for p in processes {
        let subcommand = p
            .args
            .first()
            .unwrap_or_else(|| panic!("{}: no subcommand", p.place));
        assert!(
            top_help
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{subcommand} "))),
            "{}: `bazaar {subcommand}` is not a subcommand:\n{top_help}",
            p.place
        );
        let help = bazaar(&[subcommand, "--help"]);
        for flag in p.args.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or_default();
            assert!(
                help.match_indices(flag).any(|(at, _)| {
                    let next = help[at + flag.len()..].chars().next();
                    !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                }),
                "{}: `bazaar {subcommand}` has no {flag}",
                p.place
            );
        }
        let Some(served) = p.services(&all) else {
            continue;
        };
        for service in &served {
            assert!(
                all.contains(service),
                "{}: unknown service {service:?}",
                p.place
            );
            running.insert(service.clone());
        }
        for (service, needs) in NEEDS {
            if !served.iter().any(|s| s == service) {
                continue;
            }
            for needed in needs.iter().filter(|n| !served.iter().any(|s| s == *n)) {
                let var = format!("BAZAAR_{}_URL", needed.to_uppercase());
                let url = p
                    .env
                    .get(&var)
                    .unwrap_or_else(|| panic!("{}: needs {var}", p.place));
                let (host, port, _) = parse_url(url);
                assert_eq!(port, CONTAINER_PORT, "{}: {var}={url}", p.place);
                assert!(
                    hosts
                        .get(&host)
                        .is_some_and(|s| s.iter().any(|s| s == needed)),
                    "{}: {var}={url}, but {host} does not run {needed} in {what}",
                    p.place
                );
            }
        }
    }
    let all: BTreeSet<String> = all.into_iter().collect();
    assert_eq!(
        running, all,
        "{what} must run every service exactly as `bazaar services` lists"
    );
}

#[test]
fn compose_runs_every_service_with_real_commands() {
    let compose = compose();
    let processes = compose_processes(&compose);
    let all = services();
    let hosts = processes
        .iter()
        .filter_map(|p| {
            let name = p.place.strip_prefix("compose service ")?.to_owned();
            Some((name, p.services(&all)?))
        })
        .collect();
    check_processes("compose", &processes, &hosts);
    assert!(
        processes.iter().any(|p| p.args == ["migrate"]),
        "compose: a one-shot `bazaar migrate`"
    );
    let nats = read("deploy/nats/nats.conf");
    assert!(
        nats.contains("sync_interval: always") && nats.contains("store_dir"),
        "{nats}"
    );
}

/// The `BAZAAR_*` names the binary reads: string literals in the runtime's and the binary's
/// sources (every module, folders included), plus the per-service patterns built with `ServiceName::env_prefix`.
fn known_variables() -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    let mut dirs = vec![repo().join("crates/runtime/src"), repo().join("bazaar/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("source dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("source");
                known.extend(variables_in(&source, Some('"')));
            }
        }
    }
    for service in services() {
        let upper = service.to_uppercase();
        known.insert(format!("BAZAAR_{upper}_URL"));
        known.insert(format!("BAZAAR_{upper}_DATABASE_URL"));
    }
    for sure in [
        "BAZAAR_DATABASE_URL",
        "BAZAAR_JWT_SECRET",
        "BAZAAR_LISTEN",
        "BAZAAR_LOG",
    ] {
        assert!(
            known.contains(sure),
            "the source scan missed {sure}: {known:?}"
        );
    }
    known
}

/// Every `BAZAAR_NAME` in `text`; with `quote`, only those right after that character.
fn variables_in(text: &str, quote: Option<char>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("BAZAAR_") {
        let before = text[..at].chars().next_back();
        let starts = match quote {
            Some(q) => before == Some(q),
            None => !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_'),
        };
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if starts && !name.ends_with('_') {
            found.insert(name);
        }
    }
    found
}

#[test]
fn every_bazaar_variable_is_one_the_binary_reads() {
    let known = known_variables();
    let files = vec![
        "deploy/compose.yaml".to_owned(),
        "deploy/.env.example".to_owned(),
        "deploy/Dockerfile".to_owned(),
    ];
    // The Helm chart: chart::every_bazaar_variable_in_the_chart_is_one_the_binary_reads.
    for file in files {
        let unknown: Vec<String> = variables_in(&read(&file), None)
            .into_iter()
            .filter(|v| !known.contains(v))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} uses variables bazaar does not read: {unknown:?}"
        );
    }
}

#[test]
fn compose_health_checks_and_ports() {
    let compose = compose();
    for (name, service) in compose_services(&compose) {
        if service.get("image").and_then(Value::as_str) != Some(COMPOSE_IMAGE) {
            continue;
        }
        let check = &service["healthcheck"];
        if check.get("disable").and_then(Value::as_bool) != Some(true) {
            let urls: Vec<String> = strings(check.get("test"))
                .into_iter()
                .filter(|a| a.starts_with("http://"))
                .collect();
            assert!(!urls.is_empty(), "compose {name}: an HTTP health check");
            for url in urls {
                let (_, port, path) = parse_url(&url);
                assert_eq!(port, CONTAINER_PORT, "compose {name}: {url}");
                assert!(OPS_PATHS.contains(&path.as_str()), "compose {name}: {url}");
            }
        }
        for mapping in strings(service.get("ports")) {
            let parts: Vec<&str> = mapping.split(':').collect();
            let container: u64 = parts[parts.len() - 1].parse().expect("container port");
            let host: u64 = parts[parts.len() - 2].parse().expect("host port");
            assert_eq!(container, CONTAINER_PORT, "compose {name}: {mapping}");
            assert_eq!(host, GATEWAY_HOST_PORT, "compose {name}: {mapping}");
            assert_eq!(
                name, "gateway",
                "compose {name}: only the gateway is published"
            );
        }
    }
}

#[test]
fn prometheus_scrapes_every_service_on_8080() {
    let config = yaml("deploy/prometheus/prometheus.yml");
    let compose = compose();
    let all = services();
    let mut scraped = BTreeSet::new();
    for job in config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
    {
        let name = str_of(&job["job_name"]);
        let path = job
            .get("metrics_path")
            .map(str_of)
            .unwrap_or_else(|| "/metrics".into());
        assert_eq!(path, "/metrics", "job {name}");
        for sd in job
            .get("dns_sd_configs")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            assert_eq!(sd["port"].as_u64(), Some(CONTAINER_PORT), "job {name}");
            scraped.extend(strings(sd.get("names")));
        }
        for sc in job
            .get("static_configs")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            for target in strings(sc.get("targets")) {
                let (host, port) = target.split_once(':').expect("host:port");
                assert_eq!(
                    port.parse::<u64>().ok(),
                    Some(CONTAINER_PORT),
                    "job {name}: {target}"
                );
                scraped.insert(host.to_owned());
            }
        }
    }
    let servers: BTreeSet<String> = compose_processes(&compose)
        .iter()
        .filter(|p| p.services(&all).is_some())
        .filter_map(|p| p.place.strip_prefix("compose service ").map(str::to_owned))
        .collect();
    assert_eq!(
        scraped, servers,
        "Prometheus scrapes exactly the bazaar containers"
    );
}

/// Every string under an `expr` key.
fn expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => expressions(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

/// Where the dashboard lives: in the Helm chart (its ConfigMap reads it with `.Files.Get`, which
/// cannot reach outside the chart), and compose mounts that directory into Grafana.
const DASHBOARD: &str = "deploy/helm/bazaar/dashboards/bazaar.json";

/// Every `.rs` file under `dir`, concatenated.
fn sources_under(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry"))
    {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            sources_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            // The HELP catalogue names every metric without recording any.
            && path.file_name().is_some_and(|n| n != "metric_help.rs")
        {
            out.push_str(&std::fs::read_to_string(&path).expect("source"));
        }
    }
}

#[test]
fn dashboard_queries_only_known_metrics() {
    let text = read(DASHBOARD);
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "the dashboard has its panels: {exprs:?}");
    for expr in &exprs {
        for (at, _) in expr.match_indices("bazaar_") {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                DASHBOARD_METRICS.contains(&name.as_str()),
                "unknown metric {name} in {expr}"
            );
        }
    }

    let mut source = String::new();
    sources_under(&repo().join("crates"), &mut source);
    sources_under(&repo().join("services"), &mut source);
    for metric in DASHBOARD_METRICS {
        let recorded = metric.strip_suffix("_bucket").unwrap_or(metric);
        assert!(
            source.contains(&format!("\"{recorded}\"")),
            "{metric}: no code records \"{recorded}\" (renamed? update the dashboard)"
        );
        assert!(
            bazaar_runtime::metric_help::names().any(|n| n == recorded),
            "{recorded}: no HELP text in crates/runtime/src/metric_help.rs"
        );
    }

    // Panels name the provisioned data source.
    let datasources = yaml("deploy/grafana/provisioning/datasources/prometheus.yaml");
    let uids: BTreeSet<String> = datasources["datasources"]
        .as_sequence()
        .expect("datasources")
        .iter()
        .map(|d| str_of(&d["uid"]))
        .collect();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if let Some(uid) = panel.get("datasource").and_then(|d| d.get("uid")) {
            let uid = uid.as_str().expect("uid");
            assert!(
                uids.contains(uid),
                "panel {}: data source {uid}",
                panel["title"]
            );
        }
    }
    let providers = yaml("deploy/grafana/provisioning/dashboards/bazaar.yaml");
    let provider_paths: Vec<String> = providers["providers"]
        .as_sequence()
        .expect("providers")
        .iter()
        .map(|p| str_of(&p["options"]["path"]))
        .collect();
    assert!(!provider_paths.is_empty(), "a dashboard provider");
    // Compose's Grafana loads the chart's copy: there is no other.
    let dir = Path::new(DASHBOARD).parent().expect("dir");
    let mount = format!(
        "./{}:{}:ro",
        dir.strip_prefix("deploy").expect("under deploy/").display(),
        provider_paths[0]
    );
    let compose = compose();
    assert!(
        strings(compose["services"]["grafana"].get("volumes")).contains(&mount),
        "compose grafana: mount {mount}"
    );
}

#[test]
fn dockerfile_runs_bazaar_as_non_root_on_8080() {
    let dockerfile = read("deploy/Dockerfile");
    for needle in [
        "cargo build --release --locked -p bazaar",
        "USER 10001",
        "EXPOSE 8080",
        "BAZAAR_LISTEN=0.0.0.0:8080",
        "ENTRYPOINT [\"bazaar\"]",
        "CMD [\"serve\"]",
    ] {
        assert!(dockerfile.contains(needle), "deploy/Dockerfile: {needle}");
    }
    // The HEALTHCHECK (comments may show host URLs).
    let instructions = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'));
    for line in instructions.filter(|l| l.contains("http://")) {
        let url = &line[line.find("http://").expect("url")..];
        let url = url.split('"').next().unwrap_or(url);
        let (_, port, path) = parse_url(url);
        assert_eq!(port, CONTAINER_PORT, "{line}");
        assert!(OPS_PATHS.contains(&path.as_str()), "{line}");
    }
}

/// Either broker carries the events: NATS and RabbitMQ are compose profiles, every bazaar
/// service waits for whichever one is active, and the example `.env` picks NATS and shows how
/// to pick RabbitMQ (with the variables the binary reads).
#[test]
fn compose_offers_nats_or_rabbitmq() {
    let compose = compose();
    for broker in ["nats", "rabbitmq"] {
        assert_eq!(
            compose["services"][broker]["profiles"][0].as_str(),
            Some(broker),
            "compose {broker}: a profile of its own"
        );
    }
    for (name, service) in compose_services(&compose) {
        if service["image"].as_str() != Some("bazaar:local") || name == "migrate" {
            continue;
        }
        for broker in ["nats", "rabbitmq"] {
            let dep = &service["depends_on"][broker];
            assert_eq!(
                (dep["condition"].as_str(), dep["required"].as_bool()),
                (Some("service_healthy"), Some(false)),
                "compose {name}: waits for {broker} when its profile is active"
            );
        }
    }
    let env = read("deploy/.env.example");
    for needle in [
        "\nCOMPOSE_PROFILES=nats",
        "# COMPOSE_PROFILES=rabbitmq",
        "# BAZAAR_NATS_URL=\n",
        "# BAZAAR_AMQP_URL=amqp://",
    ] {
        assert!(env.contains(needle), ".env.example: {needle:?}");
    }
}
