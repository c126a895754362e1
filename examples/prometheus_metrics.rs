//! Serve ferrokafka's metrics to Prometheus: a producer writes a record every 10 ms, a
//! consumer group reads them, and `GET /metrics` answers with the Prometheus text format.
//!
//! ```text
//! cargo run --example prometheus_metrics --features metrics -- 127.0.0.1:9092 demo-metrics 127.0.0.1:9898
//! curl -s 127.0.0.1:9898/metrics | grep kafka_
//! ```
//! With a fourth argument `N`, it runs N seconds, prints the page once to stdout and exits
//! (handy for a quick look without Prometheus). On Tansu the group's first join takes about
//! 30 s; on Kafka about 3 s (`group.initial.rebalance.delay.ms`).
//!
//! The recorder is `metrics-exporter-prometheus` with its HTTP listener left out: the handle
//! renders the page, and a few lines of tokio serve it. It is installed *before* the client is
//! built, because ferrokafka registers its metric handles when a client, connection, producer
//! or consumer is created. Buckets are set so that histograms come out as `_bucket` series
//! (`histogram_quantile` works on them) instead of summaries.

use std::time::Duration;

use ferrokafka::{Client, Consumer, NewTopic, OffsetReset, Producer, Record};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".to_owned());
    let topic = args.next().unwrap_or_else(|| "demo-metrics".to_owned());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9898".to_owned());
    let print_after: Option<u64> = args.next().map(|s| s.parse()).transpose()?;
    // Logs (and the messaging spans, `RUST_LOG=ferrokafka::messaging=info`) to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    // Buckets per unit (docs/OPERATIONS.md lists each metric's): latencies, sizes, ratios,
    // counts.
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
        )?
        .set_buckets_for_metric(
            Matcher::Suffix("_bytes".into()),
            &[1024.0, 16_384.0, 65_536.0, 262_144.0, 1_048_576.0],
        )?
        .set_buckets_for_metric(
            Matcher::Suffix("_ratio".into()),
            &[0.01, 0.1, 0.25, 0.5, 0.75, 1.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("kafka_producer_records_per_request".into()),
            &[1.0, 10.0, 100.0, 1000.0, 10_000.0],
        )?
        .install_recorder()?;

    let client = Client::builder()
        .bootstrap_servers(&bootstrap)
        .client_id("prometheus-example")
        .build()
        .await?;
    // Already there is fine: the example can run again against the same cluster.
    let _ = client
        .admin()
        .create_topics(&[NewTopic::new(&topic, 3, 1)])
        .await;

    let producer = Producer::builder(&client).build().await?;
    let writer = {
        let (producer, topic) = (producer.clone(), topic.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for i in 0u64.. {
                tick.tick().await;
                let record = Record::new(&topic)
                    .key(format!("key-{}", i % 16))
                    .value(format!("event {i}"));
                match producer.send(record).await {
                    Ok(delivery) => drop(delivery),
                    Err(e) => eprintln!("send failed: {e}"),
                }
            }
        })
    };

    let consumer = Consumer::builder(&client)
        .group_id("prometheus-example")
        .offset_reset(OffsetReset::Latest)
        .build()
        .await?;
    consumer.subscribe(&[&topic]).await?;
    let reader = tokio::spawn(async move {
        loop {
            if let Err(e) = consumer.recv().await {
                eprintln!("recv failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });

    if let Some(secs) = print_after {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        print!("{}", handle.render());
    } else {
        let listener = TcpListener::bind(&listen).await?;
        println!("serving http://{listen}/metrics (Ctrl-C to stop)");
        tokio::select! {
            r = serve(listener, handle) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    writer.abort();
    reader.abort();
    producer.close(Duration::from_secs(5)).await?;
    client.close().await;
    Ok(())
}

/// A minimal HTTP/1.1 server: every request gets the current page (Prometheus only ever asks
/// for `/metrics`), then the connection closes.
async fn serve(listener: TcpListener, handle: PrometheusHandle) -> std::io::Result<()> {
    loop {
        let (mut socket, _) = listener.accept().await?;
        let handle = handle.clone();
        tokio::spawn(async move {
            // The request itself does not matter; read its head so the client sees a reply
            // to what it sent, not a reset.
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let body = handle.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
