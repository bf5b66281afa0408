//! Clients for the services tasklane talks to (SQS, SES, DynamoDB, Discord), created on first
//! use from one AWS configuration: the API process never needs most of them, and loading AWS
//! configuration costs a credentials lookup.

use tokio::sync::OnceCell;

/// Shared outbound clients; cheap to clone through the `Arc` in [`crate::AppContext`].
#[derive(Default)]
pub struct Outbound {
    aws: OnceCell<aws_config::SdkConfig>,
    ses: OnceCell<aws_sdk_sesv2::Client>,
    dynamodb: OnceCell<aws_sdk_dynamodb::Client>,
    sqs: OnceCell<aws_sdk_sqs::Client>,
    http: std::sync::OnceLock<reqwest::Client>,
    endpoint: Option<String>,
}

/// How long an outbound HTTP call (Discord) may take in all.
const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long one AWS call may take in all, retries included: longer than SQS's 20 s long poll,
/// and well inside the claim an email is sent under (`TASKLANE_EMAIL_CLAIM_SECS`).
pub const AWS_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

impl Outbound {
    /// Clients whose AWS calls all go to `endpoint` instead of what the environment says (an
    /// emulator, or a proxy).
    pub fn with_aws_endpoint(endpoint: impl Into<String>) -> Self {
        Self { endpoint: Some(endpoint.into()), ..Self::default() }
    }

    async fn aws(&self) -> &aws_config::SdkConfig {
        self.aws
            .get_or_init(|| {
                let timeouts =
                    aws_config::timeout::TimeoutConfig::builder().operation_timeout(AWS_OPERATION_TIMEOUT).build();
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts);
                if let Some(endpoint) = &self.endpoint {
                    loader = loader.endpoint_url(endpoint);
                }
                loader.load()
            })
            .await
    }

    /// The SESv2 client (region, credentials and `AWS_ENDPOINT_URL` from the environment).
    pub async fn ses(&self) -> &aws_sdk_sesv2::Client {
        let config = self.aws().await;
        self.ses.get_or_init(|| async { aws_sdk_sesv2::Client::new(config) }).await
    }

    /// The DynamoDB client.
    pub async fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        let config = self.aws().await;
        self.dynamodb.get_or_init(|| async { aws_sdk_dynamodb::Client::new(config) }).await
    }

    /// The SQS client.
    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        let config = self.aws().await;
        self.sqs.get_or_init(|| async { aws_sdk_sqs::Client::new(config) }).await
    }

    /// A plain HTTP client with a timeout, for webhooks.
    pub fn http(&self) -> anyhow::Result<reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build()?;
        Ok(self.http.get_or_init(|| client).clone())
    }
}
