//! Shutdown signals: SIGTERM or ctrl-c; the first shuts down gracefully, the second stops at once.

use futures_util::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` at the first item of `signals` and `stop_now` at the
/// second.
pub(super) async fn watch(
    signals: impl Stream<Item = ()>,
    shutdown: CancellationToken,
    stop_now: CancellationToken,
) {
    let mut signals = std::pin::pin!(signals);
    if signals.next().await.is_none() {
        return;
    }
    tracing::info!("shutdown signal: finishing in-flight messages (a second signal stops at once)");
    shutdown.cancel();
    if signals.next().await.is_none() {
        return;
    }
    tracing::warn!(
        "second shutdown signal: stopping at once (in-flight messages abandoned: SQS delivers them again)"
    );
    stop_now.cancel();
}

/// SIGTERM or ctrl-c, each time one comes (ctrl-c only where there is no
/// SIGTERM). Once listened for, neither ends the process by itself any more:
/// [`watch`] does.
pub(super) fn os_signals() -> impl Stream<Item = ()> + Send + 'static {
    #[cfg(unix)]
    let term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM: ctrl-c only");
            None
        }
    };
    #[cfg(not(unix))]
    let term: Option<std::convert::Infallible> = None;
    futures_util::stream::unfold(term, |mut term| async move {
        next_signal(&mut term).await;
        Some(((), term))
    })
}

#[cfg(unix)]
async fn next_signal(term: &mut Option<tokio::signal::unix::Signal>) {
    let sigterm = async {
        let received = match term {
            Some(t) => t.recv().await.is_some(),
            None => false,
        };
        if !received {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = sigterm => {}
        () = ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn next_signal(_: &mut Option<std::convert::Infallible>) {
    ctrl_c().await;
}

/// The next ctrl-c; never, if it cannot be listened for.
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for ctrl-c");
        std::future::pending::<()>().await;
    }
}
