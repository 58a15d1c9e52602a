//! The dashboard: `admin-ui/` embedded in the binary, served at `/`.

use axum::{Router, http::header, response::IntoResponse, routing::get};

use super::ApiContext;

const INDEX_HTML: &str = include_str!("../../../admin-ui/index.html");
const APP_JS: &str = include_str!("../../../admin-ui/app.js");
const STYLE_CSS: &str = include_str!("../../../admin-ui/style.css");

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    INDEX_HTML,
                )
            }),
        )
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    STYLE_CSS,
                )
            }),
        )
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT.into_response() }),
        )
}
