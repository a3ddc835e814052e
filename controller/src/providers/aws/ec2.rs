//! The one EC2 call the AWS provider makes: `DescribeSubnets` filtered by the tag key
//! `kubernetes.io/cluster/<cluster>`, as one SigV4-signed request of EC2's Query API. aws-sdk-ec2
//! would cost ~27 minutes of compile CPU for this single call; the signer, the credentials chain
//! and the XML reader here are crates the ELBv2 SDK already builds, over hyper.
//!
//! ```text
//!   POST / (form: Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=tag-key&Filter.1.Value.1=...)
//!     ─▶ 200 <DescribeSubnetsResponse><subnetSet><item><subnetId/><availabilityZone/>...<nextToken/>
//!     ─▶ 4xx/5xx <Response><Errors><Error><Code/><Message/></Error></Errors>  (code → ProviderError)
//! ```

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_xml::decode::{Document, ScopedDecoder, try_data};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::providers::ProviderError;

const OPERATION: &str = "DescribeSubnets";
/// EC2's Query API version (the one every SDK sends).
const API_VERSION: &str = "2016-11-15";
/// A request that takes longer is a transient failure (retried).
const TIMEOUT: Duration = Duration::from_secs(30);

/// One subnet, as the load balancer needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
}

/// One page of the answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SubnetPage {
    pub subnets: Vec<Subnet>,
    pub next_token: Option<String>,
}

pub struct Ec2 {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `https://ec2.<region>.amazonaws.com/`, or `--aws-endpoint-url`.
    endpoint: String,
    region: String,
    credentials: SharedCredentialsProvider,
    /// Credentials are fetched once and again shortly before they expire (the chain may ask the
    /// instance metadata service, which must not see one request per call).
    cached: Mutex<Option<Credentials>>,
}

/// The EC2 endpoint of a region, unless the flag overrides it.
pub fn endpoint(region: &str, endpoint_url: Option<&str>) -> String {
    match endpoint_url {
        Some(url) => format!("{}/", url.trim_end_matches('/')),
        None if region.starts_with("cn-") => format!("https://ec2.{region}.amazonaws.com.cn/"),
        None => format!("https://ec2.{region}.amazonaws.com/"),
    }
}

/// The form body of one page's request.
pub fn describe_subnets_body(tag_key: &str, next_token: Option<&str>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", OPERATION)
        .append_pair("Version", API_VERSION)
        .append_pair("Filter.1.Name", "tag-key")
        .append_pair("Filter.1.Value.1", tag_key);
    if let Some(token) = next_token {
        form.append_pair("NextToken", token);
    }
    form.finish()
}

fn text(element: &mut ScopedDecoder) -> Option<String> {
    try_data(element).ok().map(|data| data.trim().to_string())
}

fn malformed(what: impl std::fmt::Display) -> ProviderError {
    ProviderError::Cloud {
        operation: OPERATION,
        code: "MalformedResponse".into(),
        message: what.to_string(),
    }
}

/// Reads a `DescribeSubnetsResponse`: each subnet's ID and zone, and the next page's token.
pub fn parse_describe_subnets(xml: &str) -> Result<SubnetPage, ProviderError> {
    let mut document = Document::new(xml);
    let mut root = document.root_element().map_err(malformed)?;
    if !root.start_el().matches("DescribeSubnetsResponse") {
        return Err(malformed(format!(
            "expected DescribeSubnetsResponse, got {}",
            root.start_el().local()
        )));
    }
    let mut page = SubnetPage::default();
    while let Some(mut child) = root.next_tag() {
        if child.start_el().matches("nextToken") {
            page.next_token = text(&mut child).filter(|t| !t.is_empty());
        } else if child.start_el().matches("subnetSet") {
            while let Some(mut item) = child.next_tag() {
                let (mut id, mut zone) = (None, None);
                // Nested sets (tagSet, ipv6CidrBlockAssociationSet) are skipped whole when
                // their decoder drops.
                while let Some(mut field) = item.next_tag() {
                    if field.start_el().matches("subnetId") {
                        id = text(&mut field);
                    } else if field.start_el().matches("availabilityZone") {
                        zone = text(&mut field);
                    }
                }
                if let (Some(id), Some(zone)) = (id, zone) {
                    page.subnets.push(Subnet { id, zone });
                }
            }
        }
    }
    Ok(page)
}

