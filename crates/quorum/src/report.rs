//! One document model, three renderings: every command builds a [`Doc`] (plus a serde value for JSON), so text
//! and markdown cannot say different things. Text aligns table columns by character count so the arithmetic
//! lines up like a proof.

/// A piece of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Heading(String),
    /// Prose: one paragraph.
    Para(String),
    /// Lines that must keep their line breaks (a derivation, a list of hosts).
    Lines(Vec<String>),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

/// A report as a sequence of blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doc {
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn heading(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Heading(text.into()));
    }

    pub fn para(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Para(text.into()));
    }

    pub fn lines(&mut self, lines: Vec<String>) {
        self.blocks.push(Block::Lines(lines));
    }

    pub fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>) {
        self.blocks.push(Block::Table { header: header.iter().map(|h| h.to_string()).collect(), rows });
    }

    /// Plain text: headings underlined, tables in aligned columns, blocks separated by a blank line.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        for block in &self.blocks {
            out.push(match block {
                Block::Heading(text) => format!("{text}\n{}", "-".repeat(text.chars().count())),
                Block::Para(text) => text.clone(),
                Block::Lines(lines) => lines.join("\n"),
                Block::Table { header, rows } => aligned(header, rows),
            });
        }
        out.join("\n\n") + "\n"
    }

    /// GitHub-flavoured markdown: `###` headings, fenced derivations, pipe tables.
    pub fn to_markdown(&self) -> String {
        let mut out = Vec::new();
        for block in &self.blocks {
            out.push(match block {
                Block::Heading(text) => format!("### {text}"),
                Block::Para(text) => text.clone(),
                Block::Lines(lines) => format!("```text\n{}\n```", lines.join("\n")),
                Block::Table { header, rows } => {
                    let cell = |c: &String| if c.is_empty() { " ".to_string() } else { c.replace('|', "\\|") };
                    let row =
                        |cells: &Vec<String>| format!("| {} |", cells.iter().map(cell).collect::<Vec<_>>().join(" | "));
                    let mut lines = vec![row(header), format!("|{}", "---|".repeat(header.len()))];
                    lines.extend(rows.iter().map(row));
                    lines.join("\n")
                }
            });
        }
        out.join("\n\n") + "\n"
    }
}

fn aligned(header: &[String], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths = vec![0; columns];
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |row: &[String]| {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .take(columns)
            .map(|(i, cell)| format!("{cell}{}", " ".repeat(widths[i] - cell.chars().count())))
            .collect();
        cells.join("  ").trim_end().to_string()
    };
    std::iter::once(line(header)).chain(rows.iter().map(|r| line(r))).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tables_align_by_characters_not_bytes() {
        let mut doc = Doc::default();
        doc.table(&["a", "b"], vec![vec!["≥≥".into(), "x".into()], vec!["yyy".into(), "z".into()]]);
        assert_eq!(doc.to_text(), "a    b\n≥≥   x\nyyy  z\n");
        assert!(doc.to_markdown().starts_with("| a | b |\n|---|---|\n| ≥≥ | x |"));
    }
}
