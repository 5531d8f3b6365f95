//! Browser pages the platform serves (GraphiQL, the REST API reference) and their static
//! assets, all compiled into the binary: nothing a page needs is fetched from another host.
//!
//! Vendored front-end builds come from the npm registry at fixed versions; each crate that
//! serves some keeps them under `assets/vendor/<package>-<version>/` with their licences, and
//! lists every file with its package, version, the tarball's npm `integrity` and the file's
//! SHA-256 in `assets/VENDORED` ([`vendored`] reads it, [`verify_vendored`] checks it;
//! `scripts/vendor-assets` fetches the tarballs again and compares). Every served text
//! file's absolute URLs must name hosts listed in `assets/HOSTS` with the reason none of them
//! is ever fetched ([`external_hosts`], [`unlisted_hosts`]).
//!
//! Pages answer with [`CONTENT_SECURITY_POLICY`]: scripts, styles, fonts, images and
//! connections (the origin's own websocket included) from the serving origin only, plus
//! `data:` fonts and images inlined in the stylesheets, so a page cannot load anything from
//! elsewhere even if a bundle tried.

use crate::error::{Error, Result};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// The policy every page is served with: nothing from another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// One static file served under a fixed path.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The path it is served at, e.g. `/assets/react-18.3.1/react.production.min.js`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// Whether the path names a fixed version of the bytes (a vendored build), so browsers
    /// may keep it for a year; the platform's own files are revalidated on every load.
    pub versioned: bool,
}

/// `Content-Type` of JavaScript files.
pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// `Content-Type` of stylesheets.
pub const CSS: &str = "text/css; charset=utf-8";
/// `Content-Type` of plain text (licences).
pub const TEXT: &str = "text/plain; charset=utf-8";
/// `Content-Type` of HTML pages.
pub const HTML: &str = "text/html; charset=utf-8";

impl Asset {
    /// The file, cached for a year when [`Asset::versioned`], else revalidated.
    pub fn response(&self) -> Response {
        let cache = if self.versioned {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(self.content_type),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            self.body,
        )
            .into_response()
    }
}

/// A page: HTML under [`CONTENT_SECURITY_POLICY`], revalidated on every load.
pub fn page(html: impl Into<axum::body::Body>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(HTML)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        html.into(),
    )
        .into_response()
}

/// The asset served at `path`, if any.
pub fn find<'a>(assets: &'a [Asset], path: &str) -> Option<&'a Asset> {
    assets.iter().find(|a| a.path == path)
}

/// Every host named by an absolute `http://` or `https://` URL in `text` (lower case),
/// e.g. `www.w3.org` for the SVG namespace; a bare scheme (`'http://' + rest`) names none.
pub fn external_hosts(text: &str) -> BTreeSet<String> {
    let mut hosts = BTreeSet::new();
    let lower = text.to_ascii_lowercase();
    for scheme in ["http://", "https://"] {
        let mut rest = lower.as_str();
        while let Some(at) = rest.find(scheme) {
            let after = &rest[at + scheme.len()..];
            let host: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            if !host.is_empty() {
                hosts.insert(host);
            }
            rest = after;
        }
    }
    hosts
}

/// The hosts of `text` ([`external_hosts`]) that `listed` does not name.
pub fn unlisted_hosts(text: &str, listed: &BTreeSet<String>) -> BTreeSet<String> {
    external_hosts(text)
        .into_iter()
        .filter(|h| !listed.contains(h))
        .collect()
}

/// The hosts of an `assets/HOSTS` file: the first word of each line that is neither empty
/// nor a `#` comment (the rest of the line is the reason the host is never fetched).
pub fn listed_hosts(hosts_file: &str) -> BTreeSet<String> {
    hosts_file
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// One line of an `assets/VENDORED` file: a file taken unchanged from an npm tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendored {
    pub package: String,
    pub version: String,
    /// The tarball's npm `integrity` (`sha512-…`, as the registry publishes it).
    pub integrity: String,
    /// The file's path inside the tarball (`package/…`).
    pub tarball_path: String,
    /// The file's path under the crate's `assets/`.
    pub file: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// Reads an `assets/VENDORED` file: whitespace-separated `package version integrity
/// tarball_path file sha256` per line; empty lines and `#` comments are skipped. A line with
/// another number of fields is an [`Error::Config`] naming it.
pub fn vendored(text: &str) -> Result<Vec<Vendored>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [package, version, integrity, tarball_path, file, sha256] => Ok(Vendored {
                package: package.into(),
                version: version.into(),
                integrity: integrity.into(),
                tarball_path: tarball_path.into(),
                file: file.into(),
                sha256: sha256.into(),
            }),
            _ => Err(Error::Config(format!("malformed VENDORED line: {l}"))),
        })
        .collect()
}

