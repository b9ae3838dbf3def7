//! Benchmarks of the hot paths of the sharder's webhook: building the ring from shard names,
//! looking a key up, and deriving a key from object metadata. A plain xxHash64 of a key is the
//! baseline that a lookup cannot beat. The bounded-load strategy's placement is measured beside
//! the ring's lookup, and its rebalance (the resync's work when a shard joins).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::TypeMeta;
use kube_sharding::consistent_hash::{Ring, xxhash64};
use kube_sharding::key;
use kube_sharding::strategy::Assignment;

const SHARD_COUNTS: [usize; 3] = [3, 10, 100];

/// A power of two, so that the key index wraps with a mask.
const KEYS: usize = 1024;

/// Shard names as a Deployment's pods have them: `webhosting-operator-<hash>-<suffix>`.
fn shard_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "webhosting-operator-{:010x}-{:05x}",
                xxhash64(&i.to_le_bytes()) >> 24,
                i * 7919
            )
        })
        .collect()
}

/// Keys of Websites spread over 20 projects.
fn keys() -> Vec<String> {
    (0..KEYS)
        .map(|i| {
            format!(
                "webhosting.timebertt.dev/Website/project-{:02}/site-{i}",
                i % 20
            )
        })
        .collect()
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring/build");
    for n in SHARD_COUNTS {
        let names = shard_names(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &names, |b, names| {
            b.iter(|| Ring::with_nodes(black_box(names).iter().map(String::as_str)));
        });
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("ring/lookup");
    // Rotating through many keys keeps the branch predictor from learning one search path.
    group.bench_function("baseline-xxhash64", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & (KEYS - 1);
            xxhash64(black_box(keys[i].as_bytes()))
        });
    });
    for n in SHARD_COUNTS {
        let ring = Ring::with_nodes(shard_names(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &ring, |b, ring| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                ring.hash(black_box(&keys[i])).map(str::len)
            });
        });
    }
    group.finish();
}

fn key_derivation(c: &mut Criterion) {
    let types = TypeMeta {
        api_version: "webhosting.timebertt.dev/v1alpha1".into(),
        kind: "Website".into(),
    };
    let website = ObjectMeta {
        name: Some("site-123".into()),
        namespace: Some("project-00".into()),
        ..ObjectMeta::default()
    };
    let deployment = ObjectMeta {
        name: Some("site-123-7f9c6".into()),
        namespace: Some("project-00".into()),
        owner_references: Some(vec![OwnerReference {
            api_version: "webhosting.timebertt.dev/v1alpha1".into(),
            kind: "Website".into(),
            name: "site-123".into(),
            uid: "0b6f3b5e-5c1a-4d7e-9a51-2f0c1d2e3f40".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..ObjectMeta::default()
    };
    let mut group = c.benchmark_group("key");
    group.bench_function("for_object", |b| {
        b.iter(|| key::for_object(Some(black_box(&types)), black_box(&website)));
    });
    group.bench_function("for_controller", |b| {
        b.iter(|| key::for_controller(black_box(&deployment)));
    });
    group.finish();
}

/// Objects in the bounded-load table: what one ring of a large controller holds.
const TABLE_OBJECTS: usize = 10_000;

/// A bounded-load table of `TABLE_OBJECTS` Websites placed one by one on `shards`.
fn table(shards: &[String]) -> Assignment {
    let mut table = Assignment::new();
    for i in 0..TABLE_OBJECTS {
        let key = format!(
            "webhosting.timebertt.dev/Website/project-{:02}/table-{i}",
            i % 20
        );
        let shard = table.place(&key, shards).unwrap_or_default().to_owned();
        table.set(key, shard);
    }
    table
}

fn bounded_load(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("bounded-load/place");
    for n in SHARD_COUNTS {
        let shards = shard_names(n);
        let table = table(&shards);
        group.bench_with_input(BenchmarkId::from_parameter(n), &table, |b, table| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                table.place(black_box(&keys[i]), &shards).map(str::len)
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("bounded-load/rebalance-join");
    group.sample_size(10);
    for n in [3, 10] {
        let mut shards = shard_names(n + 1);
        let joining = shards.pop().unwrap_or_default();
        let table = table(&shards);
        shards.push(joining);
        group.bench_with_input(BenchmarkId::from_parameter(n), &table, |b, table| {
            b.iter(|| table.rebalance(black_box(&shards)).len());
        });
    }
    group.finish();
}

criterion_group!(benches, build, lookup, key_derivation, bounded_load);
criterion_main!(benches);
