//! The layout ARCHITECTURE.md promises: every service directory has the one skeleton, the
//! binary's registry lists exactly the directories under `services/` (a copied directory
//! without its registry line, or a line without its directory, fails here), and no service or
//! binary source file grows past 400 lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What every service that keeps data has under `src/` (ARCHITECTURE.md, "One skeleton per
/// service"); `/` marks a directory.
const SKELETON: [&str; 6] = [
    "lib.rs",
    "app.rs",
    "consumer.rs",
    "domain/",
    "store/",
    "http.rs",
];
/// The gateway keeps no data: its lib.rs and app.rs are of the same kind, the rest its own.
const GATEWAY_SKELETON: [&str; 2] = ["lib.rs", "app.rs"];
const MAX_LINES: usize = 400;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn service_dirs() -> BTreeSet<String> {
    std::fs::read_dir(repo().join("services"))
        .expect("services/")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// What `bazaar services` prints: the registry's names.
fn registered() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .arg("services")
        .output()
        .expect("run bazaar");
    assert!(out.status.success(), "bazaar services: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_registry_lists_every_service_directory_once() {
    let names = registered();
    let listed: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(listed.len(), names.len(), "a name listed twice: {names:?}");
    assert_eq!(
        listed,
        service_dirs(),
        "bazaar/src/registry.rs against the directories under services/"
    );
}

#[test]
fn every_service_has_the_skeleton() {
    for service in service_dirs() {
        let src = repo().join("services").join(&service).join("src");
        let skeleton: &[&str] = if service == "gateway" {
            &GATEWAY_SKELETON
        } else {
            &SKELETON
        };
        for part in skeleton {
            let path = src.join(part.trim_end_matches('/'));
            let present = if part.ends_with('/') {
                path.join("mod.rs").is_file()
            } else {
                path.is_file()
            };
            assert!(present, "services/{service}/src/{part} is missing");
        }
        let app = std::fs::read_to_string(src.join("app.rs")).expect("app.rs");
        let declared = format!("pub const NAME: ServiceName = ServiceName::new(\"{service}\");");
        assert!(
            app.contains(&declared),
            "services/{service}/src/app.rs: {declared}"
        );
        let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
        for needle in [
            "pub struct Deps",
            "pub async fn build(platform: &Platform, deps: Deps) -> anyhow::Result<Service>",
        ] {
            assert!(
                lib.contains(needle),
                "services/{service}/src/lib.rs: {needle}"
            );
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_service_or_binary_source_file_is_over_400_lines() {
    let mut files = Vec::new();
    rust_files(&repo().join("bazaar/src"), &mut files);
    for service in service_dirs() {
        rust_files(
            &repo().join("services").join(service).join("src"),
            &mut files,
        );
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).expect("source").lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}
