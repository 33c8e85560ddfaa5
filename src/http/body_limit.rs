//! The request body limit (`ONAIR_MAX_BODY_BYTES`), as a poem middleware around every route.

use poem::Endpoint;

/// Refuses bodies above `max` bytes with 413 `PAYLOAD_TOO_LARGE`, whether or not they announce a
/// `Content-Length`.
pub async fn limit_body<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: poem::Request,
    max: usize,
) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    let too_large = || poem::Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(len) if len > max => return Err(too_large()),
        Some(_) => {}
        None => {
            let bytes = req
                .take_body()
                .into_bytes_limit(max)
                .await
                .map_err(|_| too_large())?;
            req.set_body(bytes);
        }
    }
    Ok(ep.call(req).await?.into_response())
}
