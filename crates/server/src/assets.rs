//! The web client, embedded into the binary at build time so Stoa works offline.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web"]
struct Web;

/// An HTML page, never cached so upgrades take effect at once.
pub fn page(name: &str) -> Response {
    serve(name, "no-cache")
}

/// The error page for a browser: `error.html` with `title` and `detail` filled in.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let Some(f) = Web::get("error.html") else {
        return (status, "not found").into_response();
    };
    let html = String::from_utf8_lossy(&f.data)
        .replace("{{title}}", &escape(title))
        .replace("{{detail}}", &escape(detail));
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A static asset under `/static/`.
pub fn file(path: &str) -> Response {
    serve(path, "public, max-age=300")
}

fn serve(path: &str, cache: &'static str) -> Response {
    match Web::get(path) {
        Some(f) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_string()),
                    (header::CACHE_CONTROL, cache.to_string()),
                ],
                f.data,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
