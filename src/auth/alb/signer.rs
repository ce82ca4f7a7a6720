//! The ALB ARNs allowed to sign, and where each one's public keys live.
//!
//! The key endpoint comes from the configured ARN's partition and region, never from the
//! token: a token only selects among the signers configured here.

use std::fmt;

/// A parsed `arn:{partition}:elasticloadbalancing:{region}:{account}:loadbalancer/app/..` ARN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignerArn {
    raw: String,
    partition: String,
    region: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not an application load balancer ARN (arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID)"
)]
pub struct InvalidArn(pub String);

impl SignerArn {
    pub fn parse(raw: &str) -> Result<Self, InvalidArn> {
        let err = || InvalidArn(raw.to_owned());
        let parts: Vec<&str> = raw.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(err());
        };
        let ok = arn == "arn"
            && partition.starts_with("aws")
            && service == "elasticloadbalancing"
            && !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.starts_with("loadbalancer/app/")
            && resource.split('/').count() == 4;
        if !ok {
            return Err(err());
        }
        Ok(SignerArn {
            raw: raw.to_owned(),
            partition: partition.to_owned(),
            region: region.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The AWS-published key endpoint for this ARN's region, if AWS documents one.
    /// Commercial regions and the two GovCloud regions; China needs `ALB_KEY_ENDPOINT`.
    pub fn default_key_endpoint(&self) -> Option<String> {
        match (self.partition.as_str(), self.region.as_str()) {
            ("aws", region) => Some(format!(
                "https://public-keys.auth.elb.{region}.amazonaws.com"
            )),
            ("aws-us-gov", region @ ("us-gov-west-1" | "us-gov-east-1")) => Some(format!(
                "https://s3-{region}.amazonaws.com/aws-elb-public-keys-prod-{region}"
            )),
            _ => None,
        }
    }
}

impl fmt::Display for SignerArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/players/50dc6c495c0c9188";

    #[test]
    fn endpoint_follows_partition_and_region() {
        let arn = SignerArn::parse(ARN).unwrap();
        assert_eq!(
            arn.default_key_endpoint().unwrap(),
            "https://public-keys.auth.elb.eu-west-1.amazonaws.com"
        );
        let gov = SignerArn::parse(
            &ARN.replace("aws:", "aws-us-gov:")
                .replace("eu-west-1", "us-gov-east-1"),
        )
        .unwrap();
        assert_eq!(
            gov.default_key_endpoint().unwrap(),
            "https://s3-us-gov-east-1.amazonaws.com/aws-elb-public-keys-prod-us-gov-east-1"
        );
        let cn = SignerArn::parse(
            &ARN.replace("aws:", "aws-cn:")
                .replace("eu-west-1", "cn-north-1"),
        )
        .unwrap();
        assert_eq!(cn.default_key_endpoint(), None);
    }

    #[test]
    fn rejects_other_arns() {
        assert!(
            SignerArn::parse(
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/x/1"
            )
            .is_err()
        );
        assert!(SignerArn::parse("arn:aws:s3:::bucket").is_err());
        assert!(SignerArn::parse("").is_err());
    }
}
