//! `isovec serve`: the store over HTTP/JSON ([`crate::server`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::server::{Limits, ServerConfig};

/// `isovec serve`: one process owns the store, every other process talks to it.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Store directory (created if missing).
    #[arg(long)]
    pub store: PathBuf,
    /// Address to listen on (port 0: a free port, printed once listening). Any address but
    /// loopback needs --token-file.
    #[arg(long, default_value = "127.0.0.1:8750")]
    pub addr: SocketAddr,
    /// A file holding the secret every request must send as `Authorization: Bearer <token>`.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = 64)]
    pub max_body_mib: usize,
    /// Most ids (writes, get, delete) or queries in one request.
    #[arg(long, default_value_t = 10_000)]
    pub max_batch: usize,
    /// Seconds a client may take to send a request's body.
    #[arg(long, default_value_t = 30)]
    pub body_timeout_s: u64,
    /// Seconds a request's work may take.
    #[arg(long, default_value_t = 120)]
    pub request_timeout_s: u64,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let token = match &args.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?
                .trim()
                .to_string();
            anyhow::ensure!(
                token.len() >= 16,
                "the token in {} has {} characters; use a secret of at least 16 (e.g. `openssl rand -hex 32`)",
                path.display(),
                token.len()
            );
            Some(token)
        }
        None => None,
    };
    anyhow::ensure!(args.max_batch >= 1 && args.max_body_mib >= 1, "--max-batch and --max-body-mib must be at least 1");
    let limits = Limits {
        max_body_bytes: args.max_body_mib << 20,
        body_timeout: Duration::from_secs(args.body_timeout_s.max(1)),
        request_timeout: Duration::from_secs(args.request_timeout_s.max(1)),
        max_batch: args.max_batch,
    };
    let config = ServerConfig { store: args.store, addr: args.addr, token, limits };
    crate::server::serve(config, |addr| {
        // The one line a script waits for (the port, when 0 was asked for).
        println!("isovec serve: listening on http://{addr}");
    })?;
    Ok(())
}
