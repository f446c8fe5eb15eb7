//! Prints the LabelJob CustomResourceDefinition as YAML (`make generate` writes it to crds/).

fn main() {
    match labeljob_api::crd_yaml() {
        Ok(yaml) => print!("{yaml}"),
        Err(e) => {
            eprintln!("cannot serialise the CRD: {e}");
            std::process::exit(1);
        }
    }
}
