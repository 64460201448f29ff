//! Regenerate `completions/` and `man/` from the clap tree: `cargo run --example gen-docs`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["completions", "man"] {
        let d = root.join(dir);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
        std::fs::create_dir_all(&d)?;
    }
    for (path, bytes) in mqsec::docs_gen::render_all() {
        std::fs::write(root.join(&path), bytes)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
