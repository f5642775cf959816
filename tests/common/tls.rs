//! A test certificate authority and a server certificate for 127.0.0.1, made with openssl in a
//! folder: what the https tests (debuginfod, the crash tracker) serve with, so that crashcatch
//! must check the server against a CA it was given (SSL_CERT_FILE) and refuse it otherwise.

use std::path::Path;
use std::process::Command;

/// Writes `ca.pem` (the CA), `srv.pem` and `srv.key` (the server's) into `dir`; false, with a
/// skip line for `what`, when openssl cannot be run here.
pub fn make_certificates(dir: &Path, what: &str) -> bool {
    let openssl = |args: &[&str]| Command::new("openssl").args(args).current_dir(dir).output();
    let key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2";
    let ca = format!("req -x509 {key} -keyout ca.key -out ca.pem");
    let csr = format!("req {key} -keyout srv.key -out srv.csr");
    let sign = "x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf";
    let steps: [Vec<&str>; 3] = [
        ca.split(' ')
            .chain(["-subj", "/CN=crashcatch test CA", "-addext", "basicConstraints=critical,CA:TRUE"])
            .collect(),
        csr.split(' ').chain(["-subj", "/CN=127.0.0.1"]).collect(),
        sign.split(' ').collect(),
    ];
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    for args in &steps {
        match openssl(args) {
            Err(e) => {
                super::skip(what, &format!("openssl: {e}"));
                return false;
            }
            Ok(o) => assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr)),
        }
    }
    true
}
