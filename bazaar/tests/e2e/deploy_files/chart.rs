//! The Helm chart `deploy/helm/bazaar`, rendered with `helm template` for every topology in its
//! `ci/` directory and checked like compose: the services its pods run with which flags, the
//! `BAZAAR_*` variables they get, probes and ports, locked-down pods, the migration hook, the
//! ServiceMonitor and the Grafana dashboard. Needs helm: `BAZAAR_HELM`, else `helm` on the PATH,
//! else the one `scripts/check-helm` installs; without one the rendering checks print SKIPPED
//! and pass, except under `BAZAAR_REQUIRE_BACKENDS=1` (CI), where they fail.

mod pods;
mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use super::{
    DASHBOARD, check_processes, known_variables, map_of, read, repo, services, str_of, variables_in,
};
use render::{CHART, Rendering, TOPOLOGIES, k8s_processes};

const KAFKA_RENDERING: &str = "postgres-kafka-redis";

fn kind_and_name(o: &Value) -> (String, String) {
    (str_of(&o["kind"]), str_of(&o["metadata"]["name"]))
}

/// One CI values file per topology the schema allows: embedded, and split on each broker.
#[test]
fn chart_has_ci_values_for_every_topology() {
    let schema: serde_json::Value =
        serde_json::from_str(&read(&format!("{CHART}/values.schema.json"))).expect("schema");
    let allowed = |key: &str| -> BTreeSet<String> {
        let values = schema["properties"][key]["enum"].as_array();
        let values = values.unwrap_or_else(|| panic!("values.schema.json: {key} is an enum"));
        values
            .iter()
            .map(|v| v.as_str().expect("a name").to_owned())
            .collect()
    };
    let mut expected = BTreeSet::new();
    for topology in allowed("topology") {
        if topology == "split" {
            expected.extend(
                allowed("broker")
                    .into_iter()
                    .map(|b| ("split".into(), Some(b))),
            );
        } else {
            expected.insert((topology, None));
        }
    }
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join(CHART).join("ci")).expect("ci/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        files.insert(name);
    }
    let listed: BTreeSet<String> = TOPOLOGIES
        .iter()
        .map(|(name, ..)| format!("{name}-values.yaml"))
        .collect();
    assert_eq!(
        files, listed,
        "{CHART}/ci: one values file per entry of TOPOLOGIES"
    );
    let mut covered = BTreeSet::new();
    for (name, topology, broker) in TOPOLOGIES {
        let values: Value =
            serde_norway::from_str(&read(&format!("{CHART}/ci/{name}-values.yaml"))).expect("yaml");
        assert_eq!(values["topology"].as_str(), Some(topology), "ci/{name}");
        if let Some(broker) = broker {
            assert_eq!(values["broker"].as_str(), Some(broker), "ci/{name}");
        }
        covered.insert((topology.to_owned(), broker.map(str::to_owned)));
    }
    assert_eq!(
        covered, expected,
        "every topology and broker has a CI values file"
    );
}

#[test]
fn chart_runs_every_service_with_real_commands() {
    let Some(renderings) = render::renderings() else {
        return;
    };
    let all = services();
    for r in renderings {
        let processes = k8s_processes(r);
        // A Service's name → the services run by the pods its selector picks.
        let mut hosts = BTreeMap::new();
        for service in r.objects.iter().filter(|o| str_of(&o["kind"]) == "Service") {
            let selector = map_of(service["spec"].get("selector"));
            let mut served = Vec::new();
            for object in &r.objects {
                let Some(template) = object.get("spec").and_then(|s| s.get("template")) else {
                    continue;
                };
                let labels = map_of(template["metadata"].get("labels"));
                if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    continue;
                }
                let (kind, name) = kind_and_name(object);
                for p in processes
                    .iter()
                    .filter(|p| p.place == format!("{kind} {name}"))
                {
                    served.extend(p.services(&all).unwrap_or_default());
                }
            }
            hosts.insert(str_of(&service["metadata"]["name"]), served);
        }
        let what = format!("chart {}", r.topology);
        check_processes(&what, &processes, &hosts);
        let jobs: Vec<&Value> = r
            .objects
            .iter()
            .filter(|o| str_of(&o["kind"]) == "Job")
            .collect();
        if r.split {
            assert!(
                processes
                    .iter()
                    .any(|p| p.place.starts_with("Job ") && p.args == ["migrate"]),
                "{what}: a Job running `bazaar migrate`"
            );
            check_migration_hook(&what, r, jobs[0]);
        } else {
            check_embedded(&what, r, &processes);
            assert!(jobs.is_empty(), "{what}: `serve` migrates; no Job");
        }
    }
}

