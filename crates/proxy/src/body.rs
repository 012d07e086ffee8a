//! Streaming bodies: the request body with its size limit, and the response body that
//! counts bytes and, when it ends or is dropped, writes the access log line, releases
//! the tool's connection slot and hands a finished upstream connection back to the pool.
//! Nothing is buffered: frames pass through as they arrive.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// The error a body reports when it broke.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that fails once more than `max` bytes went through, and says so in
/// `exceeded` (so the proxy answers 413 rather than 502).
#[derive(Debug)]
pub struct LimitedBody {
    /// `None`: an empty body (a replayed request without one).
    inner: Option<Incoming>,
    remaining: u64,
    max: u64,
    exceeded: Arc<AtomicBool>,
}

/// The body was larger than the limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than the limit of {0} bytes")]
pub struct TooLarge(pub u64);

impl LimitedBody {
    /// Wraps `inner`, allowing `max` bytes.
    pub fn new(inner: Incoming, max: u64, exceeded: Arc<AtomicBool>) -> LimitedBody {
        LimitedBody {
            inner: Some(inner),
            remaining: max,
            max,
            exceeded,
        }
    }

    /// An empty body.
    pub fn empty() -> LimitedBody {
        LimitedBody {
            inner: None,
            remaining: 0,
            max: 0,
            exceeded: Arc::default(),
        }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.exceeded.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(Box::new(TooLarge(this.max)))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Box::new(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// What happens when a response has been sent (or abandoned).
pub trait OnComplete: Send + Sync + 'static {
    /// `bytes` of body were sent; `finished` is false when the client went away or the
    /// upstream broke mid-body.
    fn complete(self: Box<Self>, bytes: u64, finished: bool);
}

/// The body of every answer of the proxy: a page, nothing, or the upstream's body.
pub struct ProxyBody {
    inner: Inner,
    bytes: u64,
    finished: bool,
    on_complete: Option<Box<dyn OnComplete>>,
}

enum Inner {
    Full(Option<Bytes>),
    Upstream(Incoming),
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBody")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl ProxyBody {
    /// A body of fixed content.
    pub fn full(content: impl Into<Bytes>) -> ProxyBody {
        let content = content.into();
        ProxyBody {
            inner: Inner::Full((!content.is_empty()).then_some(content)),
            bytes: 0,
            finished: false,
            on_complete: None,
        }
    }

    /// The upstream's body, streamed.
    pub fn upstream(body: Incoming) -> ProxyBody {
        ProxyBody {
            inner: Inner::Upstream(body),
            bytes: 0,
            finished: false,
            on_complete: None,
        }
    }

    /// Runs `on_complete` once the body has been sent or dropped.
    pub fn on_complete(mut self, on_complete: Box<dyn OnComplete>) -> ProxyBody {
        self.on_complete = Some(on_complete);
        self
    }

    fn finish(&mut self) {
        self.finished = true;
        if let Some(on_complete) = self.on_complete.take() {
            on_complete.complete(self.bytes, true);
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if let Some(on_complete) = self.on_complete.take() {
            let finished = self.finished || self.is_end_stream();
            on_complete.complete(self.bytes, finished);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Full(content) => Poll::Ready(content.take().map(|data| Ok(Frame::data(data)))),
            Inner::Upstream(body) => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Box::new(err) as BoxError))),
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if this.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(None) => this.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(content) => content.is_none(),
            Inner::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(Some(content)) => SizeHint::with_exact(content.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Upstream(body) => body.size_hint(),
        }
    }
}
