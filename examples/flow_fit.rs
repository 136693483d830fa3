//! Times fitting BERT-flow on synthetic anisotropic vectors:
//! `cargo run --example flow_fit -- [n=30000] [dims=384] [additive|affine] [reverse|lu]`.

use isovec::transform::{measure_flow_fit, CouplingKind, FlowConfig, PermutationKind};

fn main() -> isovec::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.first().and_then(|a| a.parse().ok()).unwrap_or(30_000);
    let dims = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(384);
    let config = FlowConfig {
        coupling: match args.get(2).map(String::as_str) {
            Some("affine") => CouplingKind::Affine,
            _ => CouplingKind::Additive,
        },
        permutation: match args.get(3).map(String::as_str) {
            Some("lu") => PermutationKind::Lu,
            _ => PermutationKind::Reverse,
        },
        ..FlowConfig::default()
    };
    let t = measure_flow_fit(n, dims, &config)?;
    println!(
        "flow fit ({:?}/{:?}): {} vectors × {} dims, {} steps, {:.1} s ({:.2} ms/step), \
         final loss {:.3} bits/dim",
        config.coupling,
        config.permutation,
        t.vectors,
        t.dims,
        t.steps,
        t.seconds,
        1e3 * t.seconds / t.steps as f64,
        t.final_loss
    );
    Ok(())
}
