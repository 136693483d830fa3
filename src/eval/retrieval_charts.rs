//! SVG charts of the report: recall@k curves per pipeline, and a labelled scatter plot.

use std::path::Path;

use plotters::prelude::*;

use crate::{Error, Result};

/// The cut-offs of the recall curve.
pub const RECALL_KS: [usize; 4] = [1, 5, 10, 100];

fn draw_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(format!("drawing the chart failed: {e}")))
}

/// Writes recall@k (k = 1, 5, 10, 100 on a log axis) as one line per labelled series.
pub fn write_recall_curves_svg(path: &Path, title: &str, series: &[(String, [f64; 4])]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| draw_error(path, e);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((0.8f64..130.0f64).log_scale(), 0.0f64..1.0f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("k")
        .y_desc("recall@k")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (index, (label, recalls)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let points: Vec<(f64, f64)> = RECALL_KS.iter().zip(recalls).map(|(&k, &r)| (k as f64, r)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled()))).map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Writes labelled points `(label, x, y)`; the axes span the data with a margin.
pub fn write_scatter_svg(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(String, f64, f64)],
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| draw_error(path, e);
    let span = |values: Vec<f64>| {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() || !hi.is_finite() {
            return (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.15).max(hi.abs().max(1e-3) * 0.02);
        (lo - pad, hi + pad)
    };
    let (x0, x1) = span(points.iter().map(|p| p.1).collect());
    let (y0, y1) = span(points.iter().map(|p| p.2).collect());
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw().map_err(|e| err(&e))?;
    for (index, (label, x, y)) in points.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart.draw_series(std::iter::once(Circle::new((*x, *y), 6, color.filled()))).map_err(|e| err(&e))?;
        chart
            .draw_series(std::iter::once(Text::new(label.clone(), (*x, *y), ("sans-serif", 16).into_font())))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_every_label() {
        let dir = tempfile::tempdir().unwrap();
        let curves = dir.path().join("recall.svg");
        write_recall_curves_svg(
            &curves,
            "recall",
            &[("raw".into(), [0.4, 0.6, 0.7, 0.9]), ("whiten-128".into(), [0.45, 0.65, 0.72, 0.93])],
        )
        .unwrap();
        let text = std::fs::read_to_string(&curves).unwrap();
        assert!(text.starts_with("<svg") && text.contains("whiten-128") && text.contains("raw"));
        let scatter = dir.path().join("scatter.svg");
        write_scatter_svg(
            &scatter,
            "t",
            "STS avg",
            "nDCG@10",
            &[("flow".into(), 70.0, 0.6), ("raw".into(), 75.0, 0.64)],
        )
        .unwrap();
        let text = std::fs::read_to_string(&scatter).unwrap();
        assert!(text.contains("flow") && text.contains("STS avg") && text.contains("nDCG@10"));
        // A single point still gets a usable axis range.
        write_scatter_svg(&scatter, "t", "x", "y", &[("one".into(), 1.0, 1.0)]).unwrap();
        // An unwritable path is an error, not a panic.
        assert!(write_recall_curves_svg(&dir.path().join("missing/dir/x.svg"), "t", &[]).is_err());
    }
}
