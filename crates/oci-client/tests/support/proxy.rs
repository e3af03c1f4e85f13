//! A minimal forwarding HTTP proxy on loopback: CONNECT tunnels, and
//! absolute-form requests piped to their host. It records what it was
//! asked to reach and the Proxy-Authorization it saw.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Each connection's first request line and Proxy-Authorization.
pub type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A running proxy.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Each connection's first request line and Proxy-Authorization.
    pub requests: Log,
}

impl Proxy {
    /// Starts the proxy; it runs until the test's runtime ends.
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Log = Arc::default();
        let log = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = handle(stream, log).await;
                });
            }
        });
        Proxy { addr, requests }
    }
}

async fn handle(stream: TcpStream, log: Log) -> std::io::Result<()> {
    let mut client = BufReader::new(stream);
    let mut head = Vec::new();
    let mut line = String::new();
    let mut auth = None;
    loop {
        line.clear();
        if client.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if let Some(v) = line
            .to_ascii_lowercase()
            .strip_prefix("proxy-authorization:")
        {
            auth = Some(v.trim().to_owned());
        }
        head.push(line.clone());
        if line == "\r\n" {
            break;
        }
    }
    let first = head[0].trim().to_owned();
    log.lock().unwrap().push((first.clone(), auth));
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    if method == "CONNECT" {
        let mut upstream = TcpStream::connect(target).await?;
        client
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    } else {
        let authority = target
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        let mut upstream = TcpStream::connect(authority).await?;
        for h in &head {
            upstream.write_all(h.as_bytes()).await?;
        }
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    }
    Ok(())
}
