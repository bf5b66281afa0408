//! Printing records as an aligned table (comfy-table, which measures display width, so
//! Korean names take their two columns) or as JSON.

use comfy_table::{CellAlignment, Table, presets};
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
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header(headers.iter().map(|h| h.to_uppercase())).add_rows(rows);
    for column in table.column_iter_mut() {
        column.set_cell_alignment(CellAlignment::Left);
    }
    // Columns are padded by one space on each side; the first column's left pad and trailing
    // blanks only shift the text.
    table.lines().map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(&line).trim_end())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Terminal columns `text` takes (Hangul syllables take two).
    fn width(text: &str) -> usize {
        text.chars().map(|c| if ('\u{AC00}'..='\u{D7A3}').contains(&c) { 2 } else { 1 }).sum()
    }

    #[test]
    fn columns_line_up_with_double_width_korean_names() {
        let rows = vec![
            vec!["1".into(), "김민수".into(), "kim@example.com".into()],
            vec!["10".into(), "Lee".into(), "lee@example.com".into()],
            vec!["100".into(), "박서연 팀장".into(), "park@example.com".into()],
        ];
        let out = table(&["id", "name", "email"], rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("ID") && lines[0].contains("NAME"));
        let email_start = |line: &str| line[..line.find('@').unwrap()].rfind(' ').unwrap() + 1;
        let email_column: Vec<usize> = lines[1..].iter().map(|line| width(&line[..email_start(line)])).collect();
        let header_column = width(&lines[0][..lines[0].find("EMAIL").unwrap()]);
        assert!(email_column.iter().all(|&column| column == header_column), "misaligned:\n{out}");
    }
}
