//! The hub's one outbound HTTP stack (hyper + rustls, HTTP/1 and HTTP/2, connections reused):
//! Google's OAuth and Calendar APIs, an identity provider's JWKS, the app backend's RPC proxy.
//! Every exchange has a deadline and a cap on the answer it reads.

use std::time::Duration;

pub use google_calendar3::common::Body;
use google_calendar3::hyper::{self, StatusCode, body::Bytes};
use google_calendar3::{hyper_rustls, hyper_util};
use http_body_util::{BodyExt, Full, Limited};

pub type Connector =
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;
pub type HttpClient = hyper_util::client::legacy::Client<Connector, Body>;

/// The client: HTTPS with the system's roots, plain HTTP allowed (local fakes, a backend on the
/// same host), HTTP/1 enabled by hand (the calendar crate only enables HTTP/2).
pub fn http_client() -> HttpClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(builder) => builder,
        Err(e) => {
            // Without system roots HTTPS fails clearly; plain HTTP (a fake) still works.
            log::warn!("no system TLS roots ({e}); outbound HTTPS calls will fail");
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap_or_else(|e| panic!("ring supports the default TLS versions: {e}"))
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let connector = builder.https_or_http().enable_http1().enable_http2().build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

/// A request body from bytes.
pub fn body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// Sends `request`; the status and at most `max_body` bytes of the answer, within `deadline`.
/// The error is a short reason for the log.
pub async fn send(
    client: &HttpClient,
    request: hyper::Request<Body>,
    deadline: Duration,
    max_body: usize,
) -> Result<(StatusCode, Bytes), String> {
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let limited = Limited::new(response.into_body(), max_body);
        let bytes = limited.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, bytes))
    };
    tokio::time::timeout(deadline, exchange).await.map_err(|_| "timed out".to_owned())?
}
