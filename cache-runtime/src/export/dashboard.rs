//! The dashboard server (feature `dashboard`): `/` (the page), `/metrics`, `/api/stats`,
//! `/healthz`, on axum.
//!
//! The page is one HTML file with its CSS, JavaScript and hand-drawn canvas charts embedded in
//! the binary: it works offline and loads nothing from the internet. It polls `/api/stats`
//! every second.
//!
//! `/healthz` answers `200` with `{"status":"ok",…}` when the cache can use every tier it has,
//! and `503` with `"status":"degraded"` while the Redis tier is down (last poll failed) or its
//! circuit breaker is open: the cache still answers then (from memory and upstream), so use it
//! for alerting and dashboards, not as a liveness probe that restarts the process.

use super::Exporter;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

const INDEX: &str = include_str!("dashboard.html");

/// The routes, for an application that already runs axum (nest or merge them).
pub fn router(exporter: Exporter) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/api/stats", get(stats))
        .route("/healthz", get(healthz))
        .with_state(exporter)
}

/// Serves the dashboard on `listener` until the task is dropped or the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, exporter: Exporter) -> std::io::Result<()> {
    axum::serve(listener, router(exporter)).await
}

async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX).into_response()
}

async fn metrics(axum::extract::State(e): axum::extract::State<Exporter>) -> Response {
    ([(header::CONTENT_TYPE, Exporter::CONTENT_TYPE)], e.render()).into_response()
}

async fn stats(axum::extract::State(e): axum::extract::State<Exporter>) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(e.stats_view())).into_response()
}

/// The `/healthz` body.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// The cache has a Redis tier.
    pub redis_configured: bool,
    /// The last Redis poll succeeded (`null` before the first poll or without Redis).
    pub redis_up: Option<bool>,
    /// The Redis tier's circuit breaker is open.
    pub breaker_open: bool,
}

impl Exporter {
    /// The health `/healthz` reports.
    pub fn health(&self) -> Health {
        let info = self.redis_info();
        let breaker_open = self.cache().remote_circuit_open();
        let redis_up = (info.configured && info.polled).then_some(info.up);
        let ok = !breaker_open && redis_up != Some(false);
        Health { status: if ok { "ok" } else { "degraded" }, redis_configured: info.configured, redis_up, breaker_open }
    }
}

async fn healthz(axum::extract::State(e): axum::extract::State<Exporter>) -> Response {
    let h = e.health();
    let code = if h.status == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, [(header::CACHE_CONTROL, "no-store")], Json(h)).into_response()
}
