//! Security headers on every HTML answer (today Swagger UI at `/docs`; any page served later gets
//! them too, since the middleware keys on the answer's `Content-Type: text/html`, not on a path).
//!
//! - `Content-Security-Policy`: [`HTML_CONTENT_SECURITY_POLICY`]. poem-openapi's Swagger UI page
//!   inlines its script bundle, its stylesheet and the spec into the HTML, and its CSS draws icons
//!   from `data:` URIs; "Try it out" calls the API on the same origin. So scripts and styles are
//!   allowed from the page itself (`'unsafe-inline'`, as the inlined bundle needs) and same-origin,
//!   nothing from another origin, no plugins, no framing, no `<base>` rewriting.
//! - `X-Content-Type-Options: nosniff`: browsers take the declared type, never a sniffed one.
//! - `Referrer-Policy: no-referrer`: links from the page send no `Referer`.
//!
//! A header a handler set itself is left as it is.

use poem::http::HeaderValue;
use poem::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use poem::{Endpoint, IntoResponse, Request, Response};

/// The `Content-Security-Policy` of HTML answers (see the module docs for why each source).
pub const HTML_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// Whether a `Content-Type` value is HTML (`text/html`, any parameters, any case).
pub fn is_html(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/html"))
}

/// Adds the security headers to `resp` when it is HTML.
pub fn add_to(resp: &mut Response) {
    let html = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_html);
    if !html {
        return;
    }
    let headers = resp.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, HTML_CONTENT_SECURITY_POLICY),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
}

/// Middleware: calls `ep` and adds the security headers to an HTML answer.
pub async fn secure_html<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
) -> poem::Result<Response> {
    let mut resp = ep.call(req).await?.into_response();
    add_to(&mut resp);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_html_answers_get_the_headers_and_a_handlers_own_value_stays() {
        assert!(is_html("text/html; charset=utf-8"));
        assert!(is_html("Text/HTML"));
        assert!(!is_html("application/json"));
        assert!(!is_html("text/html-sandboxed"));

        let mut json = Response::builder()
            .content_type("application/json")
            .body("{}");
        add_to(&mut json);
        assert!(json.headers().get(CONTENT_SECURITY_POLICY).is_none());

        let mut page = Response::builder()
            .content_type("text/html")
            .header(REFERRER_POLICY, "same-origin")
            .body("<p>");
        add_to(&mut page);
        assert_eq!(page.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(page.headers()[REFERRER_POLICY], "same-origin");
        assert_eq!(
            page.headers()[CONTENT_SECURITY_POLICY],
            HTML_CONTENT_SECURITY_POLICY
        );
    }
}
