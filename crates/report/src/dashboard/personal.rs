//! A volunteer's own results: they enter their API key in a form, the browser POSTs it (a key in
//! a URL would end up in browser history and proxy logs), and the page shows the report of that
//! key's results. The key is looked up by its digest, like every API request, and never logged;
//! a revoked key shows nothing, as it authenticates nothing on the gRPC API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use punchr_store::ApiKeySecret;
use serde::Deserialize;

use super::{bounded_report, report_error, DashboardState};
use crate::render::html;
use crate::render::svg::escape;
use crate::ReportFilter;
use punchr_types::log_target::DASHBOARD;

/// The form body. Its `Debug` output hides the key.
#[derive(Deserialize)]
pub(super) struct KeyForm {
    key: String,
}

impl std::fmt::Debug for KeyForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyForm { key: *** }")
    }
}

const FORM: &str = "<form method=\"post\" action=\"/me\" id=\"key-form\">\
    <label for=\"key\">Your API key</label> \
    <input type=\"password\" name=\"key\" id=\"key\" autocomplete=\"off\" size=\"40\" required> \
    <button type=\"submit\">Show my results</button></form>\
    <p class=\"note\">The key is sent in the request body, not in the address, and is not logged.</p>\
    <p><a href=\"/\">← campaign dashboard</a></p>";

pub(super) async fn form() -> Response {
    no_store(
        Html(html::page(
            "Punchr: my results",
            &format!("<h1>My hole punch results</h1>{FORM}"),
        ))
        .into_response(),
    )
}

pub(super) async fn results(
    State(state): State<Arc<DashboardState>>,
    Form(form): Form<KeyForm>,
) -> Response {
    let secret = ApiKeySecret::new(form.key.trim());
    let key = match state.store.authenticate(&secret).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            let body =
                format!("<h1>My hole punch results</h1><p id=\"error\">Unknown or revoked API key.</p>{FORM}");
            return no_store(
                (
                    StatusCode::UNAUTHORIZED,
                    Html(html::page("Punchr: unknown key", &body)),
                )
                    .into_response(),
            );
        }
        Err(error) => {
            tracing::error!(target: DASHBOARD, event = "key_lookup_failed", %error, "personal page: key lookup failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
        }
    };
    let filter = ReportFilter {
        api_key_id: Some(key.id),
        ..ReportFilter::default()
    };
    match bounded_report(&state, &filter).await {
        Ok(report) => {
            let title = format!("Hole punch results of {}", key.name);
            let mut page = html::render(&report, &title);
            let back = format!("<p class=\"note\">API key “{}” (id {}). <a href=\"/me\">another key</a> · <a href=\"/\">campaign dashboard</a></p>", escape(&key.name), key.id);
            if let Some(at) = page.find("</h1>") {
                page.insert_str(at + "</h1>".len(), &back);
            }
            no_store(Html(page).into_response())
        }
        Err(error) => report_error(error),
    }
}

/// Personal pages must not be cached by browsers or proxies.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
