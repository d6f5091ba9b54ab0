//! Headless Chromium for the portal's browser tests: Debian's `chromium` driven through
//! `chromedriver` (package `chromium-driver`) on a free loopback port, with a WebDriver session
//! of the `fantoccini` crate speaking plain HTTP to it. Each `Chrome` has its own fresh profile
//! (`--user-data-dir`, removed on drop) and the flags that keep Chromium off the network; it
//! takes screenshots under `target/screenshots/<test>/` and checks pages with npm's `axe-core`
//! (`tests/browser/node_modules`, installed by `scripts/test.sh`). A missing browser, driver or
//! axe-core panics with how to install it: browser tests never skip.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};

use crate::{free_port, pause};

/// Debian's Chromium, unless `$STEWARD_CHROMIUM` names another build of it.
fn chromium() -> PathBuf {
    program("STEWARD_CHROMIUM", "/usr/bin/chromium", "chromium")
}

/// Debian's chromedriver, unless `$STEWARD_CHROMEDRIVER` names another.
fn chromedriver() -> PathBuf {
    program("STEWARD_CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver")
}

fn program(var: &str, default: &str, package: &str) -> PathBuf {
    let p = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        p.exists(),
        "{} is missing: the browser tests need Debian's chromium and chromium-driver \
         (`apt-get install -y chromium chromium-driver`; scripts/test.sh installs them), package {package}",
        p.display()
    );
    p
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/screenshots`, under `$CARGO_TARGET_DIR` when it is set.
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    target.join("screenshots")
}

/// `axe.min.js` of npm's axe-core, as `npm ci --prefix tests/browser` installs it.
fn axe_source() -> String {
    let p = repo_root().join("tests/browser/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}): run `npm ci --prefix tests/browser` (scripts/test.sh does) to install axe-core from npm",
            p.display()
        )
    })
}

/// The flags of every session: headless, and nothing that reaches the internet on its own.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Desktop and phone viewports of [`Chrome::screenshot_both`].
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);

/// One accessibility violation axe-core found on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxeViolation {
    /// The rule, e.g. `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks for, in a sentence.
    pub help: String,
    pub help_url: String,
    /// CSS selectors of the offending elements.
    pub targets: Vec<String>,
}

impl AxeViolation {
    /// Whether it fails [`Chrome::assert_accessible`].
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_str(), "serious" | "critical")
    }
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}: {} ({})", self.impact, self.id, self.help, self.help_url)?;
        for t in &self.targets {
            write!(f, "\n    at {t}")?;
        }
        Ok(())
    }
}

/// A headless Chromium with one WebDriver session; chromedriver and the browser are killed and
/// the profile removed when dropped (prefer [`Chrome::close`], which ends the session first).
pub struct Chrome {
    client: Option<Client>,
    driver: Child,
    dir: PathBuf,
    test: String,
}

impl Chrome {
    /// Starts chromedriver and a headless Chromium for the test named `test`, whose
    /// screenshots go to `target/screenshots/<test>/`. HTTPS servers must have certificates
    /// Chromium trusts: see [`Chrome::start_trusting`] for a test's own CA.
    pub async fn start(test: &str) -> Self {
        Self::launch(test, &[]).await
    }

    /// As [`Chrome::start`], also accepting the servers whose certificate chain holds the
    /// public key of a certificate in `certificates` (PEM files; the throwaway server
    /// certificate or CA of a test), through `--ignore-certificate-errors-spki-list`: every
    /// other certificate error still stops the page.
    pub async fn start_trusting(test: &str, certificates: &[&Path]) -> Self {
        let pins: Vec<String> = certificates.iter().map(|c| spki_sha256(c)).collect();
        Self::launch(test, &pins).await
    }

