//! Connections the fake can cut. `Fault::DropConnection` closes one without an answer, and
//! dropping the fake closes them all, so a client's pooled keep-alive connections fail the way
//! they do when a server dies.
//!
//! hyper owns each accepted socket, so the listener keeps a second handle on it (a duplicated
//! descriptor of the same socket); shutting that handle down ends the connection hyper serves.

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A handle on one accepted connection, available to handlers as `ConnectInfo`.
#[derive(Clone)]
pub(crate) struct ConnectionHandle(Arc<std::net::TcpStream>);

impl ConnectionHandle {
    /// Closes the connection both ways; the peer sees it end without an answer.
    pub fn cut(&self) {
        // Fails only when the peer already closed it, which is just as good.
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

impl Connected<IncomingStream<'_, CuttableListener>> for ConnectionHandle {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        stream.io().handle.clone()
    }
}

/// Every connection still open. Weak, so that a connection hyper has finished with releases its
/// socket instead of this list keeping it half-open.
#[derive(Default)]
pub(crate) struct OpenConnections(Mutex<Vec<Weak<std::net::TcpStream>>>);

impl OpenConnections {
    fn track(&self, handle: &ConnectionHandle) {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|socket| socket.strong_count() > 0);
        open.push(Arc::downgrade(&handle.0));
    }

    pub fn cut_all(&self) {
        let open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for socket in open.iter().filter_map(Weak::upgrade) {
            ConnectionHandle(socket).cut();
        }
    }
}

pub(crate) struct CuttableListener {
    pub listener: TcpListener,
    pub open: Arc<OpenConnections>,
}

impl CuttableListener {
    fn wrap(&self, stream: TcpStream) -> io::Result<Connection> {
        let stream = stream.into_std()?;
        let handle = ConnectionHandle(Arc::new(stream.try_clone()?));
        self.open.track(&handle);
        Ok(Connection {
            stream: TcpStream::from_std(stream)?,
            handle,
        })
    }
}

impl Listener for CuttableListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            // Accept errors (out of descriptors, a peer gone before accept) pass; retry shortly.
            if let Ok((stream, peer)) = self.listener.accept().await
                && let Ok(connection) = self.wrap(stream)
            {
                return (connection, peer);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An accepted socket as hyper sees it, holding its handle alive as long as hyper serves it.
pub(crate) struct Connection {
    stream: TcpStream,
    handle: ConnectionHandle,
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
