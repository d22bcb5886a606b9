//! Outgoing mail over SMTP (`[mail]`): password reset links, for now. Sent from a task of its own,
//! never while a request waits, so the answer to "reset my password" takes as long whether or not
//! the address has an account.

use std::time::Duration;

use ferrocast_core::config::{MailConfig, MailTls};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The mailer `[mail]` describes; `Ok(None)` when no host is set; an error naming the setting
    /// when one is wrong (checked at start-up, not at the first mail).
    pub fn from_config(config: &MailConfig) -> Result<Option<Mailer>, String> {
        let Some(host) = config.host.as_deref() else { return Ok(None) };
        let from: Mailbox = config.from.parse().map_err(|e| format!("mail.from {:?} is not an address: {e}", config.from))?;
        let builder = match config.tls {
            MailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            MailTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)),
        }
        .map_err(|e| format!("mail.host {host:?}: {e}"))?;
        let mut builder = builder.port(config.port).timeout(Some(Duration::from_secs(config.timeout_secs)));
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.expose().to_string()));
        }
        Ok(Some(Mailer { transport: builder.build(), from }))
    }

    /// Sends a plain-text mail to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| e.to_string())
    }
}
