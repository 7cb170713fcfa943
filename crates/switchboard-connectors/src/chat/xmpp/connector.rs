//! How the connection is made: TCP to the server, the stream header,
//! STARTTLS, then TLS checked against the section's trust, and the
//! stream header again — ready for the library's SASL login.
//!
//! Written here rather than taken from the XMPP library because the
//! library's STARTTLS connector trusts only the system's certificate
//! authorities, and a server with a private one (`ca_file`) must work.
//! A server that does not offer STARTTLS is refused: the password never
//! travels in the clear.
//!
//! Not here: logging in, binding and reconnecting (the library's stanza
//! stream does those, with backoff).

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_xmpp::connect::{DnsConfig, ServerConnector};
use tokio_xmpp::error::{Error, ProtocolError};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::rustls::pki_types::ServerName;
use tokio_xmpp::rustls::{ClientConfig, ProtocolVersion};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts,
    XmppStreamElement, initiate_stream,
};

/// Connects with STARTTLS, trusting `tls`'s certificate authorities.
#[derive(Clone)]
pub(super) struct StartTls {
    pub(super) dns: DnsConfig,
    pub(super) tls: Arc<ClientConfig>,
}

impl fmt::Debug for StartTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartTls").field("dns", &self.dns).finish()
    }
}

impl ServerConnector for StartTls {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        let domain = jid.domain().as_str();
        let header = || StreamHeader {
            to: Some(Cow::Borrowed(domain)),
            from: None,
            id: None,
        };
        let tcp = self.dns.resolve().await.inspect_err(|e| {
            tracing::warn!(server = %self.dns, error = %e, "XMPP: cannot connect");
        })?;
        let stream = initiate_stream(BufStream::new(tcp), ns, header(), timeouts).await?;
        let (features, mut stream) = stream.recv_features().await?;
        if !features.can_starttls() {
            tracing::warn!(server = %self.dns, "XMPP: the server does not offer STARTTLS; not logging in without TLS");
            return Err(Error::Protocol(ProtocolError::NoTls));
        }
        stream
            .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await?;
        loop {
            match stream
                .next()
                .await
                .map(|e| e.and_then(FallibleStreamElement::into_read_error))
            {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                Some(Ok(_) | Err(ReadError::SoftTimeout)) => {}
                Some(Err(ReadError::HardError(e))) => return Err(e.into()),
                Some(Err(ReadError::ParseError(e))) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e).into());
                }
                None | Some(Err(ReadError::StreamFooterReceived)) => {
                    return Err(Error::Disconnected);
                }
            }
        }
        let tcp = stream.into_inner().into_inner();
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .inspect_err(|e| {
                tracing::warn!(server = %self.dns, error = %e, "XMPP: TLS failed");
            })?;
        // Channel binding (RFC 9266) lets SCRAM-…-PLUS prove that the
        // login and the TLS session are one; only TLS 1.3 exports it.
        let binding = match tls.get_ref().1.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => tls
                .get_ref()
                .1
                .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
                .map_or(ChannelBinding::None, ChannelBinding::TlsExporter),
            _ => ChannelBinding::None,
        };
        let stream = initiate_stream(BufStream::new(tls), ns, header(), timeouts).await?;
        Ok((stream, binding))
    }
}
