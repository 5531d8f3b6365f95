//! The HTTP edge of both APIs under abuse, on raw connections: a request head larger than the
//! servers read (431), a query string beyond it, bodies beyond the APIs' limits (413, declared
//! or streamed), a head trickled byte by byte (the connection is closed at the header read
//! timeout), a body that never arrives in full (408 from the command API, 4xx from the query
//! API at the body read timeout), and hundreds of clients each holding half a head at once —
//! the process's memory stays bounded, a well-behaved request is answered meanwhile, and
//! every one of them is cut off at the timeout. No answer is a 5xx.

mod support;

use std::time::{Duration, Instant};
use support::{token, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The timeouts the platform runs with here (short, so the test is quick; the defaults are
/// 60 s for a head and 30 s for a body).
const HEADER_TIMEOUT: Duration = Duration::from_millis(1500);
const BODY_TIMEOUT: Duration = Duration::from_millis(1500);
/// How late after its timeout a slow body may be answered.
const SLACK: Duration = Duration::from_secs(3);

/// Writes `head` and `body` on a new connection, then reads until the server closes it or
/// `within` passes; returns the status of the answer, if any, and how long it took.
async fn exchange(
    addr: &str,
    head: &str,
    body: &[u8],
    within: Duration,
) -> (Option<u16>, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before all is written (a head too large): a failed
    // write is part of what is tried.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut answer)).await;
    (status_of(&answer), started.elapsed())
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(answer);
    let line = text.lines().next()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn post_head(path: &str, bearer: &str, length: usize, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: etr\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nIdempotency-Key: abuse-{}\r\nContent-Length: {length}\r\nConnection: close\r\n{extra}\r\n",
        uuid::Uuid::new_v4()
    )
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_slow_requests_are_cut_off_without_a_server_error() {
    let env = Env::new("abuse").await;
    let mut command = env.command(&["up", "--no-demo"]);
    command
        .env(
            "ETR_HEADER_READ_TIMEOUT_MS",
            HEADER_TIMEOUT.as_millis().to_string(),
        )
        .env(
            "ETR_BODY_READ_TIMEOUT_MS",
            BODY_TIMEOUT.as_millis().to_string(),
        );
    let etr = env.start_with(command).await;
    // The query API comes up beside the command API.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&env.query_addr).await.is_err() {
        assert!(Instant::now() < deadline, "the query API did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = uuid::Uuid::new_v4();
    let bearer = token(&client.to_string(), etr_query_api::auth::Role::Client);
    let wallets = format!("/v1/clients/{client}/wallets");
    let apis = [
        ("command API", env.api_addr.clone(), wallets.as_str()),
        ("query API", env.query_addr.clone(), "/graphql"),
    ];
    let quick = Duration::from_secs(10);

    for (name, addr, path) in &apis {
        // A head beyond 64 KiB.
        let big_header = format!("X-Padding: {}\r\n", "a".repeat(100 * 1024));
        let (status, _) = exchange(
            addr,
            &post_head(path, &bearer, 2, &big_header),
            b"{}",
            quick,
        )
        .await;
        let status = status.unwrap_or_else(|| panic!("{name}: a 100 KiB header went unanswered"));
        assert_eq!(status, 431, "{name}: a 100 KiB header");

        // A query string beyond it.
        let long_query = format!(
            "GET {path}?q={} HTTP/1.1\r\nHost: etr\r\nConnection: close\r\n\r\n",
            "a".repeat(100 * 1024)
        );
        let (status, _) = exchange(addr, &long_query, b"", quick).await;
        let status =
            status.unwrap_or_else(|| panic!("{name}: a 100 KiB query string went unanswered"));
        assert!(
            (400..500).contains(&status),
            "{name}: a 100 KiB query string answered {status}"
        );

        // A body beyond 256 KiB, declared.
        let body = vec![b' '; 300 * 1024];
        let (status, _) = exchange(
            addr,
            &post_head(path, &bearer, body.len(), ""),
            &body,
            quick,
        )
        .await;
        assert_eq!(status, Some(413), "{name}: a 300 KiB body");

        // A body beyond it, streamed in chunks without a declared length.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: etr\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nIdempotency-Key: abuse-chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let mut chunked = Vec::new();
        for _ in 0..40 {
            chunked.extend_from_slice(format!("{:x}\r\n", 10 * 1024).as_bytes());
            chunked.extend(std::iter::repeat_n(b' ', 10 * 1024));
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let (status, _) = exchange(addr, &head, &chunked, quick).await;
        let status =
            status.unwrap_or_else(|| panic!("{name}: a streamed 400 KiB body went unanswered"));
        assert!(
            status == 413 || (400..500).contains(&status),
            "{name}: a streamed 400 KiB body answered {status}"
        );

        // A head trickled byte by byte: cut off at the header read timeout.
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr.as_str()).await.expect("connect");
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: etr\r\n")
            .await
            .expect("write");
        let mut closed = false;
        while started.elapsed() < HEADER_TIMEOUT + SLACK {
            if stream.write_all(b"X").await.is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(n)) => {
                    let status = status_of(&buf[..n]);
                    assert!(
                        status.is_some_and(|s| (400..500).contains(&s)),
                        "{name}: a trickled head answered {status:?}"
                    );
                    closed = true;
                    break;
                }
                Err(_) => {}
            }
        }
        let took = started.elapsed();
        assert!(
            closed,
            "{name}: a trickled head was still read after {took:?}"
        );
        assert!(
            took >= HEADER_TIMEOUT.saturating_sub(Duration::from_millis(200)),
            "{name}: a trickled head was cut off after {took:?}, before the header read timeout"
        );

        // A body that never arrives in full.
        let (status, took) = exchange(
            addr,
            &post_head(path, &bearer, 1000, ""),
            b"{\"currency\"",
            BODY_TIMEOUT + SLACK + SLACK,
        )
        .await;
        let status = status.unwrap_or_else(|| {
            panic!("{name}: a body that never arrived went unanswered after {took:?}")
        });
        assert!(
            (400..500).contains(&status),
            "{name}: a body that never arrived answered {status}"
        );
        if *name == "command API" {
            assert_eq!(status, 408, "{name}: a body that never arrived");
        }
        assert!(
            took < BODY_TIMEOUT + SLACK,
            "{name}: a body that never arrived was answered after {took:?}"
        );
    }

    // Hundreds of slow clients at once, each holding half a head of 32 KiB.
    let pid = etr.id();
    let before = rss_kib(pid);
    let mut slow = Vec::new();
    for i in 0..300 {
        let (_, addr, _) = &apis[i % 2];
        let mut stream = TcpStream::connect(addr.as_str()).await.expect("connect");
        let partial = format!(
            "POST / HTTP/1.1\r\nHost: etr\r\nX-Padding: {}",
            "b".repeat(32 * 1024)
        );
        stream.write_all(partial.as_bytes()).await.expect("write");
        slow.push(stream);
    }
    let during = rss_kib(pid);
    // Meanwhile a well-behaved request is answered.
    let health = reqwest::get(format!("{}/health", env.api()))
        .await
        .expect("the command API answers while slow clients hold connections");
    assert!(health.status().is_success());
    eprintln!("resident memory: {before} KiB before, {during} KiB with 300 slow clients");
    assert!(
        during.saturating_sub(before) < 64 * 1024,
        "300 slow clients grew the process by {} KiB",
        during.saturating_sub(before)
    );
    tokio::time::sleep(HEADER_TIMEOUT + SLACK).await;
    let mut cut_off = 0;
    for stream in &mut slow {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => cut_off += 1,
            Ok(Ok(n)) => {
                let status = status_of(&buf[..n]);
                assert!(
                    status.is_some_and(|s| (400..500).contains(&s)),
                    "a slow client was answered {status:?}"
                );
                cut_off += 1;
            }
            Err(_) => {}
        }
    }
    assert_eq!(
        cut_off,
        slow.len(),
        "slow clients still connected after the header read timeout"
    );
    drop(etr);
}
