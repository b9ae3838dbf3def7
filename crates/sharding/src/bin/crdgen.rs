//! Prints the ControllerRing CustomResourceDefinition; `config/crds/` holds its output.

fn main() {
    print!("{}", sharding::api::controller_ring::crd_yaml());
}