    async fn launch(test: &str, spki_pins: &[String]) -> Self {
        assert!(
            !test.is_empty() && test.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "a test name for a folder: {test:?}"
        );
        let browser = chromium();
        let driver_program = chromedriver();
        let dir = std::env::temp_dir().join(format!("steward-chrome-{}", uuid::Uuid::new_v4().simple()));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let log = dir.join("chromedriver.log");
        let port = free_port();
        // Its own process group, so that dropping kills the browser it starts as well.
        let mut driver = Command::new(&driver_program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not run: {e}", driver_program.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("chromedriver exited ({status}) before listening on 127.0.0.1:{port}:\n{log}");
            }
            if Instant::now() > deadline {
                let _ = driver.kill();
                panic!("chromedriver did not listen on 127.0.0.1:{port}");
            }
            pause();
        }
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
        if !spki_pins.is_empty() {
            args.push(format!("--ignore-certificate-errors-spki-list={}", spki_pins.join(",")));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("acceptInsecureCerts".into(), json!(false));
        capabilities.insert("goog:chromeOptions".into(), json!({"binary": browser, "args": args}));
        let mut chrome = Self { client: None, driver, dir, test: test.to_owned() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(chrome.dir.join("chromedriver.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                panic!("chromedriver could not start {}: {e}\n{tail}", browser.display())
            });
        chrome.client = Some(client);
        chrome.set_window_size(DESKTOP.0, DESKTOP.1).await;
        chrome
    }

    /// The WebDriver session, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The page's URL now.
    pub async fn current_url(&self) -> String {
        self.client().current_url().await.unwrap().to_string()
    }

    /// The element `css` selects, which must be on the page.
    pub async fn find(&self, css: &str) -> Element {
        match self.client().find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no element {css:?} on {}: {e}", self.current_url().await),
        }
    }

