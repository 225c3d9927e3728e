//! Email through a plain SMTP server (RFC 5321), the city's own relay: no
//! TLS and no authentication, which a relay on the local network does not need.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one conversation with the server may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Where mail goes and who it is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `host:port` of the SMTP server.
    pub server: String,
    /// The sender address.
    pub from: String,
}

impl SmtpSettings {
    /// Reads `smtp://host:port` (port 25 when absent).
    pub fn parse(url: &str, from: &str) -> Result<SmtpSettings, String> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("'{url}' is not smtp://host:port"))?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(format!("'{url}' is not smtp://host:port"));
        }
        let server = if rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            rest.to_owned()
        } else {
            format!("{rest}:25")
        };
        Ok(SmtpSettings {
            server,
            from: from.to_owned(),
        })
    }
}

/// What went wrong sending a message.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The connection failed.
    #[error("smtp connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused a step.
    #[error("smtp server answered '{0}'")]
    Refused(String),
    /// The server took too long.
    #[error("smtp server timed out")]
    Timeout,
}

/// Sends one plain-text message.
pub async fn send(
    settings: &SmtpSettings,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), MailError> {
    tokio::time::timeout(TIMEOUT, conversation(settings, to, subject, body))
        .await
        .map_err(|_| MailError::Timeout)?
}

async fn conversation(
    settings: &SmtpSettings,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), MailError> {
    let stream = TcpStream::connect(&settings.server).await?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, 220).await?;
    let steps = [
        ("EHLO cityos\r\n".to_owned(), 250),
        (format!("MAIL FROM:<{}>\r\n", settings.from), 250),
        (format!("RCPT TO:<{to}>\r\n"), 250),
        ("DATA\r\n".to_owned(), 354),
    ];
    for (command, code) in steps {
        write.write_all(command.as_bytes()).await?;
        expect(&mut read, code).await?;
    }
    let date = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000");
    let mut message = format!(
        "From: <{}>\r\nTo: <{to}>\r\nSubject: {}\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        settings.from,
        subject.replace(['\r', '\n'], " ")
    );
    for line in body.lines() {
        // Dot-stuffing: a line starting with '.' would otherwise end the message.
        if line.starts_with('.') {
            message.push('.');
        }
        message.push_str(line);
        message.push_str("\r\n");
    }
    message.push_str(".\r\n");
    write.write_all(message.as_bytes()).await?;
    expect(&mut read, 250).await?;
    write.write_all(b"QUIT\r\n").await?;
    Ok(())
}

/// Reads a (possibly multi-line) reply and checks its code.
async fn expect<R: AsyncBufReadExt + Unpin>(read: &mut R, code: u16) -> Result<(), MailError> {
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Err(MailError::Refused("connection closed".into()));
        }
        // "250-…" continues, "250 …" ends.
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    if line.get(..3).and_then(|c| c.parse::<u16>().ok()) == Some(code) {
        Ok(())
    } else {
        Err(MailError::Refused(line.trim_end().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_name_a_server_and_default_to_port_25() {
        let s = SmtpSettings::parse("smtp://mail.example.org", "desk@x").unwrap();
        assert_eq!(s.server, "mail.example.org:25");
        assert_eq!(
            SmtpSettings::parse("smtp://127.0.0.1:2525", "d@x")
                .unwrap()
                .server,
            "127.0.0.1:2525"
        );
        assert!(SmtpSettings::parse("http://x", "d@x").is_err());
    }
}
