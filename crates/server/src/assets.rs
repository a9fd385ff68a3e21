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