    /// Waits up to `timeout` for an element `css` selects.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        match self.client().wait().at_most(timeout).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no element {css:?} on {} within {timeout:?}: {e}", self.current_url().await),
        }
    }

    /// Waits up to `timeout` until the page's URL starts with `prefix` (after a form post and
    /// its redirects, say); the URL.
    pub async fn wait_for_url(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if url.starts_with(prefix) {
                return url;
            }
            assert!(Instant::now() < deadline, "the page is still at {url} after {timeout:?}, not at {prefix}…");
            pause();
        }
    }

    /// Loads `url` again and again, up to `timeout`, until the text of its `main` contains
    /// `needle` (what a background worker delivers, say); that text.
    pub async fn reload_until(&self, url: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            self.goto(url).await;
            let text = self.text("main").await;
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "{url} never showed {needle:?} in {timeout:?}: {text}");
            pause();
        }
    }

    /// Replaces the value of the field `css` with `text`, typed as keys.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap_or_else(|e| panic!("clearing {css:?}: {e}"));
        field.send_keys(text).await.unwrap_or_else(|e| panic!("typing into {css:?}: {e}"));
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("clicking {css:?}: {e}"));
    }

    /// Submits the form `css` selects by clicking its submit button, as a person would.
    pub async fn submit(&self, css: &str) {
        let form = self.client().form(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no form {css:?}: {e}"));
        form.submit().await.unwrap_or_else(|e| panic!("submitting {css:?}: {e}"));
    }

    /// The rendered text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_else(|e| panic!("text of {css:?}: {e}"))
    }

    /// The page's `document.contentType` (`text/html`, `application/json`, …).
    pub async fn content_type(&self) -> String {
        let v = self.client().execute("return document.contentType", vec![]).await.unwrap();
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Resizes the window so that the page's viewport is `width`×`height` CSS pixels.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        let client = self.client();
        client.set_window_size(width, height).await.unwrap();
        // The window's outer size includes whatever frame the browser draws: correct once by
        // the difference the page sees.
        let inner = client.execute("return [window.innerWidth, window.innerHeight]", vec![]).await.unwrap();
        let (iw, ih) = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
        if (iw, ih) != (u64::from(width), u64::from(height)) && iw > 0 && ih > 0 {
            let w = (2 * u64::from(width)).saturating_sub(iw);
            let h = (2 * u64::from(height)).saturating_sub(ih);
            client.set_window_size(u32::try_from(w).unwrap(), u32::try_from(h).unwrap()).await.unwrap();
        }
    }

    /// Saves a PNG of the viewport at `path`, creating its directories.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client().screenshot().await.unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Screenshots of the page at desktop (1280×900) and phone (390×844) widths, saved as
    /// `target/screenshots/<test>/<page>-desktop.png` and `…-phone.png`; the window is left at
    /// the desktop size. Their paths.
    pub async fn screenshot_both(&self, page: &str) -> [PathBuf; 2] {
        let dir = screenshots_dir().join(&self.test);
        let desktop = dir.join(format!("{page}-desktop.png"));
        let phone = dir.join(format!("{page}-phone.png"));
        self.set_window_size(PHONE.0, PHONE.1).await;
        self.screenshot(&phone).await;
        self.set_window_size(DESKTOP.0, DESKTOP.1).await;
        self.screenshot(&desktop).await;
        [desktop, phone]
    }

    /// Injects axe-core into the page and runs it on the whole document; its violations.
    pub async fn axe(&self) -> Vec<AxeViolation> {
        let client = self.client();
        client.execute(&axe_source(), vec![]).await.unwrap_or_else(|e| panic!("injecting axe-core: {e}"));
        let script = r"
            const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']})
              .then(r => done({violations: r.violations.map(v => ({
                  id: v.id, impact: v.impact || '', help: v.help, helpUrl: v.helpUrl,
                  targets: v.nodes.map(n => n.target.map(t => Array.isArray(t) ? t.join(' >>> ') : t).join(' '))
              }))}))
              .catch(e => done({error: String(e)}));";
        let out = client.execute_async(script, vec![]).await.unwrap_or_else(|e| panic!("running axe-core: {e}"));
        if let Some(error) = out.get("error") {
            panic!("axe-core failed on {}: {error}", self.current_url().await);
        }
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        out["violations"]
            .as_array()
            .expect("axe-core's violations")
            .iter()
            .map(|v| AxeViolation {
                id: text(v, "id"),
                impact: text(v, "impact"),
                help: text(v, "help"),
                help_url: text(v, "helpUrl"),
                targets: v["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
            })
            .collect()
    }

    /// Runs axe-core and panics listing every `serious` or `critical` violation; the others,
    /// which do not fail, are returned.
    pub async fn assert_accessible(&self) -> Vec<AxeViolation> {
        let (serious, rest): (Vec<_>, Vec<_>) = self.axe().await.into_iter().partition(AxeViolation::is_serious);
        if !serious.is_empty() {
            let list: Vec<String> = serious.iter().map(ToString::to_string).collect();
            panic!(
                "axe-core found {} serious or critical accessibility violation(s) on {}:\n{}",
                serious.len(),
                self.current_url().await,
                list.join("\n")
            );
        }
        rest
    }

    /// Ends the WebDriver session (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // chromedriver's process group: chromedriver, Chromium and its helpers.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the (first) certificate in the PEM file `cert`,
/// as `--ignore-certificate-errors-spki-list` takes it; computed with openssl.
fn spki_sha256(cert: &Path) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "set -euo pipefail; openssl x509 -in \"$1\" -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64 -A",
        )
        .arg("bash")
        .arg(cert)
        .stdin(Stdio::null())
        .output()
        .expect("bash and openssl run (Debian package openssl)");
    let pin = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && pin.len() == 44,
        "the public key hash of {}: {}",
        cert.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    pin
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness itself: viewports, a screenshot, and axe-core failing a page that breaks
    /// its rules (an image without text, a field without a label).
    #[tokio::test]
    async fn sizes_screenshots_and_finds_violations() {
        let chrome = Chrome::start("testpeers_chrome").await;
        let page = "<!doctype html><html lang=en><head><title>t</title></head><body><main>\
                    <h1 id=h>Hello</h1><img src=x.png><input type=text></main></body></html>";
        chrome.goto(&format!("data:text/html,{}", page.replace('#', "%23"))).await;
        assert_eq!(chrome.text("#h").await, "Hello");
        assert_eq!(chrome.content_type().await, "text/html");
        let [desktop, phone] = chrome.screenshot_both("data-page").await;
        for (png, size) in [(&desktop, DESKTOP), (&phone, PHONE)] {
            let bytes = std::fs::read(png).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            // IHDR: width and height, big-endian, at bytes 16..24 (device pixels, ratio 1).
            let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
            let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
            assert_eq!((w, h), size, "{}", png.display());
        }
        let violations = chrome.axe().await;
        let ids: Vec<&str> = violations.iter().map(|v| v.id.as_str()).collect();
        assert!(ids.contains(&"image-alt") && ids.contains(&"label"), "{ids:?}");
        assert!(violations.iter().any(AxeViolation::is_serious));
        let image = violations.iter().find(|v| v.id == "image-alt").unwrap();
        assert_eq!(image.targets, vec!["img".to_owned()]);
        chrome.close().await;
    }
}
