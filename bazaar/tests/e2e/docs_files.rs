//! The documentation keeps its promises: every example in README.md and docs/*.md runs against
//! a fresh bazaar, and docs/configuration.md names exactly the `BAZAAR_*` variables that
//! config.default.toml names.
//!
//! How an example is written, so that this test runs it:
//!
//! - Every ```` ```graphql ```` fenced block is an operation, run in file order (one app for
//!   all files; each file has its own state). A ```` ```json ```` block right after it holds
//!   its variables, as a reader pastes them into GraphiQL's Variables pane.
//! - An HTML comment on the line before the block says how: `<!-- example -->` (anonymous),
//!   `<!-- example: as=admin -->` (the admin's token), `as=user` (the `accessToken` of the
//!   latest `register` or `login` example in the file), `expect=CODE` (the operation must fail
//!   with that `extensions.code`; otherwise it must answer without `errors`), and
//!   `until=path:value` (retried for up to 20 s until `data.path` is `value`, for what the
//!   saga settles shortly after).
//! - A variable's string value `"<path>"` is replaced by the value at `path` (dots, list
//!   indexes as numbers) in the `data` of the file's earlier examples, merged by root field
//!   (alias); `<admin.email>` and `<admin.password>` are the admin's credentials.
//! - A `subscription` is opened on the WebSocket and must not be refused within a second.
//! - In ```` ```sh ```` blocks, every `curl` command to `localhost:8000` runs too (`-H`, `-d`,
//!   `$ACCESS_TOKEN` as the latest `register`/`login` token): HTTP 200 and, for a JSON answer,
//!   no `errors`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bazaar_runtime::Secret;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::support::{Environment, TestApp, str, ws};

