//! A leader cut off from the API server steps down by its own clock, and no write it sent
//! lands after another replica took over, even when the network delivers its requests late
//! (docs/sharder.md#leadership). What landed is read from the API server's audit log.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{
        TcpListener, TcpSocket,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
};

use crate::{
    eventually, leader_election_control_plane,
    replica::{Replica, leader, leads, ready_shards, ring_with_shards, writes},
};

/// The source address of every connection through the partition: the API server's audit log
/// names it in `sourceIPs`, which tells the cut-off replica's requests from everyone else's.
const CUT_OFF: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Audits every write with its metadata, nothing else.
const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
"#;

/// A TCP proxy on loopback in front of the API server, connecting from [`CUT_OFF`]. Cut, it
/// neither reads nor forwards, in either direction, and holds its connections open; healed,
/// it delivers what was held, as TCP retransmits after a partition, then carries on.
struct Partition {
    address: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Partition {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let held = cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let socket = TcpSocket::new_v4().unwrap();
                socket
                    .bind(SocketAddr::new(IpAddr::V4(CUT_OFF), 0))
                    .unwrap();
                let Ok(server) = socket.connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, held.subscribe()));
                tokio::spawn(pump(server_read, client_write, held.subscribe()));
            }
        });
        Self { address, cut }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }

    fn heal(&self) {
        self.cut.send_replace(false);
    }

    /// A copy of `kubeconfig` whose server is this proxy, written to `path`.
    fn kubeconfig(&self, kubeconfig: &Path, api_server_url: &str, path: PathBuf) -> PathBuf {
        let text = std::fs::read_to_string(kubeconfig).unwrap();
        assert!(text.contains(api_server_url), "{text}");
        let proxied = text.replace(api_server_url, &format!("https://{}", self.address));
        std::fs::write(&path, proxied).unwrap();
        path
    }
}

/// Copies `from` to `to` while not cut; a chunk read just before a cut is held until the heal.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut cut: watch::Receiver<bool>) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        if cut.wait_for(|cut| !cut).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if cut.wait_for(|cut| !cut).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The writes the API server completed with success for a client at `source`, received at
/// or after `since`: `verb objectRef` with the time received.
fn landed_writes(audit_log: &Path, source: Ipv4Addr, since: Timestamp) -> Vec<String> {
    let source = source.to_string();
    std::fs::read_to_string(audit_log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| {
            event["stage"] == "ResponseComplete"
                && event["sourceIPs"]
                    .as_array()
                    .is_some_and(|ips| ips.iter().any(|ip| *ip == source.as_str()))
                && event["responseStatus"]["code"]
                    .as_u64()
                    .is_some_and(|code| (200..300).contains(&code))
        })
        .filter(|event| {
            let received: Timestamp = event["requestReceivedTimestamp"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            received >= since
        })
        .map(|event| {
            format!(
                "{} {} {}/{}/{} at {}",
                event["verb"],
                event["objectRef"]["resource"],
                event["objectRef"]["namespace"],
                event["objectRef"]["name"],
                event["objectRef"]["subresource"],
                event["requestReceivedTimestamp"],
            )
        })
        .collect()
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_steps_down_and_nothing_it_sent_lands_after_the_takeover()
 {
    let audit = tempfile::tempdir().unwrap();
    let policy = audit.path().join("policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY).unwrap();
    let audit_log = audit.path().join("audit.log");
    let environment = testenv::Environment::new()
        .api_server_arg(format!("--audit-policy-file={}", policy.display()))
        .api_server_arg(format!("--audit-log-path={}", audit_log.display()));
    let (control_plane, client) = leader_election_control_plane(environment).await;
    let upstream = control_plane
        .api_server_url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let partition = Partition::start(upstream).await;
    let proxied = partition.kubeconfig(
        &control_plane.kubeconfig_path(),
        control_plane.api_server_url(),
        audit.path().join("first.kubeconfig"),
    );
    let mut first = Replica::start(&control_plane, "first", &proxied);
    leads(&client, "first").await;
    let mut second = Replica::start(&control_plane, "second", &control_plane.kubeconfig_path());
    let (_, _live, leaving, shard_leases) = ring_with_shards(&client).await;
    assert!(
        !landed_writes(&audit_log, CUT_OFF, Timestamp::UNIX_EPOCH).is_empty(),
        "the audit log tells the leader's writes through the partition"
    );

    // Two shards leave just before the cut, so that the leader's reactions are on the wire
    // when it comes; two more after it, for the new leader.
    let mut leaving = leaving.into_iter();
    for lease in leaving.by_ref().take(2) {
        lease.release().await.unwrap();
    }
    partition.cut();
    for lease in leaving {
        lease.release().await.unwrap();
    }
    let (holder, taken_over) = eventually("the second replica to take over", || async {
        let (holder, acquired) = leader(&client).await?;
        holder.starts_with("second_").then_some((holder, acquired))
    })
    .await;
    let status = eventually("the cut-off leader to step down and exit", || {
        std::future::ready(first.exited())
    })
    .await;
    assert!(!status.success(), "losing leadership is an error: {status}");
    let log = std::fs::read_to_string(&first.log).unwrap();
    assert!(
        log.contains("Lease not renewed within the renew deadline"),
        "{log}"
    );

    // What the cut-off leader sent is delivered now, late; none of it may take effect.
    partition.heal();
    // Held bytes go out on loopback at once; the wait gives the API server time to serve them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    eventually("the new leader to label the leavers not ready", || async {
        (ready_shards(&shard_leases).await? == 1).then_some(())
    })
    .await;
    let sent: Vec<_> = writes(&first.log)
        .into_iter()
        .filter(|(time, _)| *time >= taken_over)
        .map(|(_, line)| line)
        .collect();
    assert!(
        sent.is_empty(),
        "the old leader sent writes after {holder} took over at {taken_over}: {sent:#?}"
    );
    let landed = landed_writes(&audit_log, CUT_OFF, taken_over);
    assert!(
        landed.is_empty(),
        "writes of the old leader landed after {holder} took over at {taken_over}: {landed:#?}"
    );
    assert_eq!(leader(&client).await.unwrap().0, holder);
    assert!(second.exited().is_none(), "the new leader keeps running");
}
