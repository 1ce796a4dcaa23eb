//! The chart's pods: probes and ports as the binary serves them, and locked down.

use std::collections::BTreeSet;

use serde_norway::Value;

use super::kind_and_name;
use super::render::{self, bazaar_containers, k8s_processes, pod_specs};
use crate::deploy_files::{CONTAINER_PORT, OPS_PATHS, map_of, str_of, strings};

/// A probe's or Service's port: 8080, or the name of a container port that is 8080.
fn port_number(port: &Value) -> u64 {
    match port {
        Value::Number(n) => n.as_u64().expect("port"),
        Value::String(name) if name == "http" => CONTAINER_PORT,
        other => panic!("unexpected port {other:?}"),
    }
}

#[test]
fn chart_probes_and_ports() {
    let Some(renderings) = render::renderings() else {
        return;
    };
    for r in renderings {
        let what = format!("chart {}", r.topology);
        for (place, c) in bazaar_containers(r) {
            for port in c
                .get("ports")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                assert_eq!(
                    port["containerPort"].as_u64(),
                    Some(CONTAINER_PORT),
                    "{what} {place}"
                );
                if let Some(name) = port.get("name") {
                    assert_eq!(str_of(name), "http", "{what} {place}: the one port name");
                }
            }
            if place.starts_with("Job ") {
                continue;
            }
            for (probe, expected) in [
                ("startupProbe", None),
                ("livenessProbe", Some("/healthz")),
                ("readinessProbe", Some("/readyz")),
            ] {
                let Some(get) = c.get(probe).map(|p| &p["httpGet"]) else {
                    assert!(expected.is_none(), "{what} {place}: a {probe}");
                    continue;
                };
                let path = str_of(&get["path"]);
                assert!(
                    OPS_PATHS.contains(&path.as_str()),
                    "{what} {place}: {probe} {path}"
                );
                if let Some(expected) = expected {
                    assert_eq!(path, expected, "{what} {place}: {probe}");
                }
                assert_eq!(
                    port_number(&get["port"]),
                    CONTAINER_PORT,
                    "{what} {place}: {probe}"
                );
            }
        }
        for object in &r.objects {
            let (kind, name) = kind_and_name(object);
            let place = format!("{what} {kind} {name}");
            if let Some(template) = object.get("spec").and_then(|s| s.get("template")) {
                let annotations = map_of(template["metadata"].get("annotations"));
                if let Some(port) = annotations.get("prometheus.io/port") {
                    assert_eq!(port, &CONTAINER_PORT.to_string(), "{place}");
                    let path = annotations.get("prometheus.io/path").map(String::as_str);
                    assert_eq!(path, Some("/metrics"), "{place}");
                }
            }
            match kind.as_str() {
                "Service" => {
                    for port in object["spec"]["ports"].as_sequence().expect("ports") {
                        assert_eq!(port_number(&port["port"]), CONTAINER_PORT, "{place}");
                        assert_eq!(port_number(&port["targetPort"]), CONTAINER_PORT, "{place}");
                        assert_eq!(port["name"].as_str(), Some("http"), "{place}");
                    }
                }
                "Ingress" => {
                    for rule in object["spec"]["rules"].as_sequence().expect("rules") {
                        for path in rule["http"]["paths"].as_sequence().expect("paths") {
                            let backend = &path["backend"]["service"];
                            let port = &backend["port"]["number"];
                            assert_eq!(port.as_u64(), Some(CONTAINER_PORT), "{place}");
                            let service = r.object("Service", &str_of(&backend["name"]));
                            let component = map_of(service["spec"].get("selector"));
                            let component = component.get("app.kubernetes.io/component");
                            let gateway = if r.split { "gateway" } else { "all-in-one" };
                            assert_eq!(component.map(String::as_str), Some(gateway), "{place}");
                        }
                    }
                }
                "ServiceMonitor" => {
                    for endpoint in object["spec"]["endpoints"]
                        .as_sequence()
                        .expect("endpoints")
                    {
                        assert_eq!(endpoint["port"].as_str(), Some("http"), "{place}");
                        assert_eq!(endpoint["path"].as_str(), Some("/metrics"), "{place}");
                    }
                }
                _ => {}
            }
        }
        let monitors = r
            .objects
            .iter()
            .filter(|o| str_of(&o["kind"]) == "ServiceMonitor");
        assert_eq!(
            monitors.count(),
            1,
            "{what}: a ServiceMonitor where the CRD exists"
        );
    }
}

#[test]
fn chart_pods_are_locked_down() {
    let Some(renderings) = render::renderings() else {
        return;
    };
    for r in renderings {
        for (place, spec) in pod_specs(r) {
            let place = format!("chart {} {place}", r.topology);
            let pod = &spec["securityContext"];
            assert_eq!(pod["runAsNonRoot"].as_bool(), Some(true), "{place}");
            assert_eq!(pod["runAsUser"].as_u64(), Some(10001), "{place}");
            // /data is scratch space, except in the embedded topology, whose data it is.
            let data_volumes: BTreeSet<String> = spec["volumes"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter(|v| {
                    v.get("emptyDir").is_some()
                        || (!r.split && v.get("persistentVolumeClaim").is_some())
                })
                .map(|v| str_of(&v["name"]))
                .collect();
            for c in spec["containers"].as_sequence().expect("containers") {
                let security = &c["securityContext"];
                assert_eq!(
                    security["readOnlyRootFilesystem"].as_bool(),
                    Some(true),
                    "{place}"
                );
                assert_eq!(
                    security["allowPrivilegeEscalation"].as_bool(),
                    Some(false),
                    "{place}"
                );
                assert_eq!(
                    strings(security["capabilities"].get("drop")),
                    ["ALL"],
                    "{place}"
                );
                let data = c["volumeMounts"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .find(|m| str_of(&m["mountPath"]) == "/data")
                    .unwrap_or_else(|| panic!("{place}: /data must be mounted"));
                assert!(
                    data_volumes.contains(&str_of(&data["name"])),
                    "{place}: /data's volume"
                );
                assert!(c["resources"]["requests"].is_mapping(), "{place}: requests");
                assert!(c["resources"]["limits"].is_mapping(), "{place}: limits");
            }
        }
        for p in k8s_processes(r) {
            let data_dir = p.env.get("BAZAAR_DATA_DIR").map(String::as_str);
            assert_eq!(data_dir, Some("/data"), "chart {} {}", r.topology, p.place);
        }
    }
}
