//! Saying what is wrong with an ASCII-armored block (RFC 9580 §6.2) that the `pgp` crate could
//! not read, on one line: its own messages are parser internals (a nom error listing the rest of
//! the input as decimal bytes). Diagnosis only: whether a block is accepted is still the `pgp`
//! crate's decision, so this never refuses what it reads.

/// The first problem of an armored block, as `(line, what)`: `line` counts from 1 at the first
/// line of `block`. `None` when the armor looks well formed (then the problem is in the packets
/// it holds).
pub(crate) fn problem(block: &[u8]) -> Option<(usize, String)> {
    let mut lines = block
        .split(|&b| b == b'\n')
        .map(trim_end)
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .skip_while(|(_, l)| l.is_empty());
    let Some((begin_at, begin)) = lines.next() else {
        return Some((1, "empty: no -----BEGIN PGP …----- line".into()));
    };
    let Some(label) = begin
        .strip_prefix(b"-----BEGIN PGP ")
        .and_then(|rest| rest.strip_suffix(b"-----"))
    else {
        return Some((
            begin_at,
            format!(
                "expected a -----BEGIN PGP …----- line, found {}",
                quote(begin)
            ),
        ));
    };
    let end_line = [b"-----END PGP ", label, b"-----"].concat();

    // Armor headers (`Key: value`) up to a blank line.
    let mut last = begin_at;
    loop {
        let Some((at, line)) = lines.next() else {
            return Some((
                last,
                format!("the block ends before its data (no {})", text(&end_line)),
            ));
        };
        last = at;
        if line.is_empty() {
            break;
        }
        if line.starts_with(b"-----END PGP ") {
            return Some((at, "the block holds no data".into()));
        }
        if !is_header(line) {
            let what = if is_base64(line) {
                "no blank line between the armor headers and the data".to_string()
            } else {
                format!("not an armor header ({})", quote(line))
            };
            return Some((at, what));
        }
    }

    // Base64 data, an optional `=XXXX` checksum, the end line.
    let mut data_chars = 0usize;
    let mut padded = false;
    let mut checksum: Option<usize> = None;
    loop {
        let Some((at, line)) = lines.next() else {
            return Some((last, format!("the block has no {} line", text(&end_line))));
        };
        if line.is_empty() {
            continue;
        }
        last = at;
        if line.starts_with(b"-----") {
            if line != end_line.as_slice() {
                return Some((
                    at,
                    format!("expected {}, found {}", text(&end_line), quote(line)),
                ));
            }
            if data_chars == 0 {
                return Some((at, "the block holds no data".into()));
            }
            if data_chars % 4 == 1 {
                return Some((at, "the base64 data is cut short".into()));
            }
            return None;
        }
        if let Some(line_at) = checksum {
            return Some((
                line_at,
                "the checksum line (=XXXX) is not the last line before the end".into(),
            ));
        }
        if line.len() == 5 && line[0] == b'=' && is_base64(&line[1..]) {
            checksum = Some(at);
            continue;
        }
        let digits = line.iter().take_while(|&&b| b != b'=').count();
        let base64 = is_base64(&line[..digits])
            && line[digits..].iter().all(|&b| b == b'=')
            && line.len() - digits <= 2;
        if !base64 {
            return Some((at, format!("not base64 ({})", quote(line))));
        }
        if padded {
            return Some((at, "data after the base64 padding (=)".into()));
        }
        padded = digits < line.len();
        data_chars += digits;
    }
}

fn is_base64(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// `Name: value`, as GnuPG writes `Version:`, `Comment:`, `Hash:` and the like.
fn is_header(line: &[u8]) -> bool {
    let Some(colon) = line.windows(2).position(|w| w == b": ") else {
        return line.ends_with(b":") && line.len() > 1 && !line.contains(&b' ');
    };
    colon > 0
        && line[..colon]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A line for a message: in backquotes, control characters as `?`, at most 40 characters.
fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut shown: String = text
        .chars()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > 40 {
        shown.push('…');
    }
    format!("`{shown}`")
}

/// The line number (from 1) of byte `at` of `bytes`.
pub(crate) fn line_of(bytes: &[u8], at: usize) -> usize {
    bytes
        .get(..at)
        .unwrap_or(bytes)
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "-----BEGIN PGP SIGNATURE-----\nComment: x\n\niQEzBAEB\nCgAdFg==\n=qXpw\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn well_formed_armor_has_no_problem() {
        assert_eq!(problem(GOOD.as_bytes()), None);
        assert_eq!(problem(GOOD.replace('\n', "\r\n").as_bytes()), None);
        assert_eq!(problem(GOOD.replace("=qXpw\n", "").as_bytes()), None);
        assert_eq!(problem(GOOD.replace("Comment: x\n", "").as_bytes()), None);
    }

    #[test]
    fn pgp_internals_are_left_out_of_messages() {
        let nom =
            "failed reading: armor header Error(Error { input: [34, 115, 10, 74], code: Tag })";
        assert_eq!(super::super::one_line(&nom), "failed reading: armor header");
        let assertion = "assertion failed: `(left == right)`\n  left: `[27, 98]`,\n right: \
                         `[83, 105]`: signature: invalid signed hash value";
        assert_eq!(
            super::super::one_line(&assertion),
            "signature: invalid signed hash value"
        );
        let long = "x ".repeat(200);
        assert_eq!(super::super::one_line(&long).chars().count(), 161);
        assert_eq!(super::super::one_line(&"a\n  b"), "a b");
    }

    #[test]
    fn each_problem_names_its_line() {
        let cases = [
            (
                GOOD.replace("CgAdFg==", "\"sjson\": 1,"),
                5,
                "not base64 (`\"sjson\": 1,`)",
            ),
            (
                GOOD.replace("Comment: x\n\n", ""),
                2,
                "no blank line between",
            ),
            (
                GOOD.replace("Comment: x", "what is this"),
                2,
                "not an armor header",
            ),
            (
                GOOD.replace("-----END PGP SIGNATURE-----\n", ""),
                6,
                "has no -----END PGP SIGNATURE----- line",
            ),
            (
                GOOD.replace("END PGP SIGNATURE", "END PGP MESSAGE"),
                7,
                "expected -----END PGP SIGNATURE-----",
            ),
            (GOOD.replace("CgAdFg==", "CgAdF"), 7, "cut short"),
            (
                GOOD.replace("iQEzBAEB\nCgAdFg==\n=qXpw\n", ""),
                4,
                "holds no data",
            ),
            (GOOD.replace("=qXpw\n", "=qXpw\nAAAA\n"), 6, "checksum line"),
            (
                GOOD.replace("CgAdFg==", "Cg==\nAAAA"),
                6,
                "after the base64 padding",
            ),
            ("{\"a\": 1}".to_string(), 1, "expected a -----BEGIN PGP"),
        ];
        for (block, line, what) in cases {
            let (at, message) = problem(block.as_bytes()).unwrap_or_else(|| panic!("{block}"));
            assert_eq!(at, line, "{block}: {message}");
            assert!(message.contains(what), "{block}: {message}");
            assert!(!message.contains('\n'));
        }
    }
}
