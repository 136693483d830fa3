//! Tables for people, drawn by comfy-table (which measures cells by their display width, so
//! accents and wide characters stay aligned): Markdown for reports and benchmarks, plain aligned
//! columns for the terminal.

use comfy_table::{presets, CellAlignment, Table, TableStyle};

/// A Markdown table with one line per row, ending in a newline. Columns from `numeric_from` on
/// hold numbers: they are right-aligned, in the text and in the rendered Markdown (`---:`).
pub fn markdown<R, C>(header: &[&str], numeric_from: usize, rows: R) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: ToString,
{
    let mut table = filled(presets::ASCII_MARKDOWN, header, rows);
    for column in table.column_iter_mut().skip(numeric_from) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    let mut lines: Vec<String> = table.lines().collect();
    // comfy-table's separator has no alignment marks: a right-aligned column's ends in ':'.
    if let Some(separator) = lines.get_mut(1) {
        let cells: Vec<&str> = separator.trim_matches('|').split('|').collect();
        let marked: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, dashes)| if i >= numeric_from { format!("{}:", &dashes[1..]) } else { dashes.to_string() })
            .collect();
        *separator = format!("|{}|", marked.join("|"));
    }
    lines.iter().map(|l| format!("{}\n", l.trim_end())).collect()
}

/// Columns aligned by spaces, with a header line, for the terminal. The `numeric` columns are
/// right-aligned. Only the command line prints such tables.
#[cfg(feature = "cli")]
pub fn plain<R, C>(header: &[&str], numeric: &[usize], rows: R) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: ToString,
{
    let mut table = filled(presets::NOTHING, header, rows);
    for (i, column) in table.column_iter_mut().enumerate() {
        if numeric.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

fn filled<R, C>(style: TableStyle, header: &[&str], rows: R) -> Table
where
    R: IntoIterator<Item = Vec<C>>,
    C: ToString,
{
    let mut table = Table::new();
    table.load_style(style).set_header(header.to_vec());
    for row in rows {
        table.add_row(row.iter().map(ToString::to_string).collect::<Vec<_>>());
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_pads_by_display_width_and_marks_numeric_columns() {
        let t = markdown(&["name", "score"], 1, vec![vec!["café", "0.5"], vec!["日本", "12.25"]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[1].starts_with("|-") && lines[1].ends_with(":|"), "{t}");
        assert_eq!(lines[1].matches(':').count(), 1, "{t}");
        // Every line has the same display width: "日本" is two columns per character.
        let width =
            |l: &str| l.chars().map(|c| if ('\u{3040}'..='\u{9fff}').contains(&c) { 2 } else { 1 }).sum::<usize>();
        assert!(lines.iter().all(|l| width(l) == width(lines[0])), "{t}");
        // The number column is right-aligned.
        assert!(lines[2].contains("   0.5 |"), "{t}");
        assert!(t.ends_with("|\n"));
    }

    #[cfg(feature = "cli")]
    #[test]
    fn plain_aligns_columns_and_right_aligns_numbers() {
        let t =
            plain(&["id", "n"], &[1], vec![vec!["abcdefgh".to_string(), "7".into()], vec!["ü".into(), "123".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[1].ends_with("  7") && lines[2].ends_with("123"), "{t}");
        assert_eq!(lines[1].chars().count(), lines[2].chars().count(), "{t}");
        assert!(lines.iter().all(|l| !l.contains('|')), "{t}");
    }
}
