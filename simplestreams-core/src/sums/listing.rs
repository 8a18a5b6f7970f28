//! Directory listings served as HTML (nginx `autoindex`, Apache `mod_autoindex`, Python's
//! `http.server`, S3-style index pages): only the links are read, never the sizes or dates
//! shown beside them (their formats differ from server to server, and Apache rounds sizes).

/// The entries of a directory listing page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// Files directly in the directory, by name, in page order.
    pub files: Vec<String>,
    /// Subdirectories directly in it, by name (without the trailing `/`), in page order.
    pub dirs: Vec<String>,
}

/// Reads the links of an HTML directory listing of the directory whose URL path is
/// `dir_path` (`/images/cloud/bookworm/`). Kept: relative links to a direct child (`a.img`,
/// `20240211-1651/`, percent-encoded or not, `./` allowed) and absolute links below
/// `dir_path`. Left out: the parent (`../`), sort links (`?C=N;O=D`), fragments, other
/// hosts and schemes, anything deeper than one level.
///
/// ```
/// use simplestreams_core::sums::parse_listing;
/// let page = r#"<html><body><h1>Index of /cloud/</h1><a href="../">../</a>
/// <a href="20240211-1651/">20240211-1651/</a> 11-Feb-2024 16:51 -
/// <a href="SHA512SUMS">SHA512SUMS</a> <a href="?C=M;O=A">Last modified</a>"#;
/// let l = parse_listing(page, "/cloud/");
/// assert_eq!(l.dirs, ["20240211-1651"]);
/// assert_eq!(l.files, ["SHA512SUMS"]);
/// ```
pub fn parse_listing(html: &str, dir_path: &str) -> Listing {
    let mut out = Listing::default();
    let dir_path = if dir_path.ends_with('/') {
        dir_path.to_string()
    } else {
        format!("{dir_path}/")
    };
    for href in hrefs(html) {
        let href = decode_entities(&href);
        let href = href
            .split(['#', '?'])
            .next()
            .unwrap_or_default()
            .to_string();
        if href.is_empty() || href.contains("://") || href.starts_with("//") {
            continue;
        }
        if href.starts_with("mailto:") || href.starts_with("javascript:") {
            continue;
        }
        let rel = if let Some(abs) = href.strip_prefix('/') {
            match format!("/{abs}").strip_prefix(dir_path.as_str()) {
                Some(rest) => rest.to_string(),
                None => continue,
            }
        } else {
            href.strip_prefix("./").unwrap_or(&href).to_string()
        };
        let Some(name) = percent_decode(&rel) else {
            continue;
        };
        let (name, is_dir) = match name.strip_suffix('/') {
            Some(d) => (d.to_string(), true),
            None => (name, false),
        };
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            continue;
        }
        let list = if is_dir {
            &mut out.dirs
        } else {
            &mut out.files
        };
        if !list.contains(&name) {
            list.push(name);
        }
    }
    out
}

/// The values of every `href` attribute, quoted or not.
fn hrefs(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(pos) = lower[at..].find("href") {
        let start = at + pos + 4;
        at = start;
        // Only an attribute: preceded by white space, followed by `=`.
        let before = lower[..start - 4].chars().next_back();
        if !before.is_some_and(|c| c.is_ascii_whitespace()) {
            continue;
        }
        let rest = html[start..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or_default(),
            Some(_) => rest
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or_default(),
            None => "",
        };
        out.push(value.to_string());
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `%XX` decoding; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_apache_and_python_pages_give_the_same_entries() {
        let nginx = r#"<html><head><title>Index of /d/</title></head><body><h1>Index of /d/</h1><hr><pre><a href="../">../</a>
<a href="release-20240423/">release-20240423/</a>                                  23-Apr-2024 10:00       -
<a href="SHA256SUMS">SHA256SUMS</a>                                         23-Apr-2024 10:00     1234
<a href="noble%20x.img">noble x.img</a>                                         23-Apr-2024 10:00     1234
</pre><hr></body></html>"#;
        let apache = r#"<table><tr><th><a href="?C=N;O=D">Name</a></th></tr>
<tr><td><a href="/d/">Parent Directory</a></td></tr>
<tr><td><a href="release-20240423/">release-20240423/</a></td><td align="right">2024-04-23 10:00  </td></tr>
<tr><td><a href="SHA256SUMS">SHA256SUMS</a></td><td align="right">1.2K</td></tr>
<tr><td><a href='noble x.img'>noble x.img</a></td></tr></table>"#;
        let python = r#"<ul><li><a href="release-20240423/">release-20240423/</a></li>
<li><a href="SHA256SUMS">SHA256SUMS</a></li><li><a href="noble%20x.img">noble x.img</a></li></ul>"#;
        for page in [nginx, apache, python] {
            let l = parse_listing(page, "/d/");
            assert_eq!(l.dirs, ["release-20240423"], "{page}");
            assert_eq!(l.files, ["SHA256SUMS", "noble x.img"], "{page}");
        }
    }

    #[test]
    fn absolute_links_below_the_directory_count_and_others_do_not() {
        let page = r#"<a href="/d/a.img">a</a><a href="/elsewhere/b.img">b</a>
<a href="http://other/c.img">c</a><a href="sub/deeper.img">x</a><a href="./e.img">e</a>
<a class="x" href=f.img>f</a><link rel=stylesheet href="/style.css">"#;
        let l = parse_listing(page, "/d");
        assert_eq!(l.files, ["a.img", "e.img", "f.img"]);
        assert!(l.dirs.is_empty());
    }
}
