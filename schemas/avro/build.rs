//! Generates the schema catalogue from the `.avsc` files: every `<aggregate>/<Event>.avsc`
//! under this crate is an event schema, so adding an event means adding its file.

use std::fmt::Write as _;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut entries = Vec::new();
    for aggregate in [
        "client",
        "wallet",
        "payment",
        "application",
        "loan",
        "merchant_order",
    ] {
        let dir = root.join(aggregate);
        println!("cargo:rerun-if-changed={}", dir.display());
        for file in std::fs::read_dir(&dir)? {
            let path = file?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("avsc") {
                continue;
            }
            let Some(event) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            println!("cargo:rerun-if-changed={}", path.display());
            entries.push((aggregate, event.to_owned(), path.display().to_string()));
        }
    }
    entries.sort();
    let mut out = String::from("&[\n");
    for (aggregate, event, path) in entries {
        writeln!(
            out,
            "    ({aggregate:?}, {event:?}, include_str!({path:?})),"
        )?;
    }
    out.push_str("]\n");
    let target = Path::new(&std::env::var("OUT_DIR")?).join("catalog.rs");
    std::fs::write(target, out)?;
    Ok(())
}
