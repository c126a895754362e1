//! A TCP forwarder on a fixed loopback port whose target can be switched: a stable
//! bootstrap address in front of brokers that move (the tests' stand-in for a DNS name or a
//! load balancer that operators re-point).
//!
//! Each accepted connection is joined to a new connection to the target of that moment and
//! bytes are copied both ways until either side closes. [`Forwarder::switch`] points new
//! connections at another target and cuts the open ones, so nothing keeps talking to the old
//! target through it.
//!
//! Ownership: the accept task and every connection's copy task belong to the `Forwarder`;
//! they are aborted when it is dropped.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The forwarder; dropping it stops it and closes every connection through it.
pub struct Forwarder {
    port: u16,
    target: Arc<Mutex<String>>,
    /// Copy tasks of the connections open now (cut by `switch`).
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on a free loopback port, forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("forwarder: cannot bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(Mutex::new(target.to_owned()));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (target, connections) = (target.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    let to = target.lock().unwrap().clone();
                    let copy = tokio::spawn(async move {
                        // A target that refuses: the client sees its connection closed, as
                        // it would see a dead broker.
                        if let Ok(mut upstream) = TcpStream::connect(&to).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                    let mut open = connections.lock().unwrap();
                    open.retain(|t| !t.is_finished());
                    open.push(copy);
                }
            })
        };
        Forwarder {
            port,
            target,
            connections,
            accept,
        }
    }

    /// `127.0.0.1:<port>`: the stable address.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Points new connections at `target` and closes the open ones.
    pub fn switch(&self, target: &str) {
        *self.target.lock().unwrap() = target.to_owned();
        for t in self.connections.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        for t in self.connections.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}
