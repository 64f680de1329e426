//! TLS for the tokio driver: which certificate authorities a [`NativeClient`](super::NativeClient)
//! trusts ([`TlsOptions`]), and the one connector both transports dial through
//! ([`Connector`]: `ws://`/`http://` as plain TCP, `wss://`/`https://` as rustls over TCP).
//!
//! The platform's roots come from `rustls-native-certs` (the system store, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`), not a compiled-in list: an operator's own CA installed on the machine is
//! trusted as curl trusts it, and the list is as current as the system's. A deployment with a
//! self-signed certificate adds its CA with [`TlsOptions::add_ca_pem`] or
//! [`TlsOptions::add_ca_file`].
//!
//! It must never decide anything about the protocol: it only opens byte streams.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Which certificate authorities the native client trusts for `https://` and `wss://`.
///
/// The default trusts the platform's roots. For a deployment with a self-signed certificate,
/// add its CA:
///
/// ```no_run
/// use chorus_sdk::native::TlsOptions;
/// let tls = TlsOptions::default().add_ca_file("ca.pem".as_ref()).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct TlsOptions {
    platform_roots: bool,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for TlsOptions {
    fn default() -> TlsOptions {
        TlsOptions {
            platform_roots: true,
            extra_roots: Vec::new(),
        }
    }
}

/// Why a CA could not be added to [`TlsOptions`].
#[derive(Debug)]
pub struct TlsOptionsError(String);

impl std::fmt::Display for TlsOptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsOptionsError {}

impl TlsOptions {
    /// Also trusts every certificate in this PEM text (one or more `CERTIFICATE` blocks).
    pub fn add_ca_pem(mut self, pem: &[u8]) -> Result<TlsOptions, TlsOptionsError> {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| TlsOptionsError(format!("the CA is not valid PEM: {err}")))?;
        if certificates.is_empty() {
            return Err(TlsOptionsError(
                "the CA has no PEM CERTIFICATE block".to_owned(),
            ));
        }
        self.extra_roots.extend(certificates);
        Ok(self)
    }

    /// Also trusts every certificate in this PEM file.
    pub fn add_ca_file(self, path: &Path) -> Result<TlsOptions, TlsOptionsError> {
        let pem = std::fs::read(path).map_err(|err| {
            TlsOptionsError(format!(
                "the CA file {} cannot be read: {err}",
                path.display()
            ))
        })?;
        self.add_ca_pem(&pem)
            .map_err(|err| TlsOptionsError(format!("{}: {err}", path.display())))
    }

    /// Trusts only the CAs added here, not the platform's.
    pub fn without_platform_roots(mut self) -> TlsOptions {
        self.platform_roots = false;
        self
    }

    /// The rustls connector for these roots (reads the platform's store once).
    fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        if self.platform_roots {
            // A store with some unreadable entries still has the readable ones; a machine
            // without any simply trusts only the added CAs (and says so at the handshake).
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        roots.add_parsable_certificates(self.extra_roots.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        // WebSocket upgrades and polling are HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsConnector::from(Arc::new(config))
    }
}

/// Dials `ws://`/`http://` as TCP and `wss://`/`https://` as TLS over TCP; the WebSocket
/// task and the HTTP client share it. Its rustls configuration is built once, and only
/// for a client of a TLS server (the plain path never reads the platform's store).
#[derive(Clone)]
pub(crate) struct Connector {
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Connector {
    /// A connector for a server at `base_url`: with TLS when it is `https://` or `wss://`.
    pub(crate) fn new(base_url: &str, options: &TlsOptions) -> Connector {
        let secure = base_url.starts_with("https://") || base_url.starts_with("wss://");
        Connector {
            tls: secure.then(|| options.connector()),
        }
    }

    /// Opens a stream to `uri`'s host and port (TLS for `https`/`wss`).
    pub(crate) async fn connect(&self, uri: &Uri) -> io::Result<NativeStream> {
        let secure = matches!(uri.scheme_str(), Some("https" | "wss"));
        let host = uri
            .host()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the URL has no host"))?;
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        // An IPv6 literal comes bracketed in the URL and bare in the socket address.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        if !secure {
            return Ok(NativeStream::Plain(tcp));
        }
        let Some(tls) = &self.tls else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a TLS URL on a client started for a plain server",
            ));
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|err| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("server name {host}: {err}"),
            )
        })?;
        let stream = tls.connect(name, tcp).await?;
        Ok(NativeStream::Tls(Box::new(stream)))
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<NativeStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<NativeStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.connect(&uri).await.map(TokioIo::new) })
    }
}

/// A connection to the server: plain TCP or TLS over it.
#[derive(Debug)]
pub(crate) enum NativeStream {
    /// `ws://`, `http://`.
    Plain(TcpStream),
    /// `wss://`, `https://`.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for NativeStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for NativeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NativeStream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            NativeStream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NativeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NativeStream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            NativeStream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NativeStream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            NativeStream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NativeStream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            NativeStream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An error and its causes in one sentence (hyper's and tungstenite's top-level messages
/// alone say "client error (Connect)"; the cause says which certificate was refused).
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
