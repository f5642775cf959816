//! crashcatch's HTTP client, shared by debuginfod and the crash tracker: ureq with rustls,
//! https checked against the system's certificate store (as curl does, `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` included; Mozilla's roots built in when the machine has no store), and the
//! proxy a URL's scheme calls for ([`proxy`]).

pub mod proxy;

/// The certificates https servers are checked against: the system's store, or with no store on
/// the machine (a bare container) Mozilla's roots built in.
pub fn system_roots() -> ureq::tls::RootCerts {
    let found = rustls_native_certs::load_native_certs().certs;
    if found.is_empty() {
        return ureq::tls::RootCerts::WebPki;
    }
    let certs: Vec<_> = found.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
    ureq::tls::RootCerts::new_with_certs(&certs)
}

/// The TLS settings of a client that may speak https.
pub fn tls_config() -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder().root_certs(system_roots()).build()
}