/// Checks each vendored file's SHA-256 against its `VENDORED` line; `read` gives a file's
/// bytes by its path under `assets/`. Returns one message per file that is missing or
/// differs (empty when all match).
pub fn verify_vendored(lines: &[Vendored], read: impl Fn(&str) -> Option<Vec<u8>>) -> Vec<String> {
    lines
        .iter()
        .filter_map(|v| match read(&v.file) {
            None => Some(format!("{} is missing", v.file)),
            Some(bytes) => {
                let actual = hex::encode(Sha256::digest(&bytes));
                (actual != v.sha256).then(|| {
                    format!(
                        "{} has SHA-256 {actual}, VENDORED records {} ({}@{})",
                        v.file, v.sha256, v.package, v.version
                    )
                })
            }
        })
        .collect()
}

/// Everything wrong with a page's files, for its crate's tests (empty when nothing is): a
/// vendored file missing or differing from its `VENDORED` line (`vendored_text`, files read
/// from `assets_dir`), a served vendored asset `VENDORED` does not list, a host in `html` or in
/// the page's own files, a host in a vendored file that `hosts_text` (the `HOSTS` file) does not
/// admit.
pub fn asset_problems(
    assets: &[Asset],
    html: &str,
    vendored_text: &str,
    hosts_text: &str,
    assets_dir: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let lines = match vendored(vendored_text) {
        Ok(lines) => lines,
        Err(e) => return vec![e.to_string()],
    };
    problems.extend(verify_vendored(&lines, |file| {
        std::fs::read(format!("{assets_dir}/{file}")).ok()
    }));
    let listed = listed_hosts(hosts_text);
    problems.extend(
        external_hosts(html)
            .into_iter()
            .map(|h| format!("the page names host {h}")),
    );
    for asset in assets {
        let text = String::from_utf8_lossy(asset.body);
        if asset.versioned {
            let file = asset.path.replacen("/assets/", "vendor/", 1);
            if !lines.iter().any(|l| l.file == file) {
                problems.push(format!("{} is not in VENDORED", asset.path));
            }
            for host in unlisted_hosts(&text, &listed) {
                problems.push(format!("{} names host {host}, not in HOSTS", asset.path));
            }
        } else {
            for host in external_hosts(&text) {
                problems.push(format!("{} names host {host}", asset.path));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_absolute_urls_are_found_in_any_case() {
        let text = r#"<svg xmlns="http://www.w3.org/2000/svg"> src="HTTPS://cdn.Example.com/x.js" href="/assets/a.css" ws://localhost"#;
        let hosts: Vec<String> = external_hosts(text).into_iter().collect();
        assert_eq!(hosts, vec!["cdn.example.com", "www.w3.org"]);
    }

    #[test]
    fn unlisted_hosts_are_reported() {
        let listed = listed_hosts("# why\nwww.w3.org  XML namespaces, never fetched\n\n");
        let text = "http://www.w3.org/2000/svg https://unpkg.com/react";
        assert_eq!(
            unlisted_hosts(text, &listed)
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["unpkg.com"]
        );
    }

    #[test]
    fn vendored_lines_are_parsed_and_checked() {
        let lines = vendored(
            "# package version integrity tarball_path file sha256\n\
             x 1.0.0 sha512-AAAA package/a.js vendor/x-1.0.0/a.js 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n",
        )
        .unwrap();
        assert_eq!(lines[0].file, "vendor/x-1.0.0/a.js");
        assert!(verify_vendored(&lines, |_| Some(b"hello".to_vec())).is_empty());
        assert_eq!(
            verify_vendored(&lines, |_| Some(b"hullo".to_vec())).len(),
            1
        );
        assert_eq!(
            verify_vendored(&lines, |_| None),
            vec!["vendor/x-1.0.0/a.js is missing"]
        );
        assert!(vendored("x 1.0.0 only-three").is_err());
    }

    #[test]
    fn pages_carry_the_policy_and_assets_are_cached() {
        let r = page("<html></html>");
        assert_eq!(
            r.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(r.headers()[header::CONTENT_TYPE], HTML);
        let a = Asset {
            path: "/assets/a.js",
            content_type: JAVASCRIPT,
            body: b"1",
            versioned: true,
        };
        let r = a.response();
        assert_eq!(r.headers()[header::CONTENT_TYPE], JAVASCRIPT);
        assert!(r.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
    }
}
