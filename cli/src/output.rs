//! Printing records as an aligned table or as JSON.

use serde::Serialize;

use crate::Format;

/// Prints `rows` under `headers` as a table, or `json` as pretty JSON.
pub fn print<J: Serialize>(
    format: Format,
    headers: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
    json: &J,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(json)?),
        Format::Table => print!("{}", table(headers, rows)),
    }
    Ok(())
}

fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> =
            cells.into_iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let out = table(&["id", "email"], vec![vec!["1".into(), "a@x.io".into()], vec!["10".into(), "b@x.io".into()]]);
        assert_eq!(out, "ID  EMAIL\n1   a@x.io\n10  b@x.io\n");
    }
}
