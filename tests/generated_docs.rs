//! The committed completions and man pages must be exactly what the current CLI generates.

use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut expected = BTreeSet::new();
    for (path, bytes) in mqsec::docs_gen::render_all() {
        let on_disk = std::fs::read(root.join(&path)).unwrap_or_default();
        assert!(
            on_disk == bytes,
            "{} is stale: run `cargo run --example gen-docs` and commit the result",
            path.display()
        );
        expected.insert(path);
    }
    for dir in ["completions", "man"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("generated dir exists") {
            let rel = Path::new(dir).join(entry.expect("dir entry").file_name());
            assert!(
                expected.contains(&rel),
                "{} is no longer generated: run `cargo run --example gen-docs`",
                rel.display()
            );
        }
    }
}
