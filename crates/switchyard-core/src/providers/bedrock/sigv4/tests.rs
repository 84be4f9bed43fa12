//! The signer against AWS's published values: the worked examples of the SigV4 documentation
//! (IAM `ListUsers`, the derived signing key, S3's `GetObject`) and cases of AWS's SigV4 test
//! suite (`get-vanilla`, `get-vanilla-query-order-key-case`, `post-vanilla`,
//! `post-header-value-case`, `post-sts-header-before`, `get-utf8`, and a signed body).

use super::*;

const AKID: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z, the test suite's time.
const SUITE_TIME: u64 = 1_440_938_160;
const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SUITE: Scope<'static> = Scope {
    region: "us-east-1",
    service: "service",
};
const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

fn creds(akid: &str, secret: &str, token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: akid.to_owned(),
        secret_access_key: Secret::new(secret.to_owned()),
        session_token: token.map(|t| Secret::new(t.to_owned())),
    }
}

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// Signs a test-suite request (host `example.amazonaws.com`) and returns the Authorization.
fn suite(
    method: &str,
    path_and_query: &str,
    extra: &[(&str, &str)],
    token: Option<&str>,
) -> String {
    let uri: http::Uri = format!("https://example.amazonaws.com{path_and_query}")
        .parse()
        .unwrap();
    let mut headers = header_map(extra);
    sign(
        method,
        &uri,
        &mut headers,
        EMPTY_HASH,
        &creds(AKID, SUITE_SECRET, token),
        SUITE,
        SUITE_TIME,
    )
    .unwrap();
    assert_eq!(headers["x-amz-date"], "20150830T123600Z");
    assert_eq!(headers["host"], "example.amazonaws.com");
    assert!(headers[AUTHORIZATION].is_sensitive());
    headers[AUTHORIZATION].to_str().unwrap().to_owned()
}

fn suite_authz(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders={signed_headers}, Signature={signature}"
    )
}

