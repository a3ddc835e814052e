use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;

use super::*;

/// The shape EC2 answers (trimmed from the API reference's example), with a nested tagSet whose
/// `item`s must not be read as subnets.
const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
  <subnetSet>
    <item>
      <subnetId>subnet-9d4a7b6c</subnetId>
      <state>available</state>
      <vpcId>vpc-1a2b3c4d</vpcId>
      <cidrBlock>10.0.1.0/24</cidrBlock>
      <availabilityZone>us-east-1c</availabilityZone>
      <tagSet>
        <item><key>kubernetes.io/cluster/lab</key><value>owned</value></item>
      </tagSet>
    </item>
    <item>
      <subnetId>subnet-6e7f829e</subnetId>
      <availabilityZone>us-east-1a</availabilityZone>
      <ipv6CidrBlockAssociationSet/>
    </item>
  </subnetSet>
  <nextToken>page-2</nextToken>
</DescribeSubnetsResponse>"#;

#[test]
fn a_page_of_subnets_is_read_with_ids_zones_and_the_next_token() {
    let page = parse_describe_subnets(PAGE).unwrap();
    assert_eq!(
        page.subnets,
        [
            Subnet {
                id: "subnet-9d4a7b6c".into(),
                zone: "us-east-1c".into()
            },
            Subnet {
                id: "subnet-6e7f829e".into(),
                zone: "us-east-1a".into()
            },
        ]
    );
    assert_eq!(page.next_token.as_deref(), Some("page-2"));
}

#[test]
fn an_empty_answer_is_no_subnets_and_no_next_page() {
    let xml = r#"<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><subnetSet/></DescribeSubnetsResponse>"#;
    assert_eq!(parse_describe_subnets(xml).unwrap(), SubnetPage::default());
}

#[test]
fn another_document_is_a_malformed_response_not_an_empty_one() {
    let error = parse_describe_subnets("<Other/>").unwrap_err();
    assert!(error.to_string().contains("MalformedResponse"), "{error}");
}

#[test]
fn ec2_errors_give_their_code_and_message() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>ab12</RequestID></Response>"#;
    assert_eq!(
        parse_error(xml),
        Some((
            "RequestLimitExceeded".to_string(),
            "Request limit exceeded.".to_string()
        ))
    );
    assert_eq!(parse_error("not xml"), None);
}

#[test]
fn the_request_filters_by_the_tag_key_and_carries_the_next_token() {
    assert_eq!(
        describe_subnets_body("kubernetes.io/cluster/lab", None),
        "Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=tag-key\
         &Filter.1.Value.1=kubernetes.io%2Fcluster%2Flab"
    );
    assert!(describe_subnets_body("k", Some("a b")).ends_with("&NextToken=a+b"));
}

#[test]
fn the_endpoint_is_the_regional_one_unless_overridden() {
    assert_eq!(
        endpoint("eu-west-1", None),
        "https://ec2.eu-west-1.amazonaws.com/"
    );
    assert_eq!(
        endpoint("cn-north-1", None),
        "https://ec2.cn-north-1.amazonaws.com.cn/"
    );
    assert_eq!(
        endpoint("us-east-1", Some("http://127.0.0.1:5000/")),
        "http://127.0.0.1:5000/"
    );
}

#[test]
fn the_request_is_signed_for_ec2_in_the_region_over_the_body() {
    let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "test");
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14T22:13:20Z
    let body = describe_subnets_body("kubernetes.io/cluster/lab", None);
    let request = signed_request(
        "https://ec2.us-east-1.amazonaws.com/",
        "us-east-1",
        credentials,
        time,
        body,
    )
    .unwrap();
    assert_eq!(request.method(), http::Method::POST);
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let authorization = header("authorization");
    assert!(
        authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/ec2/aws4_request, "
        ),
        "{authorization}"
    );
    assert!(
        authorization.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
        "{authorization}"
    );
    assert_eq!(header("x-amz-date"), "20231114T221320Z");
    assert_eq!(header("x-amz-security-token"), "token");
    assert_eq!(
        header("content-type"),
        "application/x-www-form-urlencoded; charset=utf-8"
    );
}
