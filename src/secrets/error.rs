//! One-line start-up errors an operator can act on. They name the secret, the setting it came
//! from and the AWS error code; they never contain a secret value.

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager (or the way to it) refused.
    #[error(
        "cannot read secret {secret_id} (from {setting}): {code} after {attempts} attempt(s){detail}; {hint}"
    )]
    Aws {
        secret_id: String,
        setting: &'static str,
        /// The AWS error code (`AccessDeniedException`, `ResourceNotFoundException`, ...) or the
        /// SDK's failure kind (`DispatchFailure`, `TimeoutError`, ...).
        code: String,
        attempts: u32,
        /// `: <AWS message>` (sanitised to one line), or empty.
        detail: String,
        hint: &'static str,
    },
    /// The retries did not succeed before the start-up deadline.
    #[error(
        "cannot read secret {secret_id} (from {setting}): deadline of {deadline_secs}s passed after {attempts} attempt(s), last error {last_code}; check the network route to Secrets Manager (NAT gateway or VPC endpoint) or raise STARTUP_DEADLINE_SECS"
    )]
    Deadline {
        secret_id: String,
        setting: &'static str,
        deadline_secs: u64,
        attempts: u32,
        last_code: String,
    },
    /// The secret was read but its content is unusable. `problem` never quotes the content.
    #[error("secret {secret_id} (from {setting}) is malformed: {problem}; expected {expected}")]
    Malformed {
        secret_id: String,
        setting: &'static str,
        problem: String,
        expected: &'static str,
    },
}

impl SecretError {
    /// The AWS error code for `Aws`, `"Deadline"` or `"Malformed"` otherwise.
    pub fn code(&self) -> &str {
        match self {
            SecretError::Aws { code, .. } => code,
            SecretError::Deadline { .. } => "Deadline",
            SecretError::Malformed { .. } => "Malformed",
        }
    }
}

/// What to check for each AWS error code.
pub(crate) fn hint_for(code: &str) -> &'static str {
    match code {
        "AccessDeniedException" => {
            "check that the task role allows secretsmanager:GetSecretValue on this secret's ARN (and kms:Decrypt on its KMS key)"
        }
        "ResourceNotFoundException" => {
            "check the ARN or name, and that AWS_REGION is the secret's region"
        }
        "DecryptionFailure" => {
            "check that the task role may use kms:Decrypt on the secret's KMS key"
        }
        "InvalidRequestException" => "the secret may be disabled or scheduled for deletion",
        "InvalidParameterException" => "check the ARN or name syntax",
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId" => "check the task's AWS credentials (task role)",
        "DispatchFailure" | "TimeoutError" | "ResponseError" => {
            "check the network route to Secrets Manager (NAT gateway or VPC endpoint), AWS_ENDPOINT_URL if set, and the credentials (task role)"
        }
        "ConstructionFailure" => "check AWS_REGION and the AWS credential chain",
        c if is_throttling(c) => "Secrets Manager kept throttling; retries exhausted",
        _ => "check the secret, its region and the task role's permissions",
    }
}

pub(crate) fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "ProvisionedThroughputExceededException"
            | "SlowDown"
    )
}

/// One line, printable, bounded: AWS messages end up in a single log line.
pub(crate) fn one_line(msg: &str) -> String {
    let cleaned: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    cleaned.trim().to_owned()
}
