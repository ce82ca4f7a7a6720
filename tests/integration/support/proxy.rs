//! A TCP proxy on a loopback port that a test can switch off (closing every connection and
//! refusing new ones) and on again, and that counts what the application sends.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct Proxy {
    port: u16,
    enabled: Arc<AtomicBool>,
    /// Connections being relayed.
    open: Arc<AtomicUsize>,
    /// Reads from the application's side: each is a batch of messages it flushed at once
    /// (the PostgreSQL protocol waits for an answer before the next).
    sent: Arc<AtomicUsize>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let enabled = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let on = enabled.clone();
        let gen_tx = generation.clone();
        let open = Arc::new(AtomicUsize::new(0));
        let relaying = open.clone();
        let sent = Arc::new(AtomicUsize::new(0));
        let counted = sent.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !on.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = gen_tx.subscribe();
                let relaying = relaying.clone();
                let counted = counted.clone();
                relaying.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let ((mut cr, mut cw), (mut sr, mut sw)) =
                            (client.into_split(), server.into_split());
                        tokio::select! {
                            _ = relay(&mut cr, &mut sw, Some(&counted)) => {}
                            _ = relay(&mut sr, &mut cw, None) => {}
                            _ = cut.changed() => {}
                        }
                    }
                    relaying.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Proxy {
            port,
            enabled,
            open,
            sent,
            generation,
        }
    }

    /// How many batches the application has sent so far, over every connection.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cuts every open connection and refuses new ones.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Cuts every open connection, waits until all are closed, and accepts new ones again:
    /// a network blip that has certainly happened when this returns.
    pub async fn cut_all(&self) {
        self.disable();
        let open = self.open.clone();
        super::wait_until(
            "the proxy to close its connections",
            super::DEADLINE,
            || open.load(Ordering::SeqCst) == 0,
        )
        .await;
        self.enable();
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either side closes, counting the reads in `reads`.
async fn relay(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    reads: Option<&AtomicUsize>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if let Some(reads) = reads {
            reads.fetch_add(1, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}
