//! Amazon SES (SESv2 `SendEmail` with simple content).

use super::mailer::{EmailMessage, MailError, Mailer};

/// Sends through SESv2. Throttling, server errors and network failures are worth another
/// try; a message SES rejects (bad address, unverified sender) is not.
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
}

impl SesMailer {
    /// A mailer sending through `client`.
    pub fn new(client: aws_sdk_sesv2::Client) -> Self {
        Self { client }
    }
}

#[async_trait::async_trait]
impl Mailer for SesMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), MailError> {
        use aws_sdk_sesv2::operation::send_email::SendEmailError;
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|err| MailError::Rejected(format!("cannot build the email: {err}")))
        };
        let body = Body::builder().text(content(&message.content.text)?).html(content(&message.content.html)?).build();
        let simple = Message::builder().subject(content(&message.content.subject)?).body(body).build();
        let result = self
            .client
            .send_email()
            .from_email_address(&message.from)
            .destination(Destination::builder().to_addresses(&message.to).build())
            .content(EmailContent::builder().simple(simple).build())
            .send()
            .await;
        let Err(err) = result else {
            crate::telemetry::count_outbound("ses", "ok");
            return Ok(());
        };
        let described = aws_sdk_sesv2::error::DisplayErrorContext(&err).to_string();
        let server_error = err.raw_response().is_some_and(|response| response.status().is_server_error());
        match err.into_service_error() {
            SendEmailError::MessageRejected(_)
            | SendEmailError::BadRequestException(_)
            | SendEmailError::MailFromDomainNotVerifiedException(_)
            | SendEmailError::NotFoundException(_)
                if !server_error =>
            {
                crate::telemetry::count_outbound("ses", "rejected");
                Err(MailError::Rejected(format!("SES rejected the email: {described}")))
            }
            _ => {
                crate::telemetry::count_outbound("ses", "unavailable");
                Err(MailError::Unavailable(format!("SES did not take the email: {described}")))
            }
        }
    }
}
