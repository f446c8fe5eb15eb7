//! Prints the LabelJob CustomResourceDefinition as YAML (`make generate` writes it to crds/).

use kube::CustomResourceExt;

fn main() {
    match serde_yaml::to_string(&labeljob_api::LabelJob::crd()) {
        Ok(yaml) => print!("{yaml}"),
        Err(e) => {
            eprintln!("cannot serialise the CRD: {e}");
            std::process::exit(1);
        }
    }
}
