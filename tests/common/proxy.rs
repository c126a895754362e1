//! A loopback TCP proxy that can delay what the broker sends back, to make a real broker
//! answer later than the client's request timeout (the librdkafka mock has an RTT knob, but
//! does not deduplicate idempotent produce retries; a real broker behind this proxy does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A proxy listening on `port()`, forwarding to `target`.
pub struct DelayProxy {
    port: u16,
    delay_ms: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl DelayProxy {
    /// Binds a free loopback port now; forwards to `target` (which may start later).
    pub async fn start(target_port_rx: tokio::sync::oneshot::Receiver<u16>) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        let task = tokio::spawn(async move {
            let target = target_port_rx.await.expect("target port");
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let delay = delay.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let d = delay.load(Ordering::Relaxed);
                        if d > 0 {
                            tokio::time::sleep(Duration::from_millis(d)).await;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        DelayProxy {
            port,
            delay_ms,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Delays every chunk the broker sends by `d`.
    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