const ADMIN_EMAIL: &str = "admin@bazaar.local";
const ADMIN_PASSWORD: &str = "the-admin-password-1";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every docs/*.md, in name order.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, repo().join("README.md"));
    docs
}

/// `BAZAAR_*` names in a text; `BAZAAR_<SERVICE>_URL` stays a template.
fn variables(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("BAZAAR_") {
        let tail: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "_<>".contains(*c))
            .collect();
        let name = tail.trim_end_matches('_');
        if name != "BAZAAR" {
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn configuration_page_names_every_variable_of_the_default_config() {
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).expect(p);
    let config = variables(&read("config.default.toml"));
    let page = variables(&read("docs/configuration.md"));
    let missing: Vec<_> = config.difference(&page).collect();
    let unknown: Vec<_> = page.difference(&config).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md lacks {missing:?}; config.default.toml lacks {unknown:?}"
    );
}

/// One example taken from a document.
enum Example {
    GraphQl {
        line: usize,
        options: Vec<(String, String)>,
        query: String,
        variables: Option<String>,
    },
    Curl {
        line: usize,
        command: String,
    },
}

/// The fenced block opened at `lines[start]`: its body and the index after its closing fence.
fn fenced(lines: &[&str], start: usize) -> (String, usize) {
    let end = (start + 1..lines.len())
        .find(|&i| lines[i].trim_start().starts_with("```"))
        .unwrap_or_else(|| panic!("unclosed block at line {}", start + 1));
    (lines[start + 1..end].join("\n"), end + 1)
}

fn examples(text: &str) -> Vec<Example> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim();
        if fence == "```graphql" {
            let options = (i > 0)
                .then(|| lines[i - 1].trim())
                .and_then(|l| l.strip_prefix("<!-- example")?.strip_suffix("-->"))
                .map(|o| {
                    o.trim_start_matches(':')
                        .split_whitespace()
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let (query, next) = fenced(&lines, i);
            let (variables, next) = match lines.get(next).map(|l| l.trim()) {
                Some("```json") => {
                    let (json, after) = fenced(&lines, next);
                    (Some(json), after)
                }
                _ => (None, next),
            };
            found.push(Example::GraphQl {
                line: i + 1,
                options,
                query,
                variables,
            });
            i = next;
        } else if fence == "```sh" {
            let (body, next) = fenced(&lines, i);
            for command in body.replace("\\\n", " ").lines() {
                let command = command.trim();
                if command.starts_with("curl ") && command.contains("localhost:8000") {
                    found.push(Example::Curl {
                        line: i + 1,
                        command: command.to_owned(),
                    });
                }
            }
            i = next;
        } else {
            i += 1;
        }
    }
    found
}

/// The value at a dotted path (`edges.0.node.id`).
fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(value, |v, key| match key.parse::<usize>() {
            Ok(index) => v.get(index),
            Err(_) => v.get(key),
        })
}

/// Replaces every `"<path>"` string with the value at `path` in `state`.
fn fill(value: Value, state: &Value, line: usize) -> Value {
    match value {
        Value::String(s) if s.starts_with('<') && s.ends_with('>') => {
            let path = &s[1..s.len() - 1];
            at(state, path)
                .cloned()
                .unwrap_or_else(|| panic!("line {line}: nothing earlier gave {path}"))
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| fill(v, state, line)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, fill(v, state, line)))
                .collect(),
        ),
        other => other,
    }
}

/// What one document's examples have produced so far.
struct State {
    data: Value,
    user_token: Option<String>,
}

impl State {
    fn new() -> State {
        let admin = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
        State {
            data: json!({"admin": admin}),
            user_token: None,
        }
    }

    fn absorb(&mut self, data: &Value) {
        let Some(fields) = data.as_object() else {
            return;
        };
        for key in ["register", "login"] {
            if let Some(token) = at(data, &format!("{key}.accessToken")).and_then(Value::as_str) {
                self.user_token = Some(token.to_owned());
            }
        }
        let merged: &mut Map<String, Value> = self.data.as_object_mut().expect("object");
        merged.extend(fields.clone());
    }
}

async fn run_graphql(app: &TestApp, admin: &str, state: &mut State, example: &Example, doc: &str) {
    let Example::GraphQl {
        line,
        options,
        query,
        variables,
    } = example
    else {
        unreachable!()
    };
    let place = format!("{doc}:{line}");
    let option = |key: &str| {
        options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let token = match option("as") {
        Some("admin") => Some(admin.to_owned()),
        Some("user") => Some(
            state
                .user_token
                .clone()
                .unwrap_or_else(|| panic!("{place}: no user yet")),
        ),
        Some(other) => panic!("{place}: unknown as={other}"),
        None => None,
    };
    let variables = variables
        .as_deref()
        .map(|v| serde_json::from_str(v).unwrap_or_else(|e| panic!("{place}: variables: {e}")))
        .map(|v| fill(v, &state.data, *line))
        .unwrap_or(json!({}));
    if query.trim_start().starts_with("subscription") {
        let mut socket = ws::open(app).await.expect("websocket");
        ws::init(&mut socket, token.as_deref()).await;
        let payload = json!({"query": query, "variables": variables});
        ws::send(
            &mut socket,
            json!({"id": "1", "type": "subscribe", "payload": payload}),
        )
        .await;
        if let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(1), socket.next()).await
        {
            let text = message
                .into_text()
                .map(|t| t.to_string())
                .unwrap_or_default();
            assert!(
                !text.contains("\"error\"") && !text.contains("\"errors\""),
                "{place}: {text}"
            );
        }
        return;
    }
    let until = option("until").map(|u| {
        u.split_once(':')
            .unwrap_or_else(|| panic!("{place}: until=path:value"))
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = app.gql(token.as_deref(), query, variables.clone()).await;
        if let Some(code) = option("expect") {
            assert_eq!(
                body["errors"][0]["extensions"]["code"], code,
                "{place}: {body:#}"
            );
            return;
        }
        let settled = match until {
            None => true,
            Some((path, want)) => at(&body["data"], path).is_some_and(|v| match v {
                Value::String(s) => s == want,
                other => other.to_string() == want,
            }),
        };
        if body.get("errors").is_none() && settled {
            state.absorb(&body["data"]);
            return;
        }
        assert!(Instant::now() < deadline, "{place}: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Splits a shell command line into words: single and double quotes, `$ACCESS_TOKEN` in
/// double quotes and bare words.
fn words(command: &str, token: &str) -> Vec<String> {
    let (mut out, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (_, c) => word.push(c),
        }
    }
    out.extend((any || !word.is_empty()).then_some(word));
    out.into_iter()
        .map(|w| w.replace("$ACCESS_TOKEN", token))
        .collect()
}

async fn run_curl(app: &TestApp, state: &mut State, command: &str, place: &str) {
    let token = state.user_token.clone().unwrap_or_default();
    let words = words(command, &token);
    let (mut url, mut headers, mut data) = (None, Vec::new(), None);
    let mut rest = words.iter().skip(1);
    while let Some(word) = rest.next() {
        match word.as_str() {
            "-s" | "-sS" | "-i" => {}
            "-H" => headers.push(rest.next().expect("header").clone()),
            "-d" => data = Some(rest.next().expect("data").clone()),
            w if w.contains("localhost:8000") => {
                url = Some(w.replace("localhost:8000", app.base.trim_start_matches("http://")))
            }
            other => panic!("{place}: curl option {other} is not understood here"),
        }
    }
    let url = url.expect("url");
    let url = if url.starts_with("http") {
        url
    } else {
        format!("http://{url}")
    };
    let mut request = match &data {
        Some(body) => app.http.post(&url).body(body.clone()),
        None => app.http.get(&url),
    };
    for header in &headers {
        let (name, value) = header.split_once(':').expect("name: value");
        request = request.header(name.trim(), value.trim());
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), 200, "{place}");
    let text = response.text().await.unwrap_or_default();
    if let Ok(body) = serde_json::from_str::<Value>(&text) {
        assert!(body.get("errors").is_none(), "{place}: {body:#}");
        state.absorb(&body["data"]);
    }
}

async fn docs_examples_run(env: &Environment) {
    let mut settings = env.settings();
    settings.admin_email = Some(ADMIN_EMAIL.into());
    settings.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    let app = env.start_with(settings).await;
    let login =
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let data = app
        .ok(None, login, json!({"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}))
        .await;
    let admin = str(&data["login"]["accessToken"]);
    let mut ran = 0;
    for path in documents() {
        let doc = path
            .strip_prefix(repo())
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("document");
        let mut state = State::new();
        for example in examples(&text) {
            match &example {
                Example::GraphQl { .. } => {
                    run_graphql(&app, &admin, &mut state, &example, &doc).await
                }
                Example::Curl { line, command } => {
                    run_curl(&app, &mut state, command, &format!("{doc}:{line}")).await
                }
            }
            ran += 1;
        }
    }
    assert!(ran > 20, "only {ran} examples found");
    app.stop().await;
}

on_both_backends!(docs_examples_run);
