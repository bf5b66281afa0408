//! The mailer port: an email ready to go, something that delivers it, and why it did not.

use crate::notify::templates::Rendered;

/// An email ready to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailMessage {
    /// Stable id of this email (the same on every retry): names its file, its Message-ID.
    pub key: String,
    /// Sender.
    pub from: String,
    /// Recipient's address.
    pub to: String,
    /// Recipient's display name.
    pub to_name: Option<String>,
    /// Rendered content.
    pub content: Rendered,
}

/// Why an email was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The service could not take it now (throttled, down, a full disk): try again later.
    #[error("{0}")]
    Unavailable(String),
    /// It will never go (a rejected address, an unverified sender): do not try again.
    #[error("{0}")]
    Rejected(String),
}

impl MailError {
    /// The outcome label of metrics: `unavailable` or `rejected`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Rejected(_) => "rejected",
        }
    }
}

/// Something that delivers emails.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email.
    async fn send(&self, message: &EmailMessage) -> Result<(), MailError>;
}
