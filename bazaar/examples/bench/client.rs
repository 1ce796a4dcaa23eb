//! The benchmark's GraphQL client, its operations and the load driver: workers calling a
//! closure until a deadline, their latencies and errors gathered into one sample.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

/// Orders the server accepted (placeOrder answered with an id).
pub static PLACED: AtomicU64 = AtomicU64::new(0);

pub const LIST: &str =
    "query { products(first: 20) { edges { node { id name priceCents stock } } } }";
pub const ONE: &str = "query($id: ID!) { product(id: $id) { id name priceCents stock } }";
pub const LIST200: &str = "query($after: String) { first: products(first: 100) { edges { node { id name priceCents stock description } } pageInfo { endCursor } } second: products(first: 100, after: $after) { edges { node { id name priceCents stock description } } } }";
pub const ONE_FULL: &str =
    "query($id: ID!) { product(id: $id) { id name priceCents stock description } }";
pub const LOGIN: &str = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }";
pub const CREATE: &str =
    "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }";
pub const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
pub const PLACE: &str =
    "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }";
pub const STATUS: &str = "query($id: ID!) { order(id: $id) { status statusReason } }";
pub const STREAMS: &str =
    "{ eventStreams { consumers { name delivered pending ackPending redelivered deadLettered } } }";
pub const COUNT: &str = "query($s: OrderStatus) { orders(first: 1, status: $s) { totalCount } }";

/// A GraphQL client on a shared connection pool.
#[derive(Clone)]
pub struct Gql {
    pub http: reqwest::Client,
    pub url: String,
}

impl Gql {
    /// Runs an operation; transport failures, non-200 answers and GraphQL errors are `Err`.
    pub async fn run(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("HTTP {status}: {e}"))?;
        match body.get("errors") {
            Some(errors) => Err(format!(
                "{}: {}",
                errors[0]["extensions"]["code"], errors[0]["message"]
            )),
            None => Ok(body["data"].clone()),
        }
    }
}

impl Gql {
    /// Runs an anonymous read and checks only what is cheap to check (HTTP 200, no `errors`
    /// key), so the load generator spends little of the shared CPU on parsing answers.
    pub async fn read(&self, query: &str, variables: &Value) -> Result<usize, String> {
        let response = self
            .http
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("body: {e}"))?;
        if status != 200 || body.windows(8).any(|w| w == b"\"errors\"") {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        Ok(body.len())
    }
}

/// Latencies of the successful calls of a phase, its failures and its wall-clock time.
#[derive(Default)]
pub struct Sample {
    pub latencies: Vec<Duration>,
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

/// The figures of a phase that targets are set on.
pub struct Figures {
    pub rate: f64,
    pub p99_ms: f64,
}

impl Sample {
    /// Prints the phase's line and returns its figures.
    pub fn report(&mut self, name: &str, unit: &str) -> Figures {
        self.latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let pct = |p: f64| match self.latencies.len() {
            0 => 0.0,
            n => ms(self.latencies[((n - 1) as f64 * p / 100.0).round() as usize]),
        };
        let n = self.latencies.len();
        let figures = Figures {
            rate: n as f64 / self.elapsed.as_secs_f64(),
            p99_ms: pct(99.0),
        };
        println!(
            "{name:<9} {unit}={n:<6} rate={:.1}/s  p50={:.1}ms  p90={:.1}ms  p99={:.1}ms  max={:.1}ms  errors={}",
            figures.rate,
            pct(50.0),
            pct(90.0),
            figures.p99_ms,
            pct(100.0),
            self.errors.len()
        );
        for e in self.errors.iter().take(3) {
            println!("          !! error: {e}");
        }
        figures
    }
}

/// Runs `f(i)` for i = 0, 1, ... on `concurrency` workers until `max` calls were started or the
/// deadline passed. `f` returns the latency to record.
pub async fn drive<F, Fut>(concurrency: usize, deadline: Option<Instant>, max: u64, f: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Duration, String>> + Send + 'static,
{
    let (f, next, start) = (Arc::new(f), Arc::new(AtomicU64::new(0)), Instant::now());
    let workers = (0..concurrency).map(|_| {
        let (f, next) = (f.clone(), next.clone());
        tokio::spawn(async move {
            let mut sample = Sample::default();
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= max || deadline.is_some_and(|d| Instant::now() >= d) {
                    return sample;
                }
                match f(i).await {
                    Ok(latency) => sample.latencies.push(latency),
                    Err(e) => sample.errors.push(e),
                }
            }
        })
    });
    let mut all = Sample::default();
    for worker in futures::future::join_all(workers).await {
        let worker = worker.expect("worker");
        all.latencies.extend(worker.latencies);
        all.errors.extend(worker.errors);
    }
    all.elapsed = start.elapsed();
    all
}

/// Places an order of 1–3 distinct random products (one line when there is one product);
/// returns its id.
pub async fn place(gql: &Gql, token: &str, products: &[String]) -> Result<String, String> {
    let items: Vec<Value> = {
        let mut rng = rand::rng();
        let lines = rng.random_range(1..=3.min(products.len()));
        rand::seq::index::sample(&mut rng, products.len(), lines)
            .into_iter()
            .map(|p| json!({"productId": products[p], "quantity": 1}))
            .collect()
    };
    let address =
        json!({"line1": "1 Market St", "city": "York", "postalCode": "YO1 7HH", "country": "GB"});
    let data = gql
        .run(
            Some(token),
            PLACE,
            json!({"input": {"items": items, "shippingAddress": address}}),
        )
        .await?;
    let id = data["placeOrder"]["id"]
        .as_str()
        .ok_or("placeOrder returned no id")?;
    PLACED.fetch_add(1, Relaxed);
    Ok(id.to_owned())
}

pub async fn count(gql: &Gql, admin: &str, status: &str) -> anyhow::Result<i64> {
    let data = gql.run(Some(admin), COUNT, json!({"s": status})).await;
    Ok(data.map_err(anyhow::Error::msg)?["orders"]["totalCount"]
        .as_i64()
        .unwrap_or(-1))
}