/// EC2's error answer: `<Response><Errors><Error><Code>` and `<Message>`.
pub fn parse_error(xml: &str) -> Option<(String, String)> {
    let mut document = Document::new(xml);
    let mut root = document.root_element().ok()?;
    while let Some(mut errors) = root.next_tag() {
        if !errors.start_el().matches("Errors") {
            continue;
        }
        while let Some(mut error) = errors.next_tag() {
            let (mut code, mut message) = (None, String::new());
            while let Some(mut field) = error.next_tag() {
                if field.start_el().matches("Code") {
                    code = text(&mut field);
                } else if field.start_el().matches("Message") {
                    message = text(&mut field).unwrap_or_default();
                }
            }
            if let Some(code) = code {
                return Some((code, message));
            }
        }
    }
    None
}

/// A Query API request signed with SigV4 (service `ec2`): `POST /` with the form body.
pub fn signed_request(
    endpoint: &str,
    region: &str,
    credentials: Credentials,
    time: SystemTime,
    body: String,
) -> Result<http::Request<Full<Bytes>>, ProviderError> {
    let cannot_sign = |e: &dyn std::fmt::Display| malformed(format!("cannot sign: {e}"));
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("ec2")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| cannot_sign(&e))?
        .into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let signable = SignableRequest::new(
        "POST",
        endpoint,
        [("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| cannot_sign(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| cannot_sign(&e))?
        .into_parts();
    let mut request = http::Request::post(endpoint)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| malformed(format!("bad endpoint {endpoint:?}: {e}")))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

impl Ec2 {
    pub fn new(
        region: String,
        endpoint_url: Option<&str>,
        credentials: SharedCredentialsProvider,
    ) -> Self {
        // rustls on ring with the webpki roots, as the ELBv2 client: one TLS stack, no
        // dependence on the image's CA bundle.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .expect("ring offers the default protocol versions")
            .https_or_http()
            .enable_http1()
            .build();
        Ec2 {
            http: Client::builder(TokioExecutor::new()).build(https),
            endpoint: endpoint(&region, endpoint_url),
            region,
            credentials,
            cached: Mutex::new(None),
        }
    }

    async fn credentials(&self) -> Result<Credentials, ProviderError> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + Duration::from_secs(300))
        };
        if let Some(cached) = crate::reconcile::lock(&self.cached).clone()
            && fresh(&cached)
        {
            return Ok(cached);
        }
        let credentials =
            self.credentials
                .provide_credentials()
                .await
                .map_err(|e| ProviderError::Cloud {
                    operation: OPERATION,
                    code: "NoCredentials".into(),
                    message: aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&e)
                        .to_string(),
                })?;
        *crate::reconcile::lock(&self.cached) = Some(credentials.clone());
        Ok(credentials)
    }

    /// One signed request for one page.
    pub async fn describe_subnets_page(
        &self,
        tag_key: &str,
        next_token: Option<&str>,
    ) -> Result<SubnetPage, ProviderError> {
        let body = describe_subnets_body(tag_key, next_token);
        let credentials = self.credentials().await?;
        let request = signed_request(
            &self.endpoint,
            &self.region,
            credentials,
            SystemTime::now(),
            body,
        )?;
        let transient = |code: &str, message: String| ProviderError::Cloud {
            operation: OPERATION,
            code: code.into(),
            message,
        };
        let response = tokio::time::timeout(TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| transient("Timeout", format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| transient("DispatchFailure", e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transient("DispatchFailure", e.to_string()))?
            .to_bytes();
        let xml = String::from_utf8_lossy(&bytes);
        if status.is_success() {
            return parse_describe_subnets(&xml);
        }
        let (code, message) = parse_error(&xml)
            .unwrap_or_else(|| (status.as_u16().to_string(), xml.chars().take(200).collect()));
        Err(ProviderError::Cloud {
            operation: OPERATION,
            code,
            message,
        })
    }
}

#[cfg(test)]
#[path = "ec2_tests.rs"]
mod tests;
