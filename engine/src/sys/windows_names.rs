//! How Windows paths and names map to the bytes snap records, and back.
//! Pure functions, compiled everywhere so that the rules are tested on
//! every platform (format-spec.md section 8 gives them with vectors).
//!
//! A Windows name is UTF-16 that may hold unpaired surrogates; snap
//! records it as WTF-8 (`OsStr::as_encoded_bytes`), which is plain UTF-8
//! for every name without an unpaired surrogate. Paths are recorded with
//! `/` separators and the drive as the first component: `C:\Users\me` is
//! `/C/Users/me`, the way restic records it, so that snapshots of one
//! folder from Windows and from Linux list alike.
//!
//! Restoring on Windows a name that Windows cannot hold escapes it,
//! reversibly, the way Cygwin and WSL do: each character Windows forbids
//! in a name becomes the private-use character U+F000 plus its code, and a
//! byte that is not UTF-8 becomes U+F000 plus the byte. Linux and macOS
//! restore names as recorded.

/// Characters Windows refuses in a name, besides controls (below 0x20).
const FORBIDDEN: &[char] = &['"', '*', ':', '<', '>', '?', '\\', '|'];

/// Device names that Windows reserves with any extension, compared without
/// case.
const RESERVED: &[&str] = &[
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "CONIN$",
    "CONOUT$",
    "COM1",
    "COM2",
    "COM3",
    "COM4",
    "COM5",
    "COM6",
    "COM7",
    "COM8",
    "COM9",
    "LPT1",
    "LPT2",
    "LPT3",
    "LPT4",
    "LPT5",
    "LPT6",
    "LPT7",
    "LPT8",
    "LPT9",
    "COM\u{b9}",
    "COM\u{b2}",
    "COM\u{b3}",
    "LPT\u{b9}",
    "LPT\u{b2}",
    "LPT\u{b3}",
];

/// Where escaped characters and bytes go: U+F000 plus the code.
const ESCAPE_BASE: u32 = 0xF000;

fn escaped(code: u32) -> char {
    char::from_u32(ESCAPE_BASE + code).expect("U+F000..U+F0FF are characters")
}

/// A recorded name as Windows can hold it, or `None` when it can as it is.
pub fn escape_name(name: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut changed = false;
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if (c as u32) < 0x20 || FORBIDDEN.contains(&c) {
                out.push(escaped(c as u32));
                changed = true;
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            out.push(escaped(b as u32));
            changed = true;
        }
    }
    // Windows drops trailing dots and spaces: the last one is escaped.
    if let Some(last) = out.chars().last().filter(|c| matches!(c, '.' | ' ')) {
        out.pop();
        out.push(escaped(last as u32));
        changed = true;
    }
    // `CON`, `con.txt`: the stem's last character is escaped.
    // Windows ignores spaces before the extension too: `CON .txt` is CON.
    let stem_len = out[..out.find('.').unwrap_or(out.len())]
        .trim_end_matches(' ')
        .len();
    if RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&out[..stem_len]))
    {
        let last = out[..stem_len]
            .chars()
            .last()
            .expect("reserved names are not empty");
        let at = stem_len - last.len_utf8();
        out.replace_range(at..stem_len, &escaped(last as u32).to_string());
        changed = true;
    }
    changed.then_some(out)
}

