//! `isovec serve`: one process owns the store and serves the collection API ([`crate::api`], the
//! Python package's, one to one) over HTTP/JSON, so that any number of processes can use it.
//!
//! Invariants enforced here:
//! - it listens on loopback unless told otherwise, and any other address needs a bearer token
//!   ([`auth`]); no request names a file (no model, transform or store path travels over HTTP);
//! - a request's work is bounded: its body (size and the time to receive it), its batch of ids or
//!   queries, and its run time ([`limits`]); `k` and `ef` as the API bounds them;
//! - every error is JSON with a status code and isovec's message, never a stack trace; a panic
//!   inside a request becomes a 500 and the server goes on;
//! - writes are acknowledged once durable (the store's rule); on SIGTERM or Ctrl-C the server
//!   stops accepting, finishes what it accepted, snapshots the indexes and releases the store.
//!
//! While it runs, `<store>/isovec-server` names its address, so that a process that finds the
//! store locked is told where the server is.

mod auth;
mod error_body;
mod limits;
mod routes;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::store::layout::SERVER_FILE;
use crate::store::Store;
use crate::{Error, Result};

pub use limits::Limits;

/// What `isovec serve` is told.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The store directory (created if missing).
    pub store: PathBuf,
    /// Where to listen; a port of 0 takes a free one.
    pub addr: SocketAddr,
    /// The bearer token every request must carry (required unless `addr` is loopback).
    pub token: Option<String>,
    /// Bounds on each request.
    pub limits: Limits,
}

/// Runs the server until SIGTERM or Ctrl-C; `ready` is called with the address it listens on.
pub fn serve(config: ServerConfig, ready: impl FnOnce(SocketAddr) + Send) -> Result<()> {
    if !config.addr.ip().is_loopback() && config.token.is_none() {
        return Err(Error::InvalidInput(format!(
            "{} is not a loopback address: anyone who reaches it could read and change the store; \
             give --token-file FILE (a secret every client sends as a bearer token), or listen on 127.0.0.1",
            config.addr
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Background(format!("starting the server's runtime: {e}")))?;
    runtime.block_on(run(config, ready))
}

async fn run(config: ServerConfig, ready: impl FnOnce(SocketAddr) + Send) -> Result<()> {
    let store = Arc::new(Store::open(&config.store)?);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::InvalidInput(format!("cannot listen on {}: {e}; give another --addr", config.addr)))?;
    let addr = listener.local_addr().map_err(|e| Error::io(&config.store, e))?;
    let server_file = store.path().join(SERVER_FILE);
    crate::atomic_file::write_bytes(&server_file, format!("{} http://{addr}\n", std::process::id()).as_bytes())?;
    let state = state::AppState::new(store.clone(), config.limits.clone());
    let app = routes::router(state.clone(), config.token.clone(), config.limits.clone());
    // Listening for SIGTERM before saying so: a signal sent once the address is known is handled.
    let stop = shutdown_signal()?;
    ready(addr);
    tracing::info!("isovec serve: listening on http://{addr}");
    let served = axum::serve(listener, app).with_graceful_shutdown(stop).await;
    // Accepted requests are finished; nothing new comes in. Release the store.
    let _ = std::fs::remove_file(&server_file);
    state.close();
    let snapshot = store.snapshot();
    drop(state);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close()?;
    }
    served.map_err(|e| Error::Background(format!("serving HTTP: {e}")))?;
    snapshot
}

/// A future that resolves on SIGTERM or Ctrl-C (SIGINT); the handlers are installed at once.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let failed = |e: std::io::Error| Error::Background(format!("installing the signal handlers: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(failed)?;
    let mut int = signal(SignalKind::interrupt()).map_err(failed)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("isovec serve: stopping (finishing accepted requests)");
    })
}