/// The migration Job runs before every install and upgrade, after the ConfigMap and the
/// Secret it reads, which are hooks of a lower weight for that reason.
fn check_migration_hook(what: &str, r: &Rendering, job: &Value) {
    let hook = |o: &Value| -> (BTreeSet<String>, i64) {
        let annotations = map_of(o["metadata"].get("annotations"));
        let phases = annotations
            .get("helm.sh/hook")
            .map(String::as_str)
            .unwrap_or_default();
        let weight = annotations
            .get("helm.sh/hook-weight")
            .map(String::as_str)
            .unwrap_or("0");
        let phases = phases.split(',').map(|p| p.trim().to_owned()).collect();
        (phases, weight.parse().expect("hook weight"))
    };
    let needed: BTreeSet<String> = ["pre-install", "pre-upgrade"].map(String::from).into();
    let (phases, job_weight) = hook(job);
    assert!(
        phases.is_superset(&needed),
        "{what}: the Job is a {needed:?} hook: {phases:?}"
    );
    for source in job["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        .as_sequence()
        .expect("envFrom")
    {
        let (kind, name) = match (source.get("configMapRef"), source.get("secretRef")) {
            (Some(r), _) => ("ConfigMap", str_of(&r["name"])),
            (_, Some(r)) => ("Secret", str_of(&r["name"])),
            _ => panic!("{what}: envFrom {source:?}"),
        };
        if r.external_secret.as_deref() == Some(name.as_str()) {
            continue;
        }
        let object = r.object(kind, &name);
        let (phases, weight) = hook(object);
        assert!(
            phases.is_superset(&needed) && weight < job_weight,
            "{what}: {kind} {name} is a hook before the migration Job ({phases:?}, {weight})"
        );
    }
}

/// One pod of `bazaar serve` with every service, its data on a PersistentVolumeClaim.
fn check_embedded(what: &str, r: &Rendering, processes: &[super::Process]) {
    let deployments: Vec<&Value> = r
        .objects
        .iter()
        .filter(|o| str_of(&o["kind"]) == "Deployment")
        .collect();
    assert_eq!(deployments.len(), 1, "{what}: one Deployment");
    let spec = &deployments[0]["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(1), "{what}: one replica");
    assert_eq!(
        spec["strategy"]["type"].as_str(),
        Some("Recreate"),
        "{what}: never two pods"
    );
    assert_eq!(processes.len(), 1, "{what}");
    assert_eq!(
        processes[0].args,
        ["serve"],
        "{what}: every service in one process"
    );
    let claim = spec["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"].as_str() == Some("data"))
        .and_then(|v| v.get("persistentVolumeClaim"))
        .unwrap_or_else(|| panic!("{what}: /data on a PersistentVolumeClaim"));
    let pvc = r.object("PersistentVolumeClaim", &str_of(&claim["claimName"]));
    let policy = map_of(pvc["metadata"].get("annotations"));
    assert_eq!(
        policy.get("helm.sh/resource-policy").map(String::as_str),
        Some("keep"),
        "{what}: `helm uninstall` keeps the data"
    );
}

#[test]
fn every_bazaar_variable_in_the_chart_is_one_the_binary_reads() {
    let known = known_variables();
    let mut dirs = vec![repo().join(CHART)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("chart dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("chart file");
            let unknown: Vec<String> = variables_in(&text, None)
                .into_iter()
                .filter(|v| !known.contains(v))
                .collect();
            assert!(
                unknown.is_empty(),
                "{}: unknown variables {unknown:?}",
                path.display()
            );
        }
    }
    let Some(renderings) = render::renderings() else {
        return;
    };
    for r in renderings {
        let kafka = r.topology == KAFKA_RENDERING;
        let unknown: Vec<String> = variables_in(&r.text, None)
            .into_iter()
            .filter(|v| !known.contains(v))
            .collect();
        assert!(
            unknown.is_empty(),
            "chart {}: variables bazaar does not read: {unknown:?}",
            r.topology
        );
        if kafka {
            assert!(
                r.text.contains("BAZAAR_KAFKA_BROKERS"),
                "chart {}: Kafka's brokers",
                r.topology
            );
        }
    }
}

/// Grafana's sidecar loads the dashboard from a labelled ConfigMap: the dashboard file itself.
#[test]
fn chart_ships_the_dashboard() {
    let Some(renderings) = render::renderings() else {
        return;
    };
    let dashboard = read(DASHBOARD);
    for r in renderings {
        let boards: Vec<&Value> = r
            .objects
            .iter()
            .filter(|o| map_of(o["metadata"].get("labels")).contains_key("grafana_dashboard"))
            .collect();
        assert_eq!(
            boards.len(),
            1,
            "chart {}: one dashboard ConfigMap",
            r.topology
        );
        let labels = map_of(boards[0]["metadata"].get("labels"));
        assert_eq!(labels["grafana_dashboard"], "1", "chart {}", r.topology);
        let data = map_of(boards[0].get("data"));
        assert_eq!(
            data.get("bazaar.json").map(String::as_str),
            Some(dashboard.trim_end_matches('\n')),
            "chart {}: the ConfigMap holds {DASHBOARD}",
            r.topology
        );
    }
}
