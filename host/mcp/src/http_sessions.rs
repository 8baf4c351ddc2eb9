//! The MCP sessions of the HTTP endpoint, bounded: at most `[serve] max_sessions` at once. A new session past
//! the bound closes the least recently used idle one (no request in flight, no stream open); when every session
//! is busy, the new one is refused and the client gets `503` with a JSON-RPC error. Closing a session, whether
//! the client's `DELETE`, rmcp ending an inactive one, or an eviction, also drops the session instances and
//! settings kept for it.

use super::lock;
use super::server::McpServer;
use futures_core::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use std::cell::Cell;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

/// rmcp's session manager (`M`), with a bound on how many sessions it keeps.
pub struct BoundedSessions<M = LocalSessionManager> {
    inner: M,
    server: Weak<McpServer>,
    max: usize,
    table: Arc<Mutex<Table>>,
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError<E> {
    /// Every session is busy and there are already `max` of them.
    #[error(
        "too many MCP sessions: all {max} ([serve] max_sessions) have a request or a stream open; retry when \
         one ends, or raise [serve] max_sessions"
    )]
    Full {
        /// The bound.
        max: usize,
    },
    /// rmcp's session manager failed.
    #[error(transparent)]
    Inner(E),
}

#[derive(Default)]
struct Table {
    sessions: HashMap<SessionId, Activity>,
    /// Sessions being created: they count against the bound before they are in `sessions`.
    creating: usize,
}

struct Activity {
    last_used: Instant,
    /// Requests in flight and streams open; the session may be evicted only at zero.
    open: usize,
}

impl Table {
    /// The idle session used longest ago.
    fn least_recently_used_idle(&self) -> Option<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, a)| a.open == 0)
            .min_by_key(|(_, a)| a.last_used)
            .map(|(id, _)| id.clone())
    }
}

/// Marks a session busy while it lives: a request in flight or a stream open.
struct Busy {
    table: Arc<Mutex<Table>>,
    id: SessionId,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(activity) = lock(&self.table).sessions.get_mut(&self.id) {
            activity.open = activity.open.saturating_sub(1);
            activity.last_used = Instant::now();
        }
    }
}

/// A stream of a session, which keeps the session busy until it ends or the client goes.
struct Tracked<S> {
    stream: Pin<Box<S>>,
    _busy: Busy,
}

impl<S: Stream> Stream for Tracked<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

/// Takes back a creation slot if creating a session fails or is cancelled.
struct Creating<'a>(&'a Mutex<Table>);

impl Creating<'_> {
    fn done(self, id: SessionId) {
        let mut table = lock(self.0);
        table.creating -= 1;
        // Busy until its `initialize` is answered, so that a concurrent new session cannot evict it halfway.
        table.sessions.insert(
            id,
            Activity {
                last_used: Instant::now(),
                open: 1,
            },
        );
        drop(table);
        std::mem::forget(self);
    }
}

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        lock(self.0).creating -= 1;
    }
}

tokio::task_local! {
    /// Set, to the bound, when this request's new session was refused for want of room (see
    /// [`refused_for_room`]).
    static REFUSED: Cell<Option<usize>>;
}

/// Run `request` (one HTTP request through rmcp's service) and say whether it asked for a session and was
/// refused because every session is busy (and the bound then): rmcp answers that with a bare 500, which the
/// caller turns into a 503.
pub async fn refused_for_room<F: Future>(request: F) -> (F::Output, Option<usize>) {
    REFUSED
        .scope(Cell::new(None), async {
            let response = request.await;
            (response, REFUSED.with(Cell::get))
        })
        .await
}

impl<M: SessionManager> BoundedSessions<M> {
    /// Keep at most `max` sessions of `inner`, dropping what `server` keeps for a session when it closes.
    pub fn new(inner: M, server: Weak<McpServer>, max: usize) -> Self {
        BoundedSessions {
            inner,
            server,
            max: max.max(1),
            table: Arc::default(),
        }
    }

    /// Mark `id` busy until the returned guard drops.
    fn busy(&self, id: &SessionId) -> Busy {
        if let Some(activity) = lock(&self.table).sessions.get_mut(id) {
            activity.open += 1;
            activity.last_used = Instant::now();
        }
        Busy {
            table: self.table.clone(),
            id: id.clone(),
        }
    }

    /// Close `id` in rmcp and drop what the server keeps for it.
    async fn end(&self, id: &SessionId) -> Result<(), M::Error> {
        lock(&self.table).sessions.remove(id);
        let closed = self.inner.close_session(id).await;
        if let Some(server) = self.server.upgrade() {
            server.end_session(id);
        }
        closed
    }
}

impl<M: SessionManager> SessionManager for BoundedSessions<M> {
    type Error = SessionError<M::Error>;
    type Transport = M::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let evict = {
            let mut table = lock(&self.table);
            let evict = if table.sessions.len() + table.creating >= self.max {
                let Some(id) = table.least_recently_used_idle() else {
                    drop(table);
                    tracing::warn!(
                        max_sessions = self.max,
                        "refused a new MCP session: every session is busy"
                    );
                    let _ = REFUSED.try_with(|refused| refused.set(Some(self.max)));
                    return Err(SessionError::Full { max: self.max });
                };
                table.sessions.remove(&id);
                Some(id)
            } else {
                None
            };
            table.creating += 1;
            evict
        };
        let creating = Creating(&self.table);
        if let Some(id) = evict {
            tracing::info!(
                session = %id,
                max_sessions = self.max,
                "closing the least recently used idle MCP session to make room for a new one"
            );
            if let Err(e) = self.end(&id).await {
                tracing::debug!(session = %id, "closing an evicted session: {e}");
            }
        }
        let (id, transport) = self
            .inner
            .create_session()
            .await
            .map_err(SessionError::Inner)?;
        creating.done(id.clone());
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        // Takes over the busy mark the session was created with.
        let _created = Busy {
            table: self.table.clone(),
            id: id.clone(),
        };
        self.inner
            .initialize_session(id, message)
            .await
            .map_err(SessionError::Inner)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner
            .has_session(id)
            .await
            .map_err(SessionError::Inner)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.end(id).await.map_err(SessionError::Inner)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let busy = self.busy(id);
        let stream = self
            .inner
            .create_stream(id, message)
            .await
            .map_err(SessionError::Inner)?;
        Ok(Tracked {
            stream: Box::pin(stream),
            _busy: busy,
        })
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        let _busy = self.busy(id);
        self.inner
            .accept_message(id, message)
            .await
            .map_err(SessionError::Inner)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let busy = self.busy(id);
        let stream = self
            .inner
            .create_standalone_stream(id)
            .await
            .map_err(SessionError::Inner)?;
        Ok(Tracked {
            stream: Box::pin(stream),
            _busy: busy,
        })
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let busy = self.busy(id);
        let stream = self
            .inner
            .resume(id, last_event_id)
            .await
            .map_err(SessionError::Inner)?;
        Ok(Tracked {
            stream: Box::pin(stream),
            _busy: busy,
        })
    }

    async fn restore_session(
        &self,
        _id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        // Sessions live in this process only, and a restored one would bypass the bound.
        Ok(RestoreOutcome::NotSupported)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
