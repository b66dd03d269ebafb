//! AWS Signature Version 4 over the AWS SDK's own signer (`aws-sigv4`): the request's
//! method, URL, headers and body in, the headers to add (`authorization`, `x-amz-date`,
//! `x-amz-security-token`) out.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use super::credentials::Credentials;

/// What is signed: `headers` are the ones the request will carry (names lower case
/// or not; `host` is taken from the URL when absent).
pub struct Unsigned<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers that make `request` signed for `service` in `region` at `time`.
pub fn signature_headers(
    request: &Unsigned<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "oxquery",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    //! Cases of AWS's published SigV4 test suite (aws-sig-v4-test-suite): the same
    //! requests, key and time, and the signatures the suite gives for them.
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// 2015-08-30T12:36:00Z, the suite's `X-Amz-Date`.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: None,
            expires: None,
        }
    }

    fn authorization(request: &Unsigned<'_>, credentials: &Credentials) -> Vec<(String, String)> {
        signature_headers(request, credentials, "us-east-1", "service", suite_time()).unwrap()
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn get_vanilla() {
        let signed = authorization(
            &Unsigned {
                method: "GET",
                url: "https://example.amazonaws.com/",
                headers: &[("host", "example.amazonaws.com")],
                body: b"",
            },
            &suite_credentials(),
        );
        assert_eq!(header(&signed, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&signed, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    #[test]
    fn post_vanilla() {
        let signed = authorization(
            &Unsigned {
                method: "POST",
                url: "https://example.amazonaws.com/",
                headers: &[("host", "example.amazonaws.com")],
                body: b"",
            },
            &suite_credentials(),
        );
        assert_eq!(
            header(&signed, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )
        );
    }

    #[test]
    fn get_vanilla_query() {
        // Query parameters are part of the canonical request (get-vanilla-query-order-key-case).
        let signed = authorization(
            &Unsigned {
                method: "GET",
                url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
                headers: &[("host", "example.amazonaws.com")],
                body: b"",
            },
            &suite_credentials(),
        );
        assert_eq!(
            header(&signed, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            )
        );
    }

    #[test]
    fn temporary_credentials_carry_their_token() {
        let mut credentials = suite_credentials();
        credentials.session_token = Some("TOKEN".to_owned());
        let signed = authorization(
            &Unsigned {
                method: "POST",
                url: "https://example.amazonaws.com/",
                headers: &[("host", "example.amazonaws.com")],
                body: b"{}",
            },
            &credentials,
        );
        assert_eq!(header(&signed, "x-amz-security-token"), Some("TOKEN"));
        let auth = header(&signed, "authorization").unwrap();
        assert!(
            auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
    }
}
