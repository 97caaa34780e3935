//! The shutdown signal: SIGTERM (orchestrators) or SIGINT (a terminal).

/// Resolves on the first SIGTERM or SIGINT. If a handler cannot be installed, that signal is
/// simply not awaited (the other still works) and the failure is logged.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind: SignalKind, name: &'static str| async move {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
                tracing::info!(signal = name, "shutting down");
            }
            Err(e) => {
                tracing::error!(signal = name, error = %e, "cannot listen for signal");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = wait(SignalKind::terminate(), "SIGTERM") => {}
        () = wait(SignalKind::interrupt(), "SIGINT") => {}
    }
}