/// A Windows path, as the WTF-8 bytes of its `OsStr`, as snap records it:
/// `C:\a` → `/C/a`, `\\server\share\a` → `/UNC/server/share/a`, the
/// verbatim forms (`\\?\C:\a`, `\\?\UNC\server\share\a`) alike. A relative
/// path keeps its place and gets `/` separators.
pub fn recorded_path(windows: &[u8]) -> Vec<u8> {
    let p = windows
        .strip_prefix(br"\\?\UNC\")
        .map(|rest| [br"\\".as_slice(), rest].concat())
        .or_else(|| windows.strip_prefix(br"\\?\").map(<[u8]>::to_vec))
        .unwrap_or_else(|| windows.to_vec());
    let mut out = Vec::with_capacity(p.len() + 4);
    let rest: &[u8] = if let Some(unc) = p.strip_prefix(br"\\") {
        out.extend_from_slice(b"/UNC/");
        unc
    } else if p.len() >= 2 && p[1] == b':' && p[0].is_ascii_alphabetic() {
        out.push(b'/');
        out.push(p[0].to_ascii_uppercase());
        let rest = &p[2..];
        if !rest.is_empty() && !rest.starts_with(b"\\") && !rest.starts_with(b"/") {
            out.push(b'/');
        }
        rest
    } else {
        &p
    };
    out.extend(rest.iter().map(|&b| if b == b'\\' { b'/' } else { b }));
    out
}

/// The inverse of [`recorded_path`], as a path Windows can use: `/C/a` →
/// `C:\a`, `/UNC/s/sh/a` → `\\s\sh\a`; another absolute path (one
/// recorded on Linux or macOS) stays rooted, on the current drive. Every
/// component is escaped by [`escape_name`] (`.` and `..` excepted, which a
/// link target needs), so only the leading `/X` form names a drive: a
/// component `C:` from storage could otherwise make `join` leave the
/// folder it joins onto.
pub fn windows_path(recorded: &[u8]) -> String {
    let mut out = String::with_capacity(recorded.len() + 2);
    let rest = if let Some(unc) = recorded.strip_prefix(b"/UNC/") {
        out.push_str("\\\\");
        unc
    } else if recorded.len() >= 2
        && recorded[0] == b'/'
        && recorded[1].is_ascii_alphabetic()
        && matches!(recorded.get(2), None | Some(b'/'))
    {
        out.push(recorded[1] as char);
        out.push_str(":\\");
        recorded.get(3..).unwrap_or_default()
    } else if let Some(rooted) = recorded.strip_prefix(b"/") {
        out.push('\\');
        rooted
    } else {
        recorded
    };
    for (i, part) in rest.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push('\\');
        }
        match part {
            b"." | b".." => out.push_str(if part == b"." { "." } else { ".." }),
            _ => match escape_name(part) {
                Some(e) => out.push_str(&e),
                None => out.push_str(std::str::from_utf8(part).unwrap_or_default()),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_windows_forbids_are_escaped_reversibly() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"plain.txt", None),
            ("caf\u{e9}".as_bytes(), None),
            (b"a:b", Some("a\u{f03a}b")),
            (b"what?*", Some("what\u{f03f}\u{f02a}")),
            (b"back\\slash", Some("back\u{f05c}slash")),
            (b"<\"|>", Some("\u{f03c}\u{f022}\u{f07c}\u{f03e}")),
            (b"tab\there", Some("tab\u{f009}here")),
            (b"trailing.", Some("trailing\u{f02e}")),
            (b"trailing ", Some("trailing\u{f020}")),
            (b"CON", Some("CO\u{f04e}")),
            (b"con.txt", Some("co\u{f06e}.txt")),
            (b"Com1.tar.gz", Some("Com\u{f031}.tar.gz")),
            (b"CONSOLE", None),
            (b"lpt10", None),
            ("COM\u{b2}".as_bytes(), Some("COM\u{f0b2}")),
            (b"CON .txt", Some("CO\u{f04e} .txt")),
            (b"nul  .tar.gz", Some("nu\u{f06c}  .tar.gz")),
            (b"bad\xffbyte", Some("bad\u{f0ff}byte")),
        ];
        for (name, want) in cases {
            assert_eq!(escape_name(name).as_deref(), *want, "{:?}", name);
        }
    }

    #[test]
    fn escaped_names_are_ones_windows_accepts() {
        for name in [&b"a:b."[..], b"AUX", b"x\x01y ", b"\xc3(", b"nul.a.b"] {
            let e = escape_name(name).unwrap();
            assert!(
                !e.chars()
                    .any(|c| (c as u32) < 0x20 || FORBIDDEN.contains(&c))
            );
            assert!(!e.ends_with('.') && !e.ends_with(' '));
            let stem = e.split('.').next().unwrap();
            assert!(
                !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)),
                "{e}"
            );
        }
    }

    #[test]
    fn windows_paths_are_recorded_with_the_drive_first() {
        let cases: &[(&[u8], &[u8])] = &[
            (br"C:\Users\me", b"/C/Users/me"),
            (br"c:\", b"/C/"),
            (br"D:\data\x.db", b"/D/data/x.db"),
            (br"\\?\C:\long\path", b"/C/long/path"),
            (br"\\server\share\dir", b"/UNC/server/share/dir"),
            (br"\\?\UNC\server\share\dir", b"/UNC/server/share/dir"),
            (br"relative\dir", b"relative/dir"),
        ];
        for (windows, recorded) in cases {
            assert_eq!(recorded_path(windows), recorded.to_vec());
        }
        for (recorded, windows) in [
            (&b"/C/Users/me"[..], r"C:\Users\me"),
            (b"/C", r"C:\"),
            (b"/UNC/server/share/dir", r"\\server\share\dir"),
            (b"/home/me", r"\home\me"),
            (b"/Cx/y", r"\Cx\y"),
            (b"../up/x", r"..\up\x"),
            // A drive-like component from storage names no drive: joined
            // onto a folder, it stays inside.
            (b"C:/x", "C\u{f03a}\\x"),
            (b"/home/C:/x", "\\home\\C\u{f03a}\\x"),
            (b"a\\b/c", "a\u{f05c}b\\c"),
        ] {
            assert_eq!(windows_path(recorded), windows, "{:?}", recorded);
        }
    }
}
