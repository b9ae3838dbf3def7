use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use testenv::{ASSETS_ENV, Environment, Error, KUBERNETES_VERSION};

use crate::{CONTROL_PLANE, client};

/// Ids of live processes whose command line mentions `needle` (zombies are dead).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(needle) && !stat.contains(") Z ")
        })
        .collect()
}

#[tokio::test]
async fn the_api_server_reports_the_pinned_release() {
    let version = client().await.apiserver_version().await.unwrap();
    if std::env::var_os(ASSETS_ENV).is_none() {
        assert_eq!(version.git_version, KUBERNETES_VERSION);
        assert_eq!(version.git_tree_state, "clean");
        assert!(version.build_date.starts_with("20"), "{version:?}");
    } else {
        assert_eq!(version.major, "1", "{version:?}");
    }
    assert!(CONTROL_PLANE.get().log_path("kube-apiserver").is_file());
}

#[tokio::test]
async fn dropping_a_control_plane_stops_its_processes_and_removes_its_directory() {
    let control_plane = Environment::new().start().await.unwrap();
    let directory = control_plane.directory().to_owned();
    let pids: Vec<u32> = control_plane
        .pids()
        .into_iter()
        .map(|(_, pid)| pid)
        .collect();
    assert_eq!(pids.len(), 2, "etcd and kube-apiserver");
    assert!(
        control_plane
            .client()
            .await
            .unwrap()
            .apiserver_version()
            .await
            .is_ok()
    );

    control_plane.stop();

    assert!(!directory.exists(), "{} still exists", directory.display());
    assert!(processes_mentioning(&directory.to_string_lossy()).is_empty());
}

#[tokio::test]
async fn a_component_that_cannot_start_is_reported_with_its_log_and_cleaned_up() {
    let error = Environment::new()
        .api_server_arg("--no-such-flag=1")
        .start()
        .await
        .expect_err("kube-apiserver rejects an unknown flag");
    let Error::Exited {
        component,
        log,
        tail,
        ..
    } = &error
    else {
        panic!("unexpected error: {error}");
    };
    assert_eq!(*component, "kube-apiserver");
    assert!(tail.contains("unknown flag: --no-such-flag"), "{tail}");
    let directory = log.parent().and_then(Path::parent).unwrap();
    assert!(!directory.exists(), "{} still exists", directory.display());
}

/// Starts `testenv up` and returns it with the control plane's directory.
fn start_cli() -> (std::process::Child, PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_testenv"))
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let kubeconfig = PathBuf::from(line.trim());
    assert!(kubeconfig.is_file(), "testenv up printed {line:?}");
    (child, kubeconfig.parent().unwrap().to_owned())
}

#[tokio::test]
async fn the_cli_stops_the_control_plane_on_ctrl_c() {
    let (mut cli, directory) = start_cli();
    let needle = directory.to_string_lossy().into_owned();
    assert_eq!(
        processes_mentioning(&needle).len(),
        3,
        "etcd, kube-apiserver and the reaper run"
    );

    Command::new("kill")
        .args(["-INT", &cli.id().to_string()])
        .status()
        .unwrap();

    assert!(cli.wait().unwrap().success());
    assert!(!directory.exists());
    assert!(processes_mentioning(&needle).is_empty());
}

#[tokio::test]
async fn a_killed_owner_leaves_no_process_and_no_directory_behind() {
    let (mut cli, directory) = start_cli();
    let needle = directory.to_string_lossy().into_owned();
    assert_eq!(
        processes_mentioning(&needle).len(),
        3,
        "etcd, kube-apiserver and the reaper run"
    );

    cli.kill().unwrap();
    cli.wait().unwrap();

    testenv::eventually("the reaper's clean-up", Duration::from_secs(20), || async {
        (!directory.exists() && processes_mentioning(&needle).is_empty()).then_some(())
    })
    .await;
}

/// The service range holds a ClusterIP Service for more than 253 objects, the most a /24 held.
#[tokio::test]
async fn the_service_range_holds_more_than_a_slash_24() {
    use futures::StreamExt as _;
    use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
    use kube::{
        Api,
        api::{ObjectMeta, PostParams},
    };

    let client = client().await;
    let services = Api::<Service>::namespaced(client, "default");
    let created = futures::stream::iter(0..300)
        .map(|i| {
            let services = services.clone();
            async move {
                let service = Service {
                    metadata: ObjectMeta {
                        name: Some(format!("range-{i}")),
                        ..ObjectMeta::default()
                    },
                    spec: Some(ServiceSpec {
                        ports: Some(vec![ServicePort {
                            port: 80,
                            ..ServicePort::default()
                        }]),
                        ..ServiceSpec::default()
                    }),
                    ..Service::default()
                };
                services.create(&PostParams::default(), &service).await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let failed: Vec<_> = created.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}",
        failed.len(),
        failed.first()
    );
}

#[tokio::test]
async fn a_stopped_api_server_starts_again_on_the_same_port_with_its_data() {
    use k8s_openapi::api::core::v1::ConfigMap;

    let control_plane = Environment::new().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    let config_maps = kube::Api::<ConfigMap>::namespaced(client.clone(), "default");
    let config_map: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "kept"}})).unwrap();
    config_maps
        .create(&kube::api::PostParams::default(), &config_map)
        .await
        .unwrap();
    let before: Vec<_> = control_plane.pids();

    assert!(control_plane.stop_api_server());
    assert!(!control_plane.stop_api_server(), "it is stopped already");
    assert!(client.apiserver_version().await.is_err());
    let names: Vec<_> = control_plane.pids().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["etcd"]);

    control_plane.start_api_server().await.unwrap();
    // The same URL and certificates: the client made before the stop works again.
    assert!(config_maps.get("kept").await.is_ok());
    let after = control_plane.pids();
    assert_eq!(after.len(), before.len());
    assert_ne!(after, before, "a new kube-apiserver process");
    let log = std::fs::read_to_string(control_plane.log_path("kube-apiserver")).unwrap();
    assert!(log.len() > 1000, "the log of both starts is kept");
}
