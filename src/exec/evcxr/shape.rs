//! The shape of a cell's code, as far as gluing code after it needs.

/// The cell's code as the statements of a block, as evcxr sees a cell.
fn parse(code: &str) -> Option<syn::Block> {
    syn::parse_str::<syn::Block>(&format!("{{\n{code}\n}}")).ok()
}

/// Whether the code ends with an expression that has no `;` after it (a
/// notebook cell's displayed value, such as `x + 1`). Code appended after such
/// a cell needs a `;` first; after an item (`fn f() {}`), evcxr rejects one.
/// Code that does not parse is left to the compiler to report. A `;` after a
/// block-like expression (`for … {}`) is harmless, so those count too.
pub fn ends_with_expression(code: &str) -> bool {
    let Some(block) = parse(code) else {
        return false;
    };
    match block.stmts.last() {
        Some(syn::Stmt::Expr(_, None)) => true,
        Some(syn::Stmt::Macro(m)) => {
            m.semi_token.is_none() && !matches!(m.mac.delimiter, syn::MacroDelimiter::Brace(_))
        }
        _ => false,
    }
}

/// Whether the cell's own statements use `?` (not inside a closure, `fn` or
/// `async` block of its own). evcxr turns such a `?` into an early return
/// from the cell, which skips any code aula puts after it.
pub fn uses_question_mark(code: &str) -> bool {
    use syn::visit::Visit;
    struct Finder(bool);
    impl<'a> Visit<'a> for Finder {
        fn visit_expr_try(&mut self, _: &'a syn::ExprTry) {
            self.0 = true;
        }
        // A macro's arguments are tokens to syn: `println!("{}", f()?)`
        // returns early all the same. Any `?` among them counts.
        fn visit_macro(&mut self, m: &'a syn::Macro) {
            self.0 |= has_question_mark(m.tokens.clone());
        }
        fn visit_expr_closure(&mut self, _: &'a syn::ExprClosure) {}
        fn visit_expr_async(&mut self, _: &'a syn::ExprAsync) {}
        fn visit_item(&mut self, _: &'a syn::Item) {}
    }
    let Some(block) = parse(code) else {
        return false;
    };
    let mut finder = Finder(false);
    finder.visit_block(&block);
    finder.0
}

fn has_question_mark(tokens: proc_macro2::TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '?',
        proc_macro2::TokenTree::Group(g) => has_question_mark(g.stream()),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_of_the_cell_itself_are_found() {
        let table = [
            ("let n: u8 = \"1\".parse()?;", true),
            ("if x { f()?; }", true),
            ("let f = || -> Result<(), ()> { g()?; Ok(()) };", false),
            ("fn f() -> Option<u8> { g()? }", false),
            ("let s = \"a?b\";", false),
            ("println!(\"{}\", 1);", false),
            ("println!(\"{}\", \"7\".parse::<u8>()?);", true),
            ("assert_eq!(f(g()?), 1);", true),
            ("broken ( code", false),
        ];
        for (code, want) in table {
            assert_eq!(uses_question_mark(code), want, "{code:?}");
        }
    }

    #[test]
    fn trailing_expressions_are_told_from_statements_and_items() {
        let table = [
            ("x + 1", true),
            ("let x = 1;\nx", true),
            ("println!(\"hi\")", true),
            ("println!(\"hi\");", false),
            ("let x = 1;", false),
            ("fn f() {}", false),
            ("fn f() {}\n// a comment;", false),
            ("x + 1 // shows 2", true),
            ("struct S;", false),
            // A `;` after a block-like expression is harmless, so it counts too.
            ("for i in 0..3 { println!(\"{i}\"); }", true),
            ("thread_local! { static X: u8 = 1; }", false),
            ("", false),
            ("let = ;", false),
        ];
        for (code, want) in table {
            assert_eq!(ends_with_expression(code), want, "{code:?}");
        }
    }
}
