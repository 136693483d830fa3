//! Times fitting BERT-flow on synthetic vectors: `cargo run --example flow_fit -- [n] [dims]`.

use isovec::transform::{measure_flow_fit, FlowConfig};

fn main() -> isovec::Result<()> {
    let mut args = std::env::args().skip(1);
    let n = args.next().and_then(|a| a.parse().ok()).unwrap_or(30_000);
    let dims = args.next().and_then(|a| a.parse().ok()).unwrap_or(384);
    let t = measure_flow_fit(n, dims, &FlowConfig::default())?;
    println!(
        "flow fit: {} vectors × {} dims, {} steps, {:.1} s ({:.2} ms/step), final loss {:.3} bits/dim",
        t.vectors,
        t.dims,
        t.steps,
        t.seconds,
        1e3 * t.seconds / t.steps as f64,
        t.final_loss
    );
    Ok(())
}
