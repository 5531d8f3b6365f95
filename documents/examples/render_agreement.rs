//! Renders the loan agreement with sample parameters into a directory, to
//! look at a template while editing it:
//!
//! `cargo run -p etr-documents --example render_agreement -- OUT_DIR [TEMPLATE_DIR] [ROWS]`

#[path = "../tests/common/mod.rs"]
mod common;

use etr_documents::{Agreements, Templates, LOAN_AGREEMENT};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: render_agreement OUT_DIR [TEMPLATE_DIR] [ROWS]")?;
    let templates = match args.next() {
        Some(dir) if !dir.is_empty() => Templates::from_dir(dir)?,
        _ => Templates::builtin(),
    };
    let rows = args
        .next()
        .map(|rows| rows.parse())
        .transpose()?
        .unwrap_or(12);
    let rendered = Agreements::new(templates)?.render(LOAN_AGREEMENT, &common::params(rows))?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(format!("{out}/{LOAN_AGREEMENT}.html"), &rendered.html)?;
    std::fs::write(format!("{out}/{LOAN_AGREEMENT}.pdf"), &rendered.pdf)?;
    println!("{} {}", rendered.sha256, rendered.pdf.len());
    Ok(())
}
