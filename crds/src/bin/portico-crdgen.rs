//! Writes Portico's CRD manifests (and their kustomization) into a directory, `deploy/crds` by
//! default: `cargo run -p portico-api --bin portico-crdgen [-- DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds"));
    let files = match portico_api::crd_yaml::generated_files() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("portico-crdgen: cannot render the CRDs as YAML: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("portico-crdgen: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (file, contents) in files {
        let path = dir.join(&file);
        if let Err(e) = std::fs::write(&path, contents) {
            eprintln!("portico-crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
