//! What the checks share: the repository, kubectl, rendered kustomizations and plain HTTP.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use serde_json::Value;
use sharder::webhook::certs;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository exists")
}

/// The files git tracks, as paths relative to the repository's root.
pub fn tracked_files() -> Vec<String> {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo())
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git ls-files failed");
    String::from_utf8(output.stdout)
        .expect("UTF-8 paths")
        .split('\0')
        .filter(|path| !path.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The kubectl of the pinned control plane (built by `hack/build-control-plane.sh`, which
/// answers at once from its cache), or the one on `PATH` when `KUBEBUILDER_ASSETS` has none.
pub fn kubectl() -> &'static Path {
    static KUBECTL: OnceLock<PathBuf> = OnceLock::new();
    KUBECTL.get_or_init(|| {
        let output = Command::new("bash")
            .arg(repo().join("hack/build-control-plane.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run hack/build-control-plane.sh");
        assert!(
            output.status.success(),
            "hack/build-control-plane.sh failed"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        let pinned = dir.join("kubectl");
        if pinned.is_file() {
            pinned
        } else {
            PathBuf::from("kubectl")
        }
    })
}

/// Runs kubectl with `args` and `stdin`; returns stdout, or panics with the command and
/// stderr.
pub fn run_kubectl(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(kubectl())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", kubectl().display()));
    let mut input = child.stdin.take().expect("piped");
    let stdin = stdin.to_owned();
    // Written from a thread: a large input must not block on a full stdout pipe.
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let output = child.wait_with_output().expect("kubectl runs");
    writer
        .join()
        .expect("the writer")
        .expect("kubectl reads stdin");
    assert!(
        output.status.success(),
        "kubectl {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The sharder's webhook certificate in `deploy/sharder/default/certs`, written as `make
/// deploy` does when it is missing (the directory is git-ignored). Once per test process, so
/// that two tests never write a CA and a serving certificate of different pairs.
pub fn ensure_webhook_certs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let hosts = certs::service_hosts("sharder", "sharding-system");
        certs::ensure(&repo().join("deploy/sharder/default/certs"), &hosts)
            .expect("cannot write the webhook certificates");
    });
}

/// A kustomization directory relative to the repository, e.g. `deploy/default`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kustomization(pub String);

impl Kustomization {
    /// Every kustomization under `deploy/` and `dashboards/` (the Makefile's temporary
    /// overlays, in hidden directories, left out).
    pub fn all() -> Vec<Self> {
        let root = repo();
        let mut found = Vec::new();
        for top in ["deploy", "dashboards"] {
            walk(&root.join(top), &mut |dir| {
                if dir.join("kustomization.yaml").is_file() {
                    let relative = dir.strip_prefix(&root).expect("under the root");
                    found.push(Self(relative.display().to_string()));
                }
            });
        }
        found.sort();
        found
    }

    /// `kubectl kustomize`: the YAML stream.
    pub fn render(&self) -> String {
        ensure_webhook_certs();
        let dir = repo().join(&self.0);
        run_kubectl(&["kustomize", &dir.display().to_string()], "")
    }

    /// The rendered objects.
    pub fn objects(&self) -> Vec<Value> {
        let yaml = self.render();
        serde_saphyr::from_multiple::<Value>(&yaml)
            .unwrap_or_else(|error| panic!("{} renders invalid YAML: {error}", self.0))
            .into_iter()
            .filter(|object| !object.is_null())
            .collect()
    }
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    visit(dir);
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if path.is_dir() && !hidden {
            walk(&path, visit);
        }
    }
}

/// The object of `kind` whose name is `name`, or starts with `name-` (a generated name with its
/// hash suffix).
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|object| {
            let object_name = object["metadata"]["name"].as_str().unwrap_or_default();
            object["kind"] == kind
                && (object_name == name
                    || object_name
                        .strip_prefix(name)
                        .is_some_and(|suffix| suffix.starts_with('-')))
        })
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered objects"))
}

/// The status code and body of `GET <path>` on 127.0.0.1:`port`, in plain HTTP/1.0 (the server
/// closes the connection after the body, so no HTTP client is needed).
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let address = ([127, 0, 0, 1], port).into();
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head}")))?;
        Ok((code, body.to_owned()))
    })
    .await
    .map_err(std::io::Error::other)?
}
