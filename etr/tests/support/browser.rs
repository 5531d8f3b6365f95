//! Browser tests: Debian's Chromium, headless, driven over WebDriver (`fantoccini` through
//! `chromedriver`, both installed by `scripts/env.sh`'s `ensure_browser`), against pages the
//! test platform serves on 127.0.0.1. The browser runs as if the network were unplugged:
//! every host name but 127.0.0.1 is unresolvable and every other address goes to a closed
//! proxy, so a page that needs anything from elsewhere fails to render. The browser's
//! requests and console are recorded ([`Browser::requests`], [`Browser::console`]).
//!
//! [`Browser::check`] runs a test's steps; when one fails it saves a screenshot and the page's
//! HTML under `target/browser-tests/` and fails the test with the step's message.

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{json, Value};
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where browser tests keep screenshots: the workspace's `target/browser-tests/`.
pub fn artifacts_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-tests");
    std::fs::create_dir_all(&dir).expect("create target/browser-tests");
    dir
}

/// A headless Chromium session; the driver and the browser stop when it is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    name: String,
}

/// One WebDriver log (`browser` for the console, `performance` for DevTools events).
#[derive(Debug)]
struct ReadLog(&'static str);

impl WebDriverCompatibleCommand for ReadLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": self.0 }).to_string()),
        )
    }
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium with a fresh profile; `name` names the
    /// files a failure leaves under `target/browser-tests/`.
    pub async fn start(name: &str) -> Browser {
        let port = super::free_port();
        let driver = Command::new(
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
        )
        .arg(format!("--port={port}"))
        // Its own process group, so the browser it starts is stopped with it.
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (scripts/env.sh ensure_browser installs it)");
        for stale in ["png", "html"] {
            let _ = std::fs::remove_file(artifacts_dir().join(format!("{name}-failure.{stale}")));
        }
        let profile = tempfile::tempdir().expect("a profile directory");
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--window-size=1400,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
            // The network unplugged: no name resolves but the loopback address, and anything
            // not on loopback goes to a proxy nobody listens on.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1".into(),
            "--proxy-server=http://127.0.0.1:9".into(),
        ];
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": args,
            }),
        );
        capabilities.insert(
            "goog:loggingPrefs".into(),
            json!({ "browser": "ALL", "performance": "ALL" }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "no browser session from chromedriver: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
            name: name.to_owned(),
        }
    }

    /// Runs `steps`; if one panics, keeps a screenshot (`<name>-failure.png`) and the page's
    /// HTML (`<name>-failure.html`) under `target/browser-tests/`, then fails with its message.
    pub async fn check<'a, F, Fut>(&'a self, steps: F)
    where
        F: FnOnce(&'a Browser) -> Fut,
        Fut: Future<Output = ()> + 'a,
    {
        if let Err(panic) = AssertUnwindSafe(steps(self)).catch_unwind().await {
            let dir = artifacts_dir();
            let png = dir.join(format!("{}-failure.png", self.name));
            match self.client.screenshot().await {
                Ok(bytes) => {
                    let _ = std::fs::write(&png, bytes);
                    eprintln!("screenshot of the failure: {}", png.display());
                }
                Err(e) => eprintln!("no screenshot of the failure: {e}"),
            }
            if let Ok(html) = self.client.source().await {
                let _ = std::fs::write(dir.join(format!("{}-failure.html", self.name)), html);
            }
            for line in self.console().await {
                eprintln!("console: {line}");
            }
            std::panic::resume_unwind(panic);
        }
    }

    /// Opens `url` (waits for the document to load).
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// Waits (up to `within`) for an element matching `css` whose text contains `needle`;
    /// returns its text.
    pub async fn wait_for_text(&self, css: &str, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        loop {
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for e in elements {
                    if let Ok(text) = e.text().await {
                        if text.contains(needle) {
                            return text;
                        }
                        last = text;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no `{css}` containing {needle:?} within {within:?}; last seen: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to `within`) until `script` (a JavaScript function body) returns something
    /// other than null, false or undefined; returns it.
    pub async fn wait_for_js(&self, script: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.client.execute(script, vec![]).await.expect("script");
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "`{script}` stayed {value} for {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` to click: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot_to(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// The console messages since the last call (`LEVEL message`).
    pub async fn console(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(ReadLog("browser"))
            .await
            .unwrap_or(Value::Null);
        entries
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| format!("{} {}", e["level"], e["message"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every URL the browser requested since the last call (page loads, scripts, styles,
    /// fetches, websockets), from the DevTools network events.
    pub async fn requests(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(ReadLog("performance"))
            .await
            .expect("performance log");
        let mut urls = Vec::new();
        for entry in entries.as_array().into_iter().flatten() {
            let Some(text) = entry["message"].as_str() else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            let params = &message["message"]["params"];
            match message["message"]["method"].as_str() {
                Some("Network.requestWillBeSent") => {
                    if let Some(u) = params["request"]["url"].as_str() {
                        urls.push(u.to_owned());
                    }
                }
                Some("Network.webSocketCreated") => {
                    if let Some(u) = params["url"].as_str() {
                        urls.push(u.to_owned());
                    }
                }
                _ => {}
            }
        }
        urls
    }

    /// Asserts that every network request since the last call went to `origin`
    /// (`host:port`) — nothing from another host — that no link, image or form of the
    /// rendered page points to another host, and that the console shows no error (a refused
    /// load, a policy violation, an exception, a failed request).
    pub async fn assert_self_contained(&self, origin: &str) {
        let requests = self.requests().await;
        assert!(!requests.is_empty(), "no request recorded");
        // Browser-internal pages (`chrome://`, `about:`) and inline `data:` are no network.
        let network = requests.iter().filter(|u| {
            ["http:", "https:", "ws:", "wss:"]
                .iter()
                .any(|scheme| u.starts_with(scheme))
        });
        for url in network {
            let own = ["http://", "ws://"]
                .iter()
                .any(|scheme| url.starts_with(&format!("{scheme}{origin}/")));
            assert!(own, "the page requested {url}, not from {origin}");
        }
        // Nor does the rendered page link anywhere else (a logo, a licence, a badge).
        let foreign = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll('[href],[src],[action],[srcset]')) \
                   .flatMap(e => ['href', 'src', 'action', 'srcset'].map(a => e.getAttribute(a))) \
                   .filter(v => v) \
                   .map(v => { try { return new URL(v, location.href); } catch (e) { return null; } }) \
                   .filter(u => u && /^(https?|wss?):$/.test(u.protocol) && u.host !== location.host) \
                   .map(u => u.href);",
                vec![],
            )
            .await
            .expect("links of the page");
        assert_eq!(foreign, json!([]), "the page links to another host");
        let errors: Vec<String> = self
            .console()
            .await
            .into_iter()
            .filter(|l| l.starts_with("\"SEVERE\""))
            .collect();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    /// Ends the session; the driver and the browser stop as the value is dropped.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Stops the driver's process group (the driver and the browser it started).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
    }
}
