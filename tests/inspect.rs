//! Looking inside snapshots: ls, diff, find, stats; completions and man page.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn paths(v: &serde_json::Value) -> Vec<String> {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn ls_lists_a_snapshot_and_a_subtree() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    let all = env.json(&["ls", "latest"]);
    let p = paths(&all);
    let s = src.display().to_string();
    for rel in [
        "hello.txt",
        "dir/nested/multi-chunk.bin",
        "dangling",
        "empty-dir",
    ] {
        assert!(p.contains(&format!("{s}/{rel}")), "ls lacks {rel}");
    }
    assert!(
        p.iter().any(|x| x.contains("caf")),
        "names that are not UTF-8 are listed"
    );
    assert!(
        !p.iter().any(|x| x.ends_with("/socket")),
        "sockets were not backed up"
    );
    let link = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == format!("{s}/dangling"))
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["link_target"], "../nowhere/at/all");
    // A link records whether it points at a directory, which Windows
    // needs to make it (format-spec.md section 8).
    let mode_of = |name: &str| {
        let e = all["entries"].as_array().unwrap().iter();
        let mut e = e.filter(|e| e["path"] == format!("{s}/{name}"));
        e.next().unwrap()["mode"].as_u64().unwrap()
    };
    assert_eq!(mode_of("dangling") & 0o040000, 0);
    assert_eq!(mode_of("link-to-dir") & 0o040000, 0o040000);

    let sub = env.json(&["ls", "latest", &format!("{s}/dir/nested")]);
    let p = paths(&sub);
    assert!(p.contains(&format!("{s}/dir/nested/deeper/small")));
    assert!(
        p.iter().all(|x| x.starts_with(&format!("{s}/dir/nested"))),
        "{p:?}"
    );

    let out = env
        .snap()
        .args(["ls", "--long", "latest"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.ends_with("/hello.txt")).unwrap();
    assert!(line.starts_with("-rw-------"), "{line}");
    assert!(
        text.lines()
            .any(|l| l.starts_with('l') && l.contains("-> hello.txt"))
    );
}

/// Entries come depth first, each directory's children right after it in
/// name order, and a directory that has a twin (same content, so the same
/// tree) is listed in both places.
#[test]
fn ls_lists_depth_first_in_name_order_and_every_twin() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for d in ["a", "b/twin", "c/twin"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for f in ["a/x", "a-b", "a.c", "b/twin/f"] {
        std::fs::write(src.join(f), b"same").unwrap();
    }
    // A hard link: the same inode and times, so both twins' trees are one.
    std::fs::hard_link(src.join("b/twin/f"), src.join("c/twin/f")).unwrap();
    env.create(&[&src], &[]);
    let s = src.display().to_string();
    let p: Vec<String> = paths(&env.json(&["ls", "latest", &s]))
        .into_iter()
        .filter_map(|x| x.strip_prefix(&s).map(str::to_string))
        .collect();
    let want = [
        "",
        "/a",
        "/a/x",
        "/a-b",
        "/a.c",
        "/b",
        "/b/twin",
        "/b/twin/f",
        "/c",
        "/c/twin",
        "/c/twin/f",
    ];
    assert_eq!(p, want);
}

#[test]
fn diff_names_added_removed_modified_and_metadata_changes() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for f in ["same", "edit", "chmod", "gone", "sub/deep"] {
        std::fs::write(src.join(f), f.as_bytes()).unwrap();
    }
    let a = env.create(&[&src], &[]);
    std::fs::write(src.join("edit"), b"edited content").unwrap();
    std::fs::set_permissions(src.join("chmod"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(src.join("gone")).unwrap();
    std::fs::write(src.join("new"), b"new").unwrap();
    std::fs::create_dir(src.join("newdir")).unwrap();
    std::fs::write(src.join("newdir/inner"), b"x").unwrap();
    let b = env.create(&[&src], &[]);
    let v = env.json(&[
        "diff",
        a["snapshot_id"].as_str().unwrap(),
        b["snapshot_id"].as_str().unwrap(),
    ]);
    let s = src.display().to_string();
    let mut got: Vec<(String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(_, p)| p.starts_with(&s) && p != &s)
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("added", "new"),
        ("added", "newdir"),
        ("added", "newdir/inner"),
        ("metadata", "chmod"),
        ("modified", "edit"),
        ("removed", "gone"),
    ]
    .iter()
    .map(|(k, p)| (k.to_string(), format!("{s}/{p}")))
    .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn find_searches_every_snapshot() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/report.pdf"), b"pdf").unwrap();
    std::fs::write(src.join("notes.txt"), b"txt").unwrap();
    env.create(&[&src], &["--host", "a"]);
    std::fs::write(src.join("docs/other.pdf"), b"pdf2").unwrap();
    env.create(&[&src], &["--host", "b"]);
    let hits = env.json(&["find", "*.pdf"]);
    let names: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with("report.pdf")).count(),
        2
    );
    assert_eq!(names.iter().filter(|n| n.ends_with("other.pdf")).count(), 1);
    assert_eq!(
        env.json(&["find", "*.pdf", "--host", "a"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let by_path = env.json(&["find", &format!("{}/docs/*", src.display())]);
    assert_eq!(by_path.as_array().unwrap().len(), 3);
}

#[test]
fn stats_report_deduplication_and_compression() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("text"),
        "the same line of text again\n".repeat(100_000),
    )
    .unwrap();
    env.create(&[&src], &[]);
    env.create(&[&src], &["--force"]);
    let st = env.json(&["stats"]);
    assert_eq!(st["snapshots"], 2);
    let dedup = st["dedup_ratio"].as_f64().unwrap();
    assert!(
        (1.9..=2.1).contains(&dedup),
        "two identical snapshots deduplicate 2x, got {dedup}"
    );
    assert!(st["compression_ratio"].as_f64().unwrap() > 10.0, "{st}");
    assert_eq!(st["per_snapshot"].as_array().unwrap().len(), 2);
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let env = Env::new();
    let out = env.snap().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("snap") && script.contains("restore") && script.contains("--read-data")
    );
    let out = env.snap().arg("man").output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(
        man.starts_with(".ie") || man.contains(".TH"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("snap"));
}
