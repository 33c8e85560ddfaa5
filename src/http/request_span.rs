//! The root span of every API request:
//! `request{http.method, http.route, client.address, http.status_code}`, named by the route
//! template of the spec (`/api/stage/{stageArn}`), never the raw URI, so spans and logs of one
//! route group together whatever its parameters. `client.address` is the client's IP address
//! (src/runtime/client_addr.rs: behind a trusted proxy, the one it forwarded). Everything a request
//! logs (middleware, handler, command) is inside it.

use std::sync::Arc;

use poem::http::Method;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::registry::MetaApi;
use tracing::Instrument;
use tracing::field::Empty;

use super::api_error::framework_error_to_response;
use crate::runtime::client_addr::ClientAddr;

/// One operation of the spec: its method, path template and operation id.
#[derive(Clone, Debug)]
struct Template {
    method: Method,
    path: String,
    segments: Vec<Option<String>>,
    statics: usize,
}

/// The route templates of an API, to name requests by.
#[derive(Clone, Debug, Default)]
pub struct RouteTemplates(Vec<Template>);

impl RouteTemplates {
    /// The templates of every operation of `apis` (`OpenApi::meta()`).
    pub fn from_apis(apis: &[MetaApi]) -> Self {
        let mut templates = Vec::new();
        for path in apis.iter().flat_map(|api| &api.paths) {
            for operation in &path.operations {
                templates.push(Template::new(operation.method.clone(), &path.path));
            }
        }
        Self(templates)
    }

    /// The template `method` and `path` match: among several, the one with the most literal
    /// segments (`/api/action/sendGift` before `/api/action/{action_name}`). `None` when no
    /// operation matches.
    pub fn route_of(&self, method: &Method, path: &str) -> Option<&str> {
        let segments: Vec<&str> = split(path).collect();
        self.0
            .iter()
            .filter(|t| t.method == *method && t.matches(&segments))
            .max_by_key(|t| t.statics)
            .map(|t| t.path.as_str())
    }

    /// The methods of the route `path` reaches (the template with the most literal segments, as
    /// the router picks it), in spec order: the `Allow` of a 405 (RFC 9110 §15.5.6). Empty when
    /// no route has that path.
    pub fn methods_of(&self, path: &str) -> Vec<Method> {
        let segments: Vec<&str> = split(path).collect();
        let Some(best) = self
            .0
            .iter()
            .filter(|t| t.matches(&segments))
            .max_by_key(|t| t.statics)
        else {
            return Vec::new();
        };
        let mut methods: Vec<Method> = Vec::new();
        for t in self.0.iter().filter(|t| t.path == best.path) {
            if !methods.contains(&t.method) {
                methods.push(t.method.clone());
            }
        }
        methods
    }
}

/// The middleware that gives a 405 its `Allow` header, the methods of the request's path
/// (RFC 9110 §15.5.6 requires it).
pub async fn allow_on_405<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    templates: Arc<RouteTemplates>,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let mut response = ep.call(req).await?.into_response();
    if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(poem::http::header::ALLOW)
    {
        let allow = templates
            .methods_of(&path)
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(value) = poem::http::HeaderValue::from_str(&allow) {
            response
                .headers_mut()
                .insert(poem::http::header::ALLOW, value);
        }
    }
    Ok(response)
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl Template {
    fn new(method: Method, path: &str) -> Self {
        let segments: Vec<Option<String>> = split(path)
            .map(|s| {
                let param = (s.starts_with('{') && s.ends_with('}')) || s.starts_with(':');
                (!param).then(|| s.to_owned())
            })
            .collect();
        let statics = segments.iter().filter(|s| s.is_some()).count();
        Self {
            method,
            path: path.to_owned(),
            segments,
            statics,
        }
    }

    fn matches(&self, segments: &[&str]) -> bool {
        self.segments.len() == segments.len()
            && self
                .segments
                .iter()
                .zip(segments)
                .all(|(t, s)| t.as_deref().is_none_or(|t| t == *s))
    }
}

/// The middleware: runs the request inside its root span and records the answer's status.
pub async fn trace<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    templates: Arc<RouteTemplates>,
) -> poem::Result<Response> {
    let route = templates
        .route_of(req.method(), req.uri().path())
        .unwrap_or("unmatched")
        .to_owned();
    let client = ClientAddr::of(&req);
    let span = tracing::info_span!(
        "request",
        http.method = %req.method(),
        http.route = %route,
        client.address = %client.ip,
        http.status_code = Empty,
    );
    async move {
        let response = match ep.call(req).await {
            Ok(response) => response.into_response(),
            Err(e) => framework_error_to_response(e).await,
        };
        tracing::Span::current().record("http.status_code", response.status().as_u16());
        Ok(response)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use poem_openapi::OpenApi;

    use super::*;

    fn templates() -> RouteTemplates {
        type Apis = (
            crate::http::health::HealthApi,
            crate::http::stage::StageApi,
            crate::http::gateway::GatewayApi,
        );
        RouteTemplates::from_apis(&<Apis as OpenApi>::meta())
    }

    #[test]
    fn given_a_path_with_a_parameter_then_the_route_is_its_template() {
        let t = templates();
        assert_eq!(
            t.route_of(
                &Method::GET,
                "/api/stage/arn%3Aaws%3Aivs%3Aus-east-1%3A1%3Astage%2Fabc"
            ),
            Some("/api/stage/{stageArn}")
        );
        assert_eq!(
            t.route_of(&Method::GET, "/api/stage/list"),
            Some("/api/stage/list")
        );
    }

    #[test]
    fn given_a_named_action_then_its_own_route_wins_over_the_catch_all() {
        let t = templates();
        assert_eq!(
            t.route_of(&Method::POST, "/api/action/sendGift"),
            Some("/api/action/sendGift")
        );
        assert_eq!(
            t.route_of(&Method::POST, "/api/action/noSuchAction"),
            Some("/api/action/{action_name}")
        );
    }

    #[test]
    fn given_an_unknown_route_or_method_then_no_template_matches() {
        let t = templates();
        assert_eq!(t.route_of(&Method::GET, "/nowhere"), None);
        assert_eq!(t.route_of(&Method::DELETE, "/health"), None);
    }

    #[test]
    fn the_methods_of_a_path_are_those_of_the_route_the_router_picks() {
        let t = templates();
        assert_eq!(
            t.methods_of("/api/stage/arn%3Aaws%3Aivs%3Aus-east-1%3A1%3Astage%2Fabc"),
            [Method::GET, Method::PUT, Method::DELETE]
        );
        assert_eq!(t.methods_of("/api/stage/list"), [Method::GET]);
        assert_eq!(t.methods_of("/api/action/loginAction"), [Method::POST]);
        assert!(t.methods_of("/nowhere").is_empty());
    }
}
