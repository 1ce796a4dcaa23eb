//! GraphiQL in a real browser, on both backends: Debian's headless Chromium, driven by
//! `tests/browser/graphiql.mjs` (playwright-core, no browser download), against a running
//! bazaar. The page must load with no request leaving loopback, list `Query` fields in its Docs
//! explorer, run a query with a bearer token typed into its headers editor, and show an order
//! reaching CONFIRMED through a subscription. The screenshot is kept under
//! `target/tmp/browser/`.
//!
//! Without Chromium, Node.js or the script's `node_modules` (`scripts/test` installs it) the test
//! says SKIPPED and passes, like the backend suites; with `BAZAAR_REQUIRE_BACKENDS=1` (CI) it
//! fails instead.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::Environment;
use serde_json::json;

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !chromium().is_file() {
        return Some(format!(
            "{} not found (apt-get install chromium)",
            chromium().display()
        ));
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node not found".into());
    }
    if !script_dir().join("node_modules/playwright-core").is_dir() {
        return Some(format!(
            "playwright-core not installed (npm ci --prefix {})",
            script_dir().display()
        ));
    }
    None
}

async fn graphiql_works_in_chromium(env: &Environment) {
    if let Some(why) = missing() {
        if std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() == Ok("1") {
            panic!("browser test required but {why}");
        }
        eprintln!("SKIPPED: GraphiQL browser test: {why}");
        return;
    }
    let app = env.start().await;
    let admin = app.admin_token().await;
    let product = app.product(&admin, "Teapot", "kitchen", 2500, 50).await;
    let (token, _, _) = app.register("browser@example.com", "Browser").await;

    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&artefacts).expect("artefact dir");
    let backend = format!("{:?}", env.backend).to_lowercase();
    let screenshot = artefacts.join(format!("graphiql-{backend}.png"));
    let output = tokio::process::Command::new("node")
        .arg(script_dir().join("graphiql.mjs"))
        .current_dir(script_dir())
        .env("BAZAAR_URL", &app.base)
        .env("BAZAAR_TOKEN", &token)
        .env("BAZAAR_EMAIL", "browser@example.com")
        .env("BAZAAR_PRODUCT", &product)
        .env("SCREENSHOT", &screenshot)
        .env("CHROMIUM", chromium())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    // The order really is confirmed, not just shown as such.
    let orders = app
        .ok(
            Some(&token),
            "{ orders { edges { node { status } } } }",
            json!({}),
        )
        .await;
    assert_eq!(orders["orders"]["edges"][0]["node"]["status"], "CONFIRMED");
    app.stop().await;
}
on_both_backends!(graphiql_works_in_chromium);
