//! Renders the chart once per CI values file (with the helm found as the module above says)
//! and reads what the renderings hold: the pod templates, the bazaar containers and the
//! environment each one gets from its ConfigMap, Secret and `env`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_norway::Value;

use crate::deploy_files::{Process, map_of, repo, str_of, strings};

pub const CHART: &str = "deploy/helm/bazaar";
/// The CI values files (`ci/<name>-values.yaml`): name, topology, broker.
pub const TOPOLOGIES: [(&str, &str, Option<&str>); 4] = [
    ("embedded", "embedded", None),
    ("postgres-nats-redis", "split", Some("nats")),
    ("postgres-rabbitmq-redis", "split", Some("rabbitmq")),
    ("postgres-kafka-redis", "split", Some("kafka")),
];
/// The image every rendering is given, so the bazaar containers are those that run it.
const IMAGE_REPOSITORY: &str = "bazaar-under-test";
const IMAGE_TAG: &str = "check";

/// `helm template` of one CI values file, with the Prometheus Operator's API present.
pub struct Rendering {
    pub topology: &'static str,
    pub split: bool,
    pub text: String,
    pub objects: Vec<Value>,
    /// `secrets.existingSecret`: a Secret the pods read that the chart does not render.
    pub external_secret: Option<String>,
}

impl Rendering {
    pub fn object(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| str_of(&o["kind"]) == kind && str_of(&o["metadata"]["name"]) == name)
            .unwrap_or_else(|| panic!("chart {}: no {kind} {name}", self.topology))
    }
}

/// The helm to run: `BAZAAR_HELM`, else `helm` on the PATH, else the one scripts/check-helm
/// installs into `${BAZAAR_TOOLS_DIR:-/var/tmp/bazaar-tools}/bin`.
fn helm() -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os("BAZAAR_HELM") {
        Some(path) => vec![path.into()],
        None => {
            let tools = std::env::var_os("BAZAAR_TOOLS_DIR")
                .map_or_else(|| PathBuf::from("/var/tmp/bazaar-tools"), PathBuf::from);
            vec!["helm".into(), tools.join("bin/helm")]
        }
    };
    candidates
        .iter()
        .find(|helm| {
            Command::new(helm)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .cloned()
        .ok_or_else(|| format!("no helm (tried {candidates:?}; scripts/check-helm installs one)"))
}

fn render(helm: &Path, (name, topology, _): (&'static str, &str, Option<&str>)) -> Rendering {
    let chart = repo().join(CHART);
    let values = chart.join(format!("ci/{name}-values.yaml"));
    let out = Command::new(helm)
        .args(["template", "bazaar"])
        .arg(&chart)
        .args([
            "--namespace",
            "bazaar",
            "--api-versions",
            "monitoring.coreos.com/v1",
        ])
        .arg("--values")
        .arg(&values)
        .args(["--set", &format!("image.repository={IMAGE_REPOSITORY}")])
        .args(["--set", &format!("image.tag={IMAGE_TAG}")])
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template --values {}: {}",
        values.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let objects = {
        use serde::Deserialize;
        serde_norway::Deserializer::from_str(&text)
            .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("chart {name}: {e}")))
            .filter(|v| !v.is_null())
            .collect()
    };
    let values: Value = serde_norway::from_str(
        &std::fs::read_to_string(&values).unwrap_or_else(|e| panic!("{}: {e}", values.display())),
    )
    .expect("values");
    let external_secret = values["secrets"]["existingSecret"]
        .as_str()
        .map(str::to_owned);
    Rendering {
        topology: name,
        split: topology == "split",
        text,
        objects,
        external_secret: external_secret.filter(|s| !s.is_empty()),
    }
}

/// Every CI rendering, or `None` (SKIPPED) without helm; under `BAZAAR_REQUIRE_BACKENDS=1` a
/// missing helm fails instead.
pub fn renderings() -> Option<&'static [Rendering]> {
    static RENDERED: OnceLock<Result<Vec<Rendering>, String>> = OnceLock::new();
    let rendered = RENDERED.get_or_init(|| {
        let helm = helm()?;
        Ok(TOPOLOGIES.into_iter().map(|t| render(&helm, t)).collect())
    });
    match rendered {
        Ok(renderings) => Some(renderings),
        Err(why) => {
            assert!(
                std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() != Ok("1"),
                "BAZAAR_REQUIRE_BACKENDS=1 but {why}"
            );
            eprintln!("SKIPPED: Helm chart renderings: {why}");
            None
        }
    }
}

/// The pod templates of Deployments and Jobs, with their object's kind and name.
pub fn pod_specs(r: &Rendering) -> Vec<(String, &Value)> {
    r.objects
        .iter()
        .filter_map(|o| {
            let spec = o.get("spec")?.get("template")?.get("spec")?;
            let name = format!("{} {}", str_of(&o["kind"]), str_of(&o["metadata"]["name"]));
            Some((name, spec))
        })
        .collect()
}

pub fn bazaar_containers(r: &Rendering) -> Vec<(String, &Value)> {
    let image = format!("{IMAGE_REPOSITORY}:{IMAGE_TAG}");
    pod_specs(r)
        .into_iter()
        .flat_map(|(name, spec)| {
            let containers = spec["containers"].as_sequence().expect("containers");
            let bazaar: Vec<&Value> = containers
                .iter()
                .filter(|c| c.get("image").and_then(Value::as_str) == Some(image.as_str()))
                .collect();
            assert_eq!(
                bazaar.len(),
                containers.len(),
                "chart {}: {name} runs {image}",
                r.topology
            );
            bazaar.into_iter().map(move |c| (name.clone(), c))
        })
        .collect()
}

/// The environment of each bazaar container: its `env` plus every ConfigMap and Secret in
/// `envFrom` (an external Secret adds nothing the test can see).
pub fn k8s_processes(r: &Rendering) -> Vec<Process> {
    let data_of = |kind: &str, name: &str| -> BTreeMap<String, String> {
        if kind == "Secret" && r.external_secret.as_deref() == Some(name) {
            return BTreeMap::new();
        }
        let object = r.object(kind, name);
        let mut data = map_of(object.get("data"));
        data.extend(map_of(object.get("stringData")));
        data
    };
    bazaar_containers(r)
        .into_iter()
        .map(|(place, c)| {
            assert!(
                c.get("command").is_none(),
                "{place}: keep the bazaar entrypoint"
            );
            let mut env = BTreeMap::new();
            for source in c
                .get("envFrom")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(r) = source.get("configMapRef") {
                    env.extend(data_of("ConfigMap", &str_of(&r["name"])));
                }
                if let Some(r) = source.get("secretRef") {
                    env.extend(data_of("Secret", &str_of(&r["name"])));
                }
            }
            for var in c
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let value = var.get("value").map(str_of).unwrap_or_default();
                env.insert(str_of(&var["name"]), value);
            }
            Process {
                place,
                args: strings(c.get("args")),
                env,
            }
        })
        .collect()
}
