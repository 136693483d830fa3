//! SVG chart of random-pair cosine histograms, several labelled series overlaid.

use std::path::Path;

use plotters::prelude::*;

use super::anisotropy::Anisotropy;
use crate::{Error, Result};

/// Writes an SVG with one line per series: the share of random pairs per cosine bin, labelled
/// with the series name and its mean cosine (e.g. "before" and "after" whitening).
pub fn write_histogram_svg(path: &Path, series: &[(&str, &Anisotropy)]) -> Result<()> {
    let shares: Vec<Vec<(f64, f64)>> = series.iter().map(|(_, a)| bin_shares(a)).collect();
    let top = shares.iter().flatten().map(|&(_, y)| y).fold(0.0f64, f64::max);
    let y_max = (top * 1.1).max(0.01);
    let draw_error = |e: &dyn std::fmt::Display| {
        Error::io(path, std::io::Error::other(format!("drawing the histogram failed: {e}")))
    };
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Cosine similarity of random sentence pairs", ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(-1.0f64..1.0f64, 0.0f64..y_max)
        .map_err(|e| draw_error(&e))?;
    chart.configure_mesh().x_desc("cosine").y_desc("share of pairs").draw().map_err(|e| draw_error(&e))?;
    for (index, ((label, stats), points)) in series.iter().zip(shares).enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| draw_error(&e))?
            .label(format!("{label} (mean cos {:.3})", stats.mean_cosine))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw_error(&e))?;
    root.present().map_err(|e| draw_error(&e))?;
    Ok(())
}

/// (bin centre, share of pairs in the bin) for one series; all zeros when it has no pairs.
fn bin_shares(stats: &Anisotropy) -> Vec<(f64, f64)> {
    let total: usize = stats.cosine_histogram.iter().map(|b| b.2).sum();
    stats
        .cosine_histogram
        .iter()
        .map(|&(lo, hi, count)| {
            let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
            ((lo + hi) / 2.0, share)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::anisotropy::analyze;

    #[test]
    fn svg_contains_both_labelled_series() {
        let narrow: Vec<Vec<f32>> = (0..50).map(|i| vec![1.0, 0.05 * i as f32]).collect();
        let wide: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let t = i as f32 * 0.37;
                vec![t.cos(), t.sin()]
            })
            .collect();
        let before = analyze(&narrow, 2000, 1);
        let after = analyze(&wide, 2000, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hist.svg");
        write_histogram_svg(&path, &[("before", &before), ("after", &after)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg"));
        assert!(svg.contains("before (mean cos") && svg.contains("after (mean cos"));
        assert!(svg.contains("cosine"));
        // one polyline per series at least
        assert!(svg.matches("<polyline").count() >= 2, "{svg}");
    }

    #[test]
    fn unwritable_path_is_an_error() {
        let a = analyze(&[vec![1.0], vec![2.0]], 10, 0);
        let err = write_histogram_svg(Path::new("/nonexistent/dir/h.svg"), &[("x", &a)]);
        assert!(err.is_err());
    }
}
