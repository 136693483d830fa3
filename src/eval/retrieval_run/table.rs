//! The retrieval comparison as Markdown: a quality table (each pipeline through the store and
//! exact, with its p-values against `raw`
//! and, for a `hybrid:` row, against `hybrid:raw`) and a cost table (dimensions, build time, speed, bytes).
//!
//! Invariants: one quality line per row and search, in row order, exact before store; numbers
//! are printed at fixed precision, so the tables of two runs diff line by line.

use super::RetrievalRow;

/// A p-value for a table: three decimals, or `<0.001`.
fn format_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Renders the rows as two Markdown tables: quality (through the store, and exact) and cost.
pub fn markdown_tables(rows: &[RetrievalRow]) -> String {
    let quality = rows.iter().flat_map(|r| {
        let (vs_raw, vs_hybrid) = (r.p_vs_raw, r.p_vs_hybrid_raw);
        let searches = [
            ("exact", &r.exact, vs_raw.map(|p| p.exact), vs_hybrid.map(|p| p.exact)),
            ("store", &r.hnsw, vs_raw.map(|p| p.hnsw), vs_hybrid.map(|p| p.hnsw)),
        ];
        searches.map(|(search, m, p, p_hybrid)| {
            let mut cells = vec![
                r.pipeline.clone(),
                search.to_string(),
                format!("{:.4}", m.ndcg10),
                p.map_or("-".to_string(), format_p),
                p_hybrid.map_or("-".to_string(), format_p),
            ];
            cells.extend([m.mrr10, m.recall1, m.recall5, m.recall10, m.recall100].map(|x| format!("{x:.4}")));
            cells
        })
    });
    let header =
        ["pipeline", "search", "nDCG@10", "p vs raw", "p vs hybrid:raw", "MRR@10", "R@1", "R@5", "R@10", "R@100"];
    let mut out = crate::table::markdown(&header, 2, quality);
    let cost = rows.iter().map(|r| {
        vec![
            r.pipeline.clone(),
            r.dims.to_string(),
            r.documents.to_string(),
            r.exact.queries.to_string(),
            format!("{:.4}", r.ann_recall10),
            format!("{:.2}", r.fit_seconds),
            format!("{:.2}", r.build_seconds),
            format!("{:.0}", r.hnsw_queries_per_second),
            format!("{:.0}", r.exact_queries_per_second),
            r.index_bytes.to_string(),
            r.store_bytes.to_string(),
        ]
    });
    let header = [
        "pipeline",
        "dims",
        "docs",
        "queries",
        "ANN recall@10",
        "fit s",
        "index build s",
        "HNSW q/s",
        "exact q/s",
        "index bytes",
        "store bytes",
    ];
    out.push('\n');
    out.push_str(&crate::table::markdown(&header, 1, cost));
    out
}
