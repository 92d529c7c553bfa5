//! The runner's download of `images_data_url`, by fal's download rules (fal-protocol.md §7.1,
//! §6 "Dataset download"; `ssrf.py`): http and https only; the host resolved and refused if any
//! address it resolves to is not globally routable; the connection pinned to the checked
//! address; redirects followed by hand up to 5 hops, each hop checked again; a non-2xx answer or
//! a body shorter than its `Content-Length` fails. Proxies from the environment are ignored.
//!
//! Test-only allowance: the fake's own origin, where its storage serves uploads on loopback, and
//! the origins a test adds with `FakeFal::allow_dataset_origin`, are fetched without the
//! address check, as `ssrf.py` does with `allow_internal_hosts`. Nothing else on loopback is.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::header::LOCATION;
use reqwest::Url;

use crate::public_address::is_globally_routable;
use crate::state::Shared;

/// `ssrf.py` `DEFAULT_MAX_REDIRECT_HOPS`.
const MAX_REDIRECT_HOPS: usize = 5;
/// `ssrf.py`'s socket timeout, per blocking operation.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) enum DatasetError {
    /// fal's download rules refuse the URL, or a redirect's (`SSRFError`); the message is
    /// `ssrf.py`'s.
    Refused(String),
    /// The download ran and failed: an HTTP error, a body cut short, not a zip.
    Unavailable(String),
}

/// Downloads the training zip as a runner would and returns its size. Only the zip signature is
/// checked; the contents do not matter to the fake.
pub(crate) async fn fetch(shared: &Shared, url: &str) -> Result<u64, DatasetError> {
    let mut current =
        Url::parse(url).map_err(|error| DatasetError::Refused(format!("Invalid URL: {error}")))?;
    for _ in 0..=MAX_REDIRECT_HOPS {
        let response = get_one_hop(shared, &current).await?;
        if !is_redirect(response.status()) {
            return read_zip(response, &current).await;
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|location| location.to_str().ok())
            .ok_or_else(|| {
                DatasetError::Refused("Redirect response missing Location header".into())
            })?;
        current = current
            .join(location)
            .map_err(|error| DatasetError::Refused(format!("Invalid URL: {error}")))?;
    }
    Err(DatasetError::Refused("Too many redirects".into()))
}

fn is_redirect(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// One GET, without following a redirect, after checking where it goes.
async fn get_one_hop(shared: &Shared, url: &Url) -> Result<reqwest::Response, DatasetError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DatasetError::Refused(format!(
            "URL scheme '{}' is not allowed",
            url.scheme()
        )));
    }
    let origin = url.origin().ascii_serialization();
    let admitted = shared.state().dataset_origins.contains(&origin);
    let client = if admitted {
        shared.dataset_http.clone()
    } else {
        pinned_client(url, public_address(url).await?)?
    };
    client.get(url.clone()).send().await.map_err(|error| {
        DatasetError::Unavailable(format!(
            "Could not download the training data from {url}: {error}"
        ))
    })
}

/// The first address `url`'s host resolves to, when every one of them is globally routable.
async fn public_address(url: &Url) -> Result<SocketAddr, DatasetError> {
    let host = url
        .host_str()
        .ok_or_else(|| DatasetError::Refused("URL has no hostname".into()))?;
    // An IPv6 literal comes in brackets; the resolver takes it bare.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| DatasetError::Refused("DNS resolution failed".into()))?
        .collect();
    if addresses
        .iter()
        .any(|address| !is_globally_routable(address.ip()))
    {
        return Err(DatasetError::Refused(
            "Hostname resolves to a non-routable address".into(),
        ));
    }
    addresses
        .first()
        .copied()
        .ok_or_else(|| DatasetError::Refused("Hostname did not resolve".into()))
}

/// A client that connects to `address` whatever the name resolves to by then, so a DNS answer
/// cannot change between the check and the fetch; TLS still verifies the name.
fn pinned_client(url: &Url, address: SocketAddr) -> Result<reqwest::Client, DatasetError> {
    let host = url.host_str().unwrap_or_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(SOCKET_TIMEOUT)
        .read_timeout(SOCKET_TIMEOUT)
        .resolve(host, address)
        .build()
        .map_err(|error| DatasetError::Unavailable(format!("No HTTP client: {error}")))
}

async fn read_zip(mut response: reqwest::Response, url: &Url) -> Result<u64, DatasetError> {
    let status = response.status();
    if !status.is_success() {
        return Err(DatasetError::Unavailable(format!(
            "Could not download the training data from {url}: the server answered HTTP {}",
            status.as_u16()
        )));
    }
    let announced = response.content_length();
    let mut start: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|error| {
        DatasetError::Unavailable(format!(
            "The download of the training data from {url} broke off: {error}"
        ))
    })? {
        if start.len() < 2 {
            start.extend(chunk.iter().take(2 - start.len()));
        }
        bytes += chunk.len() as u64;
    }
    if announced.is_some_and(|announced| bytes < announced) {
        return Err(DatasetError::Unavailable(format!(
            "The download of the training data from {url} broke off after {bytes} bytes"
        )));
    }
    if start != b"PK" {
        return Err(DatasetError::Unavailable(format!(
            "The training data at {url} is not a zip archive"
        )));
    }
    Ok(bytes)
}
