//! [`SmtpSink`]: a real SMTP server for tests, and what it received.
//!
//! Tests send through the same [`Mailer`](crate::Mailer) as production, to `scripts/smtp_sink.py`
//! (aiosmtpd, installed by `scripts/setup`) started on a free loopback port with its own temporary
//! folder. Each received message is one `.eml` file there; [`SmtpSink::messages`] parses them
//! into [`ReceivedMessage`]s. The server can be stopped and restarted on the same port, to test
//! what a job does while the relay is down.
//!
//! The sink refuses recipients at two reserved domains, to test error handling:
//! `…@reject.test` gets 550 (permanent), `…@defer.test` gets 451 (transient).
//!
//! Test support, so [`SmtpSink::start`] panics with a clear message when the sink cannot start
//! (no `python3`, no `aiosmtpd`); [`SmtpSink::try_start`] returns the error instead.

use std::{
    borrow::Cow,
    fmt, io,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use mail_parser::{MessageParser, MimeHeaders};
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdout, Command},
};

/// How long the sink may take to print `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stop waits for a clean exit after SIGTERM before killing.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often [`SmtpSink::wait_for`] looks at the folder.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A running (or stopped) SMTP sink. Dropping it kills the server and deletes what it received.
pub struct SmtpSink {
    port: u16,
    dir: TempDir,
    /// `user:pass` the server requires, if any.
    auth: Option<String>,
    running: Option<Running>,
}

/// The server process, and its stdout kept open so a late write never meets a closed pipe.
struct Running {
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    ///
    /// # Panics
    ///
    /// When the sink cannot start; the message says why (see [`try_start`](Self::try_start)).
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(sink) => sink,
            Err(error) => panic!("the SMTP sink did not start: {error} (run scripts/setup)"),
        }
    }

    /// Starts a sink that requires `AUTH` (PLAIN or LOGIN) with these credentials.
    ///
    /// # Panics
    ///
    /// When the sink cannot start.
    pub async fn start_with_auth(user: &str, password: &str) -> Self {
        match Self::launch(Some(format!("{user}:{password}"))).await {
            Ok(sink) => sink,
            Err(error) => panic!("the SMTP sink did not start: {error} (run scripts/setup)"),
        }
    }

    /// Starts a sink on a free loopback port, or says why it could not.
    pub async fn try_start() -> io::Result<Self> {
        Self::launch(None).await
    }

    async fn launch(auth: Option<String>) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("smtp-sink-").tempdir()?;
        // The port is free when asked and taken a moment later by the sink; another process may
        // win it in between, so try a few.
        let mut last_error = io::Error::other("no free port");
        for _ in 0..5 {
            let port = free_port()?;
            match spawn(port, dir.path(), auth.as_deref()).await {
                Ok(running) => {
                    return Ok(Self {
                        port,
                        dir,
                        auth,
                        running: Some(running),
                    });
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// `smtp://127.0.0.1:PORT`, for [`Mailer::from_url`](crate::Mailer::from_url).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The port the sink listens on, also while stopped.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops the server (SIGTERM, then a kill if it lingers). Messages received so far stay
    /// readable. Connections to the port are refused until [`restart`](Self::restart).
    pub async fn stop(&mut self) {
        let Some(Running { mut child, .. }) = self.running.take() else {
            return;
        };
        if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port, keeping what it received.
    ///
    /// # Panics
    ///
    /// When it cannot start again; see [`try_restart`](Self::try_restart).
    pub async fn restart(&mut self) {
        if let Err(error) = self.try_restart().await {
            panic!(
                "the SMTP sink did not restart on port {}: {error}",
                self.port
            );
        }
    }

    /// Starts the server again on the same port, or says why it could not. Retries for a few
    /// seconds while the port is still held.
    pub async fn try_restart(&mut self) -> io::Result<()> {
        self.stop().await;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match spawn(self.port, self.dir.path(), self.auth.as_deref()).await {
                Ok(running) => {
                    self.running = Some(running);
                    return Ok(());
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| is_message_file(path))
            .collect();
        files.sort();
        files
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .filter_map(ReceivedMessage::parse)
            .collect()
    }

    /// Waits up to `timeout` for a message matching `predicate` and returns the first one, oldest
    /// first; `None` when none came.
    pub async fn wait_for(
        &self,
        predicate: impl Fn(&ReceivedMessage) -> bool,
        timeout: Duration,
    ) -> Option<ReceivedMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.messages().into_iter().find(|m| predicate(m)) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The folder the `.eml` files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(running) = &mut self.running {
            let _ = running.child.start_kill();
        }
    }
}

impl fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSink")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

/// Spawns the server on `port` and waits for its `ready` line.
async fn spawn(port: u16, dir: &Path, auth: Option<&str>) -> io::Result<Running> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/smtp_sink.py");
    // scripts/setup installs aiosmtpd in the project's virtual environment (Debian's python3
    // refuses system-wide installs); a machine without one may have it in its own python3.
    let venv = root.join("var/venv/bin/python3");
    let python = if venv.exists() {
        venv.as_os_str().to_owned()
    } else {
        "python3".into()
    };
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(auth) = auth {
        command.args(["--auth", auth]);
    }
    let mut child = command.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot run {} {}: {e}",
                Path::new(&python).display(),
                script.display()
            ),
        )
    })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("the sink's stdout was not captured"))?;
    let mut stdout = BufReader::new(stdout);
    let ready = tokio::time::timeout(START_TIMEOUT, async {
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the sink exited before it was ready (its error is above)",
                ));
            }
            if line.trim() == "ready" {
                return Ok(());
            }
        }
    })
    .await;
    match ready {
        Ok(Ok(())) => Ok(Running {
            child,
            _stdout: stdout,
        }),
        Ok(Err(error)) => {
            let _ = child.kill().await;
            Err(error)
        }
        Err(_elapsed) => {
            let _ = child.kill().await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the sink did not print ready",
            ))
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A finished message file: `<ns>-<n>.eml`, not the sink's hidden temporary name.
fn is_message_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    !name.starts_with('.') && name.ends_with(".eml")
}

