//! The socketioxide peer: the minimal server equivalent to Chorus for the benchmark.
//!
//! `join` puts the socket in a room (answered by `joined`); `msg` is broadcast to every member
//! of the room, the sender included (as Chorus sends a durable event to every member). It runs
//! on a tokio runtime with `WORKER_THREADS` workers (default 1, like Chorus in the benchmark).

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler;

/// Registers the socket's handlers. It is a connect *middleware*: socketioxide runs those before
/// it acknowledges the connect, whereas an async connect handler is spawned after the
/// acknowledgement, so a `join` the client sends at once could find no handler yet.
async fn register(socket: SocketRef) -> Result<(), std::convert::Infallible> {
    socket.on("join", async |socket: SocketRef, Data::<String>(room)| {
        socket.join(room.clone());
        let _ = socket.emit("joined", &room);
    });
    socket.on(
        "msg",
        async |io: SocketIo, Data::<(String, Value)>((room, payload))| {
            let _ = io.to(room).emit("msg", &payload).await;
        },
    );
    Ok(())
}

fn main() {
    let port: u16 = std::env::var("PORT").map_or(3002, |p| p.parse().expect("PORT is a number"));
    let workers: usize = std::env::var("WORKER_THREADS")
        .map_or(1, |w| w.parse().expect("WORKER_THREADS is a number"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let (layer, io) = SocketIo::builder().max_buffer_size(1024).build_layer();
        io.ns("/", (async || {}).with(register));
        let app = axum::Router::new().layer(layer);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        // TCP_NODELAY, as Node.js and Chorus set it: small frames are not held back by Nagle.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        println!("socketioxide listening on 127.0.0.1:{port}");
        axum::serve(listener, app).await.expect("serve");
    });
}
