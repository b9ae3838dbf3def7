//! Prints the ControllerRing CustomResourceDefinition; `config/crds/` holds its output.

fn main() {
    print!("{}", kube_sharding::api::controller_ring::crd_yaml());
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checked_in_crd_is_what_the_types_generate() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config/crds/sharding.timebertt.dev_controllerrings.yaml");
        let checked_in = std::fs::read_to_string(&path).expect("the checked-in CRD");
        assert!(
            checked_in == kube_sharding::api::controller_ring::crd_yaml(),
            "{} is stale: run `cargo run -p sharder --bin crdgen > {}`",
            path.display(),
            path.display()
        );
    }
}