/// A message as the sink received it, parsed just enough for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The whole message as stored: the sink's two envelope headers, then the message as sent.
    /// Bodies here are still transfer-encoded (7bit/8bit text reads as is).
    pub raw: String,
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`): where the message was delivered.
    pub to: Vec<String>,
    /// The `To:` header's addresses.
    pub header_to: Vec<String>,
    /// The decoded subject.
    pub subject: String,
    /// The `Message-ID` without its angle brackets.
    pub message_id: Option<String>,
    /// The first text/plain body, transfer-decoded.
    pub text: String,
    /// The first text/html body, transfer-decoded.
    pub html: Option<String>,
    /// Attachments in order.
    pub attachments: Vec<ReceivedAttachment>,
}

/// An attachment of a [`ReceivedMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedAttachment {
    /// The file name, if the part has one.
    pub filename: Option<String>,
    /// `type/subtype`, lower-case (`text/calendar`).
    pub content_type: String,
    /// The `Content-Type` parameters (`method`, `charset`), names lower-case.
    pub parameters: Vec<(String, String)>,
    /// The decoded bytes.
    pub content: Vec<u8>,
}

impl ReceivedAttachment {
    /// A `Content-Type` parameter by name, case-insensitively.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The content as text (lossy UTF-8).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.content)
    }
}

impl ReceivedMessage {
    /// Parses a stored message; `None` when it is not a message at all.
    pub fn parse(raw: impl AsRef<[u8]>) -> Option<Self> {
        let raw = raw.as_ref();
        let message = MessageParser::default().parse(raw)?;
        let envelope = |name: &str| message.header_raw(name).map(|v| v.trim().to_owned());
        let header_to = message
            .to()
            .map(|to| {
                to.iter()
                    .filter_map(|a| a.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let attachments = message
            .attachments()
            .map(|part| {
                let (content_type, parameters) = part.content_type().map_or_else(
                    || ("application/octet-stream".to_owned(), Vec::new()),
                    |ct| {
                        let kind = match ct.subtype() {
                            Some(sub) => format!("{}/{}", ct.ctype(), sub),
                            None => ct.ctype().to_owned(),
                        };
                        let params = ct
                            .attributes()
                            .unwrap_or_default()
                            .iter()
                            .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                            .collect();
                        (kind.to_ascii_lowercase(), params)
                    },
                );
                ReceivedAttachment {
                    filename: part.attachment_name().map(str::to_owned),
                    content_type,
                    parameters,
                    content: part.contents().to_vec(),
                }
            })
            .collect();
        Some(Self {
            raw: String::from_utf8_lossy(raw).into_owned(),
            mail_from: envelope("X-Sink-Mail-From").unwrap_or_default(),
            to: envelope("X-Sink-Rcpt-To")
                .map(|v| {
                    v.split(',')
                        .map(|a| a.trim().to_owned())
                        .filter(|a| !a.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            header_to,
            subject: message.subject().unwrap_or_default().to_owned(),
            message_id: message.message_id().map(str::to_owned),
            text: message
                .body_text(0)
                .map(Cow::into_owned)
                .unwrap_or_default(),
            html: message.body_html(0).map(Cow::into_owned),
            attachments,
        })
    }
}
