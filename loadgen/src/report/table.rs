//! Text tables for people: the columns aligned by comfy-table, without borders; the leading
//! (name) columns left-aligned, the figures right-aligned.

use comfy_table::{CellAlignment, Table, presets};

/// A text table, built row by row and rendered with [`TextTable::render`].
#[derive(Debug)]
#[must_use]
pub struct TextTable {
    table: Table,
    indent: usize,
    gap: u16,
    left_aligned: usize,
}

impl TextTable {
    /// A table under `header` (none when empty), indented by two spaces, its columns one
    /// space apart, the first one left-aligned.
    pub fn new(header: &[&str]) -> Self {
        let mut table = Table::new();
        table.load_style(presets::NOTHING);
        if !header.is_empty() {
            table.set_header(header.iter().copied());
        }
        Self {
            table,
            indent: 2,
            gap: 1,
            left_aligned: 1,
        }
    }

    /// Indented by `indent` spaces.
    pub fn indent(self, indent: usize) -> Self {
        Self { indent, ..self }
    }

    /// Columns `gap` spaces apart.
    pub fn gap(self, gap: u16) -> Self {
        Self { gap, ..self }
    }

    /// The first `columns` columns left-aligned.
    pub fn left_aligned(self, columns: usize) -> Self {
        Self {
            left_aligned: columns,
            ..self
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.table.add_row(cells.into_iter().collect::<Vec<_>>());
    }

    /// The table as lines of text, each ending in a newline, without trailing spaces.
    #[must_use]
    pub fn render(mut self) -> String {
        for (i, column) in self.table.column_iter_mut().enumerate() {
            column.set_padding((0, self.gap));
            if i >= self.left_aligned {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        let indent = " ".repeat(self.indent);
        let mut text = String::new();
        for line in self.table.lines() {
            text.push_str(&indent);
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|&cell| cell.to_owned()).collect()
    }

    #[test]
    fn names_align_left_figures_right() {
        let mut table = TextTable::new(&["shard", "objects"]);
        table.row(cells(&["shard-0", "9"]));
        table.row(cells(&["s", "1234"]));
        assert_eq!(
            table.render(),
            "  shard   objects\n  shard-0       9\n  s          1234\n"
        );
    }

    #[test]
    fn indent_gap_and_left_columns_are_chosen() {
        let mut table = TextTable::new(&[]).indent(0).gap(2).left_aligned(2);
        table.row(cells(&["join", "c", "7"]));
        table.row(cells(&["leave", "abc", "12"]));
        assert_eq!(table.render(), "join   c     7\nleave  abc  12\n");
    }
}