#[test]
fn test_suite_get_vanilla() {
    assert_eq!(
        suite("GET", "/", &[], None),
        suite_authz(
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
    );
}

#[test]
fn test_suite_query_parameters_are_sorted() {
    assert_eq!(
        suite("GET", "/?Param2=value2&Param1=value1", &[], None),
        suite_authz(
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        )
    );
}

#[test]
fn test_suite_post_vanilla_and_header_value_case() {
    assert_eq!(
        suite("POST", "/", &[], None),
        suite_authz(
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        )
    );
    assert_eq!(
        suite("POST", "/", &[("My-Header1", "VALUE1")], None),
        suite_authz(
            "host;my-header1;x-amz-date",
            "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"
        )
    );
}

#[test]
fn test_suite_session_token_is_sent_and_signed() {
    let uri: http::Uri = "https://example.amazonaws.com/".parse().unwrap();
    let mut headers = HeaderMap::new();
    sign(
        "POST",
        &uri,
        &mut headers,
        EMPTY_HASH,
        &creds(AKID, SUITE_SECRET, Some(STS_TOKEN)),
        SUITE,
        SUITE_TIME,
    )
    .unwrap();
    assert_eq!(headers["x-amz-security-token"], STS_TOKEN);
    assert!(headers["x-amz-security-token"].is_sensitive());
    assert_eq!(
        headers[AUTHORIZATION],
        suite_authz(
            "host;x-amz-date;x-amz-security-token",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        )
        .as_str()
    );
}

#[test]
fn test_suite_signed_body_with_content_hash() {
    // POST "hello" with content-length and x-amz-content-sha256 signed.
    let hash = hex_sha256(b"hello");
    assert_eq!(
        hash,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    let uri: http::Uri = "https://example.amazonaws.com/".parse().unwrap();
    let mut headers = header_map(&[("content-length", "5"), ("x-amz-content-sha256", &hash)]);
    sign(
        "POST",
        &uri,
        &mut headers,
        &hash,
        &creds(AKID, SUITE_SECRET, None),
        SUITE,
        SUITE_TIME,
    )
    .unwrap();
    assert_eq!(
        headers[AUTHORIZATION],
        suite_authz(
            "content-length;host;x-amz-content-sha256;x-amz-date",
            "8e17c5b22b7bb28da47f44b08691c087a0993d0965bfab053376360790d44d6c"
        )
        .as_str()
    );
}

/// Signature of an already built canonical request (for paths `http::Uri` cannot hold).
fn signature_of(canonical: &[u8], amz_date: &str, secret: &str, scope: Scope<'_>) -> String {
    let key = signing_key(&Secret::new(secret.to_owned()), &amz_date[..8], scope);
    hex(&hmac(
        &key,
        string_to_sign(amz_date, scope, canonical).as_bytes(),
    ))
}

#[test]
fn test_suite_get_utf8_path() {
    let headers = header_map(&[
        ("host", "example.amazonaws.com"),
        ("x-amz-date", "20150830T123600Z"),
    ]);
    let (canonical, signed) = canonical_request("GET", "/ሴ", "", &headers, EMPTY_HASH);
    assert!(canonical.starts_with(b"GET\n/%E1%88%B4\n\n"));
    assert_eq!(signed, "host;x-amz-date");
    assert_eq!(
        signature_of(&canonical, "20150830T123600Z", SUITE_SECRET, SUITE),
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
    );
}

#[test]
fn documentation_signing_key_examples() {
    let secret = Secret::new(SUITE_SECRET.to_owned());
    let iam = |region| Scope {
        region,
        service: "iam",
    };
    assert_eq!(
        hex(&signing_key(&secret, "20120215", iam("us-east-1"))),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
    assert_eq!(
        hex(&signing_key(&secret, "20150830", iam("us-east-1"))),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
}

#[test]
fn documentation_iam_list_users_example() {
    // GET https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08
    let uri: http::Uri = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"
        .parse()
        .unwrap();
    let mut headers = header_map(&[(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )]);
    headers.insert(
        X_AMZ_DATE.clone(),
        HeaderValue::from_static("20150830T123600Z"),
    );
    headers.insert(HOST, HeaderValue::from_static("iam.amazonaws.com"));
    let (canonical, signed) = canonical_request(
        "GET",
        uri.path(),
        uri.query().unwrap(),
        &headers,
        EMPTY_HASH,
    );
    assert_eq!(
        String::from_utf8(canonical.clone()).unwrap(),
        "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
         content-type:application/x-www-form-urlencoded; charset=utf-8\n\
         host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
         content-type;host;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex_sha256(&canonical),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    assert_eq!(signed, "content-type;host;x-amz-date");
    let iam = Scope {
        region: "us-east-1",
        service: "iam",
    };
    let mut signed_headers = headers.clone();
    sign(
        "GET",
        &uri,
        &mut signed_headers,
        EMPTY_HASH,
        &creds(AKID, SUITE_SECRET, None),
        iam,
        SUITE_TIME,
    )
    .unwrap();
    assert_eq!(
        signed_headers[AUTHORIZATION],
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, \
         Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );
}

#[test]
fn documentation_iam_post_example() {
    // POST http://iam.amazonaws.com/ with Action=ListUsers&Version=2010-05-08 as the body.
    let body = b"Action=ListUsers&Version=2010-05-08";
    let uri: http::Uri = "http://iam.amazonaws.com/".parse().unwrap();
    let mut headers = header_map(&[(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )]);
    sign(
        "POST",
        &uri,
        &mut headers,
        &hex_sha256(body),
        &creds(AKID, SUITE_SECRET, None),
        Scope {
            region: "us-east-1",
            service: "iam",
        },
        1_315_611_360, // 2011-09-09T23:36:00Z
    )
    .unwrap();
    assert_eq!(
        headers[AUTHORIZATION],
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/iam/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, \
         Signature=ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c"
    );
}

#[test]
fn documentation_s3_get_object_example() {
    let uri: http::Uri = "https://examplebucket.s3.amazonaws.com/test.txt"
        .parse()
        .unwrap();
    let mut headers = header_map(&[("range", "bytes=0-9"), ("x-amz-content-sha256", EMPTY_HASH)]);
    let (canonical, _) = {
        let mut h = headers.clone();
        h.insert(
            HOST,
            HeaderValue::from_static("examplebucket.s3.amazonaws.com"),
        );
        h.insert(
            X_AMZ_DATE.clone(),
            HeaderValue::from_static("20130524T000000Z"),
        );
        canonical_request("GET", "/test.txt", "", &h, EMPTY_HASH)
    };
    assert_eq!(
        hex_sha256(&canonical),
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    );
    sign(
        "GET",
        &uri,
        &mut headers,
        EMPTY_HASH,
        &creds(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
        ),
        Scope {
            region: "us-east-1",
            service: "s3",
        },
        1_369_353_600, // 2013-05-24T00:00:00Z
    )
    .unwrap();
    assert_eq!(
        headers[AUTHORIZATION],
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

#[test]
fn bedrock_model_ids_are_encoded_once_on_the_wire_and_twice_in_the_canonical_uri() {
    let id = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    let wire = format!("/model/{}/converse-stream", uri_encode(id.as_bytes()));
    assert_eq!(
        wire,
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
    );
    assert_eq!(
        canonical_uri(&wire),
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse-stream"
    );
    // An inference profile ARN keeps its structure only in encoded form.
    assert_eq!(
        uri_encode(b"arn:aws:bedrock:us-east-1:123:inference-profile/us.x"),
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.x"
    );
}

#[test]
fn header_values_are_trimmed_and_multiple_values_joined() {
    let mut h = HeaderMap::new();
    h.insert(HOST, HeaderValue::from_static("h"));
    h.append("x-a", HeaderValue::from_static("  one   two  "));
    h.append("x-a", HeaderValue::from_static("three"));
    let (canonical, signed) = canonical_request("GET", "/", "", &h, EMPTY_HASH);
    let text = String::from_utf8(canonical).unwrap();
    assert!(text.contains("\nx-a:one two,three\n"), "{text}");
    assert_eq!(signed, "host;x-a");
}

#[test]
fn dates_and_hosts() {
    assert_eq!(amz_date(0), "19700101T000000Z");
    assert_eq!(amz_date(SUITE_TIME), "20150830T123600Z");
    assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    let host = |u: &str| host_header(&u.parse().unwrap());
    assert_eq!(
        host("http://127.0.0.1:4001/x").as_deref(),
        Some("127.0.0.1:4001")
    );
    assert_eq!(host("https://a.example:443/").as_deref(), Some("a.example"));
    assert_eq!(host("http://a.example/").as_deref(), Some("a.example"));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let c = creds(AKID, SUITE_SECRET, Some(STS_TOKEN));
    let shown = format!("{c:?}");
    assert!(shown.contains(AKID), "{shown}");
    assert!(!shown.contains("EXAMPLEKEY"), "{shown}");
    assert!(!shown.contains("AQoDYXdz"), "{shown}");
    let uri: http::Uri = "https://example.amazonaws.com/".parse().unwrap();
    let mut headers = HeaderMap::new();
    sign(
        "POST",
        &uri,
        &mut headers,
        EMPTY_HASH,
        &c,
        SUITE,
        SUITE_TIME,
    )
    .unwrap();
    let shown = format!("{headers:?}");
    assert!(!shown.contains("Signature="), "{shown}");
    assert!(!shown.contains("AQoDYXdz"), "{shown}");
}
