//! Cedar's errors carry byte offsets; people want line and column.

use miette::Diagnostic;

/// `line L, column C: message` for each labelled location in a Cedar error.
pub fn describe(error: &dyn Diagnostic, source: &str) -> String {
    let mut message = error.to_string();
    let mut related: Vec<&dyn Diagnostic> = vec![error];
    related.extend(error.related().into_iter().flatten());
    let mut places = Vec::new();
    for diagnostic in related {
        for label in diagnostic.labels().into_iter().flatten() {
            let (line, column) = line_column(source, label.offset());
            let text = diagnostic.to_string();
            places.push(match label.label() {
                Some(l) => format!("line {line}, column {column}: {text} ({l})"),
                None => format!("line {line}, column {column}: {text}"),
            });
        }
        if let Some(help) = diagnostic.help() {
            places.push(format!("help: {help}"));
        }
    }
    places.dedup();
    if !places.is_empty() {
        message = places.join("; ");
    }
    message
}

/// 1-based line and column of a byte offset.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_line_and_column() {
        let src = "permit (principal, action, resource)\nwhen { context.x == };";
        let err = src.parse::<cedar_policy::PolicySet>().unwrap_err();
        let text = describe(&err, src);
        assert!(text.contains("line 2"), "{text}");
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
