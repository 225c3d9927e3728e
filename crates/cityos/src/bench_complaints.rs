//! `cityos bench complaints`: Open311 filings and filtered listings per second
//! over HTTP on loopback, against a store that already holds a million
//! complaints, beside Debian's nginx serving the same listing as a static file.
//!
//! The load generator is a minimal HTTP/1.1 keep-alive client in this process
//! (no wrk on the machine): each connection sends a request, reads the whole
//! answer by its Content-Length, and records the latency.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cityos_store::complaints::{ComplaintRow, EventRow, Filing};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Filings written per transaction while seeding.
const SEED_BATCH: usize = 20_000;

/// Throughput and latency of one load run.
struct Load {
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Load {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests in {:.1} s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms",
            self.requests,
            self.seconds,
            self.rate(),
            self.p50_ms,
            self.p99_ms
        )
    }
}

/// Runs the benchmark: seed, file, list, and the nginx peer.
pub async fn run(seed: usize, seconds: u64, connections: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("cityos.db");
    let store = cityos_store::Store::open(&db.display().to_string()).await?;
    let started = Instant::now();
    let now = cityos_store::now_unix();
    seed_store(&store, seed, now).await?;
    println!(
        "seeded {seed} complaints over the last 90 days in {:.1} s (SQLite, WAL, synchronous=FULL)",
        started.elapsed().as_secs_f64()
    );

    let mut state = cityos_server::AppState::new(store.clone(), cityos_server::UiConfig::default());
    let mut settings = cityos_civic::Settings::new(dir.path());
    // One load generator is one address: lift the abuse limits for it.
    settings.per_account_per_hour = u32::MAX;
    settings.per_address_per_hour = u32::MAX;
    state.start_civic(settings).await?;
    let (_, key) = state
        .accounts
        .create_api_key("bench", cityos_accounts::Role::Citizen, None)
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(cityos_server::serve(
        listener,
        state,
        std::future::pending(),
    ));

    let filing = Arc::new(move |i: usize| {
        let lat = 37.51 + (i % 997) as f64 * 0.0001;
        let lon = 126.90 + (i % 1009) as f64 * 0.0001;
        let body = format!(
            "api_key={key}&service_code=graffiti&lat={lat:.6}&long={lon:.6}&description=bench+{i}&email=r{}%40example.org",
            i % 5000
        );
        format!(
            "POST /open311/v2/requests.json HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let before = store.complaint_count().await?;
    let filed = load(addr, connections, Duration::from_secs(seconds), filing).await?;
    let after = store.complaint_count().await?;
    anyhow::ensure!(
        (after - before) as usize == filed.requests,
        "{} filings answered but {} stored",
        filed.requests,
        after - before
    );
    println!(
        "filings (POST /open311/v2/requests.json, {connections} connections, each durable before its answer): {filed} (target: 2,000/s)"
    );

    // The last hour's open potholes: what a dashboard polls.
    let start = cityos_civic::model::iso(now - 3600, &jiff::tz::TimeZone::UTC);
    let path = format!(
        "/open311/v2/requests.json?service_code=pothole&status=open&start_date={}",
        start.replace('+', "%2B")
    );
    let sample = get(addr, &path).await?;
    let rows = serde_json::from_slice::<serde_json::Value>(&sample)?
        .as_array()
        .map_or(0, Vec::len);
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes();
    let listing = {
        let request = request.clone();
        Arc::new(move |_| request.clone())
    };
    let listed = load(addr, connections, Duration::from_secs(seconds), listing).await?;
    println!(
        "filtered listings (GET {path}: {rows} requests, {} bytes each): {listed} (target: 20,000/s)",
        sample.len()
    );
    server.abort();

    match nginx_peer(dir.path(), &sample, connections, seconds).await {
        Ok(peer) => println!(
            "peer: Debian's nginx serving the same {} bytes as a static file: {peer}; cityos lists at {:.2}x nginx's rate",
            sample.len(),
            listed.rate() / peer.rate()
        ),
        Err(e) => println!("peer not run: {e:#} (install Debian's nginx-light)"),
    }
    Ok(())
}

/// Writes `count` complaints spread over the last 90 days, in large transactions.
async fn seed_store(store: &cityos_store::Store, count: usize, now: i64) -> anyhow::Result<()> {
    let catalog = cityos_civic::Catalog::seoul();
    let services: Vec<&cityos_civic::catalog::Service> = catalog.services.iter().collect();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut id = store.lease_complaint_ids(count as i64).await?.start;
    let mut batch = Vec::with_capacity(SEED_BATCH);
    for n in 0..count {
        let service = services[(next() % services.len() as u64) as usize];
        let at = (
            37.51 + (next() % 12_000) as f64 * 1e-5,
            126.86 + (next() % 16_000) as f64 * 1e-5,
        );
        let requested_at = now - (next() % (90 * 86_400)) as i64;
        let route = catalog.route(service, Some(at));
        let open = next() % 2 == 0;
        let expected_at =
            cityos_civic::model::deadline_of(service.deadline, requested_at, &catalog.timezone);
        let row = ComplaintRow {
            id,
            service_code: service.code.into(),
            status: if open { "received" } else { "resolved" }.into(),
            open,
            description: format!("seeded complaint {n}"),
            attributes: "{}".into(),
            lat_e6: Some((at.0 * 1e6) as i64),
            lon_e6: Some((at.1 * 1e6) as i64),
            h3_cell: cityos_civic::geo::cell_of(at),
            department: route.department.into(),
            district: route.district.map(Into::into),
            requested_at,
            updated_at: requested_at,
            expected_at,
            resolved_at: (!open).then(|| requested_at + (next() % 172_800) as i64),
            visible: true,
            moderation: "none".into(),
            ..ComplaintRow::default()
        };
        batch.push(Filing {
            event: EventRow {
                id: 0,
                complaint_id: id,
                at: requested_at,
                kind: "received".into(),
                status: Some("received".into()),
                text: String::new(),
                public: true,
                author: None,
            },
            complaint: row,
            reporter: None,
        });
        id += 1;
        if batch.len() == SEED_BATCH {
            store.insert_complaints(std::mem::take(&mut batch)).await?;
        }
    }
    store.insert_complaints(batch).await?;
    Ok(())
}

/// Sends requests from `connections` keep-alive connections for `duration`.
async fn load(
    addr: std::net::SocketAddr,
    connections: usize,
    duration: Duration,
    request: Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>,
) -> anyhow::Result<Load> {
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let request = request.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = BufReader::new(TcpStream::connect(addr).await?);
            conn.get_mut().set_nodelay(true)?;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let sent = Instant::now();
                conn.get_mut().write_all(&request(i)).await?;
                let (status, _) = read_response(&mut conn).await?;
                anyhow::ensure!(status == 200, "request {i} answered {status}");
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let p = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Ok(Load {
        requests: latencies.len(),
        seconds,
        p50_ms: p(0.5),
        p99_ms: p(0.99),
    })
}

/// Reads one response: its status and body (by Content-Length).
async fn read_response(conn: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP response: {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        anyhow::ensure!(conn.read_line(&mut line).await? > 0, "connection closed");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok((status, body))
}

async fn get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let mut conn = BufReader::new(TcpStream::connect(addr).await?);
    conn.get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
        .await?;
    let (status, body) = read_response(&mut conn).await?;
    anyhow::ensure!(status == 200, "GET {path} answered {status}");
    Ok(body)
}

/// Serves `body` as a static file from a private nginx (Debian's) on a free
/// port, and runs the same load against it.
async fn nginx_peer(
    dir: &Path,
    body: &[u8],
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Load> {
    let nginx = Path::new("/usr/sbin/nginx");
    anyhow::ensure!(nginx.exists(), "{} is missing", nginx.display());
    let root = dir.join("nginx");
    std::fs::create_dir_all(root.join("www"))?;
    std::fs::write(root.join("www/requests.json"), body)?;
    // nginx's workers drop root for nobody, who must be able to read the file.
    use std::os::unix::fs::PermissionsExt;
    for p in [dir, &root, &root.join("www")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::set_permissions(
        root.join("www/requests.json"),
        std::fs::Permissions::from_mode(0o644),
    )?;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let conf = format!(
        "daemon off;\nworker_processes 2;\nerror_log {root}/error.log;\npid {root}/nginx.pid;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {root}/tmp;\n  proxy_temp_path {root}/tmp;\n  fastcgi_temp_path {root}/tmp;\n  uwsgi_temp_path {root}/tmp;\n  scgi_temp_path {root}/tmp;\n  keepalive_requests 100000000;\n  server {{\n    listen 127.0.0.1:{port};\n    root {root}/www;\n    default_type application/json;\n  }}\n}}\n",
        root = root.display()
    );
    std::fs::write(root.join("nginx.conf"), conf)?;
    let mut child = tokio::process::Command::new(nginx)
        .arg("-c")
        .arg(root.join("nginx.conf"))
        .arg("-p")
        .arg(&root)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start nginx")?;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let ready = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_err() {
        anyhow::ensure!(Instant::now() < ready, "nginx did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let request = b"GET /requests.json HTTP/1.1\r\nHost: bench\r\n\r\n".to_vec();
    let result = load(
        addr,
        connections,
        Duration::from_secs(seconds),
        Arc::new(move |_| request.clone()),
    )
    .await;
    let _ = child.kill().await;
    result
}
