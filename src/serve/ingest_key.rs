//! The embedded default's HS256 ingest key: generated once, kept in
//! `data_dir` (mode 0600), and announced once with a token and a request.

use crate::core::hex;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::Path;

pub const INGEST_KEY: &str = "ingest.key";

/// The embedded default's HS256 ingest key: generated once and kept in
/// `data_dir` (mode 0600). Returns the key and whether it is new.
pub fn generated_ingest_key(data: &Path) -> anyhow::Result<(Vec<u8>, bool)> {
    let path = data.join(INGEST_KEY);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok((text.trim().as_bytes().to_vec(), false));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness for the ingest key: {e}"))?;
    let key = hex::encode(&raw);
    write_private(&path, &key)?;
    Ok((key.into_bytes(), true))
}

/// Shown once, when the key is made: a token and a request ready to paste.
pub fn print_ingest_example(key: &[u8], audience: &str, path: &Path, addr: SocketAddr) {
    let token = crate::auth::hs256_token(
        key,
        audience,
        "example-node",
        (crate::clock::now() + 30 * 86_400) as u64,
    );
    println!(
        "Generated an ingest key in {} (nodes sign HS256 JWTs with it, aud \"{audience}\").\n\
         Shown only now: a token valid for 30 days, and an example request:\n\n  \
         export SHADOWDRAFT_TOKEN={token}\n  \
         curl -X POST http://{addr}/v1/observations -H \"Authorization: Bearer $SHADOWDRAFT_TOKEN\" \\\n    \
         -H 'Content-Type: application/json' \\\n    \
         -d '{{\"source\":\"node-1\",\"calls\":[{{\"agent\":\"support-bot\",\"tool\":\"search_docs\",\"args\":{{\"query\":\"refund policy\"}}}}]}}'\n",
        path.display(),
    );
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
