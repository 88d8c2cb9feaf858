//! The shipped deployment's proxy, for real: nginx (Debian's) with the proxy configuration of
//! `docker-compose.yml` in front of two instances. Distinct clients keep distinct rate limits,
//! request ids pass through both ways, requests reach both instances and WebSocket upgrades work.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use clubpulse_domain::Role;
use reqwest::StatusCode;

use crate::{
    helpers::{Setup, TestApp, eventually},
    ws_client::WsClient,
};

const NGINX: &str = "/usr/sbin/nginx";

fn compose_file() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker-compose.yml");
    std::fs::read_to_string(&path).expect("docker-compose.yml")
}

/// The value after `key:` on the first line that has it, unquoted.
fn compose_value<'a>(compose: &'a str, key: &str) -> &'a str {
    compose
        .lines()
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("docker-compose.yml sets no {key}"))
        .trim()
        .trim_matches('"')
}

/// The proxy configuration the compose file hands nginx (`configs.proxy_conf.content`), with
/// Compose's `$$` escapes undone.
fn compose_proxy_conf(compose: &str) -> String {
    let mut lines = compose
        .lines()
        .skip_while(|l| l.trim() != "proxy_conf:")
        .skip_while(|l| l.trim() != "content: |");
    assert!(
        lines.next().is_some(),
        "docker-compose.yml has no proxy_conf content"
    );
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("      "))
        .map(|l| l.strip_prefix("      ").unwrap_or(""))
        .collect();
    body.join("\n").replace("$$", "$")
}

/// `conf` with `from` replaced by `to`, which must be there: a change of the compose file's
/// proxy configuration has to be looked at here too.
fn replaced(conf: &str, from: &str, to: &str) -> String {
    assert!(
        conf.contains(from),
        "the proxy configuration no longer has {from:?}"
    );
    conf.replace(from, to)
}

struct Proxy {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    _nginx: tokio::process::Child,
}

impl Proxy {
    /// nginx on a free loopback port with the compose file's configuration, its upstream the
    /// instances at `upstreams` instead of Docker's `app` name.
    async fn start(upstreams: &[SocketAddr]) -> Self {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: scripts/setup installs nginx"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| -> PathBuf { dir.path().join(name) };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let servers: String = upstreams
            .iter()
            .map(|a| format!("server {a};\n    "))
            .collect();
        let mut conf = compose_proxy_conf(&compose_file());
        conf = replaced(&conf, "resolver 127.0.0.11 valid=10s ipv6=off;", "");
        conf = replaced(&conf, "server app:8080 resolve;", servers.trim_end());
        conf = replaced(&conf, "listen 8080;", &format!("listen 127.0.0.1:{port};"));
        conf = replaced(
            &conf,
            "/var/log/nginx/access.log",
            &path("access.log").display().to_string(),
        );
        let temp = |name: &str| format!("{name}_temp_path {};\n", path(name).display());
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {};\nevents {{ worker_connections 256; }}\n\
             http {{\n{}{}{}{}{}{conf}\n}}\n",
            path("nginx.pid").display(),
            temp("client_body"),
            temp("proxy"),
            temp("fastcgi"),
            temp("uwsgi"),
            temp("scgi"),
        );
        std::fs::write(path("nginx.conf"), main).unwrap();
        let nginx = tokio::process::Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(path("nginx.conf"))
            .arg("-e")
            .arg(path("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        let proxy = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            _nginx: nginx,
        };
        let client = reqwest::Client::new();
        let url = proxy.url("/health");
        eventually(Duration::from_secs(15), "nginx to answer", || async {
            let up = client.get(&url).send().await.ok()?.status() == StatusCode::OK;
            up.then_some(())
        })
        .await;
        proxy
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits (bounded) until the access log satisfies `done`.
    async fn logged(&self, what: &str, done: impl Fn(&str) -> bool) {
        let path = self.dir.path().join("access.log");
        eventually(Duration::from_secs(10), what, || async {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            done(&log).then_some(())
        })
        .await;
    }
}

/// A client whose connections come from `ip` (any address of 127.0.0.0/8 is this machine).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn the_compose_file_trusts_exactly_its_proxys_address() {
    let compose = compose_file();
    let proxy = compose_value(&compose, "ipv4_address");
    let subnet = compose_value(&compose, "- subnet");
    let trusted = compose_value(&compose, "CLUBPULSE_TRUSTED_PROXIES");
    assert_eq!(trusted, format!("{proxy}/32"));
    let (network, bits) = subnet.split_once('/').unwrap();
    let (network, bits): (Ipv4Addr, u32) = (network.parse().unwrap(), bits.parse().unwrap());
    let mask = u32::MAX << (32 - bits);
    let proxy: Ipv4Addr = proxy.parse().unwrap();
    assert_eq!(
        u32::from(proxy) & mask,
        u32::from(network),
        "the proxy's address is on the compose network"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_shipped_proxy_clients_keep_their_own_limits_ids_pass_and_websockets_upgrade() {
    let mut setup = Setup::default();
    setup.config.rate_limits.enabled = true;
    setup.config.rate_limits.global_per_ip = 10;
    setup.config.rate_limits.trusted_proxies = vec!["127.0.0.1/32".to_owned()];
    let first = TestApp::spawn_with(Setup {
        config: setup.config.clone(),
        ..Setup::default()
    })
    .await;
    let second = TestApp::spawn_with(first.beside(Setup {
        config: setup.config.clone(),
        ..Setup::default()
    }))
    .await;
    let proxy = Proxy::start(&[first.addr, second.addr]).await;

    // Request ids: the client's passes through to the instance and back; without one, nginx
    // makes one and the instance answers with it.
    let anyone = client_from([127, 0, 0, 9]);
    let answered = anyone
        .get(proxy.url("/health"))
        .header("x-request-id", "proxy-check-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(answered.headers()["x-request-id"], "proxy-check-0001");
    let made = anyone.get(proxy.url("/health")).send().await.unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "nginx's $request_id, got {id:?}"
    );
    // nginx writes a request's log line as it finishes it, which may be just after the answer.
    proxy
        .logged("both request ids", |log| {
            log.contains("request_id=proxy-check-0001") && log.contains(&format!("request_id={id}"))
        })
        .await;

    // Two members on two addresses: one spends the per-IP limit, across both instances (the
    // counts live in Redis), and the other is not affected.
    let (ana, bruno) = (client_from([127, 0, 0, 2]), client_from([127, 0, 0, 3]));
    let facilities = proxy.url("/api/v1/facilities");
    for n in 0..10 {
        let status = ana.get(&facilities).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "request {n} of the limit");
    }
    let refused = ana.get(&facilities).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        bruno.get(&facilities).send().await.unwrap().status(),
        StatusCode::OK,
        "another client keeps a limit of its own"
    );
    proxy
        .logged("both instances serving", |log| {
            [first.addr, second.addr]
                .iter()
                .all(|instance| log.contains(&instance.to_string()))
        })
        .await;

    // WebSockets through the proxy's upgrade mapping.
    let member = first.user(Role::Member).await;
    let mut socket = WsClient::connect(proxy.addr, &member.token).await;
    socket.send(serde_json::json!({"type": "ping"})).await;
    let pong = socket.next_message().await;
    assert_eq!(pong["type"], "pong", "{pong}");
}
