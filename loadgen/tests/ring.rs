//! `loadgen ring` run as a program, as a user runs it.

use std::process::{Command, Output};

use kube_sharding::consistent_hash::Ring;

fn loadgen(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("loadgen runs")
}

#[test]
fn csv_prints_each_keys_shard_in_input_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = [
        "webhosting.timebertt.dev/Website/project-00/site-1",
        "/ConfigMap/default/with,comma",
        "apps/Deployment/default/nginx",
        "webhosting.timebertt.dev/Theme//exciting",
    ];
    let file = format!("{}\n\n{}\n{}\n  \n{}\n", keys[0], keys[1], keys[2], keys[3]);
    std::fs::write(dir.path().join("keys.txt"), file).expect("write keys");

    let output = loadgen(
        dir.path(),
        &[
            "ring",
            "--shards",
            "a,b,c",
            "--keys-file",
            "keys.txt",
            "--format",
            "csv",
        ],
    );

    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ring = Ring::with_nodes(["a", "b", "c"]);
    let mut expected = vec!["key,shard".to_owned()];
    for key in keys {
        let shard = ring.hash(key).expect("three shards");
        let key = if key.contains(',') {
            format!("\"{key}\"")
        } else {
            key.to_owned()
        };
        expected.push(format!("{key},{shard}"));
    }
    assert_eq!(
        String::from_utf8(output.stdout).expect("utf-8"),
        expected.join("\n") + "\n"
    );
}

#[test]
fn a_missing_keys_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("temp dir");

    let output = loadgen(
        dir.path(),
        &[
            "ring",
            "--shards",
            "a,b,c",
            "--keys-file",
            "keys.txt",
            "--format",
            "csv",
        ],
    );

    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert!(
        stderr.starts_with("error: cannot read the keys file keys.txt: "),
        "stderr: {stderr}"
    );
}
