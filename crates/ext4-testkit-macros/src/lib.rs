//! `#[oracle_test(NAME, ...)]`: a `#[test]` that libtest reports as
//! ignored, with the reason, when an oracle it names was missing when the
//! tests were built (see `build.rs` for the probe and the names).
//!
//! The test itself still asks `ext4_testkit::require` at run time: that
//! fails it in CI (`EXT4_REQUIRE_ORACLES`, where the probe marks nothing
//! missing) and skips it if the machine changed since the build.
//!
//! Names: `e2fsprogs` (e2fsck, mke2fs, dumpe2fs, debugfs), `root`,
//! `loop_mount` (root, `/dev/loop-control` and mount), `fuse`
//! (`/dev/fuse`), or one of the tools `build.rs` probes on PATH.

#![forbid(unsafe_code)]

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Marks a test that needs the named oracles; see the crate docs.
#[proc_macro_attribute]
pub fn oracle_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let names = match parse_names(args) {
        Ok(n) => n,
        Err(e) => return compile_error(&e),
    };
    let missing = env!("EXT4_ORACLES_MISSING");
    let mut out = attribute(vec![TokenTree::Ident(Ident::new("test", Span::call_site()))]);
    if let Some(reason) = ignore_reason(&names, missing) {
        let tokens = vec![
            TokenTree::Ident(Ident::new("ignore", Span::call_site())),
            TokenTree::Punct(Punct::new('=', Spacing::Alone)),
            TokenTree::Literal(Literal::string(&reason)),
        ];
        out.extend(attribute(tokens));
    }
    out.extend(item);
    out
}

/// The names given to the attribute, which must all be known ones.
fn parse_names(args: TokenStream) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for tt in args {
        match tt {
            TokenTree::Ident(i) => names.push(i.to_string()),
            TokenTree::Punct(p) if p.as_char() == ',' => {}
            other => return Err(format!("oracle_test: expected oracle names, found `{other}`")),
        }
    }
    match names.iter().find(|n| !known().any(|k| k == n.as_str())) {
        Some(n) => Err(format!("oracle_test: unknown oracle `{n}` (known: {})", known().collect::<Vec<_>>().join(", "))),
        None if names.is_empty() => Err("oracle_test: name at least one oracle".to_string()),
        None => Ok(names),
    }
}

/// Every name the attribute accepts (the probe's tools and capabilities).
fn known() -> impl Iterator<Item = &'static str> {
    env!("EXT4_ORACLE_NAMES").split(',')
}

/// The ignore reason when any of `names` is in the comma-separated `missing`.
fn ignore_reason(names: &[String], missing: &str) -> Option<String> {
    let absent: Vec<&str> = names.iter().map(String::as_str).filter(|n| missing.split(',').any(|m| m == *n)).collect();
    (!absent.is_empty()).then(|| format!("needs {} (missing at build time; EXT4_REQUIRE_ORACLES=1 fails instead)", absent.join(", ")))
}

/// `#[TOKENS]`.
fn attribute(tokens: Vec<TokenTree>) -> TokenStream {
    let group = Group::new(Delimiter::Bracket, tokens.into_iter().collect());
    [TokenTree::Punct(Punct::new('#', Spacing::Alone)), TokenTree::Group(group)].into_iter().collect()
}

/// `compile_error!("message");`
fn compile_error(message: &str) -> TokenStream {
    let args = Group::new(Delimiter::Parenthesis, TokenTree::Literal(Literal::string(message)).into());
    [
        TokenTree::Ident(Ident::new("compile_error", Span::call_site())),
        TokenTree::Punct(Punct::new('!', Spacing::Alone)),
        TokenTree::Group(args),
        TokenTree::Punct(Punct::new(';', Spacing::Alone)),
    ]
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_test_is_ignored_only_for_a_missing_oracle_it_names() {
        assert_eq!(ignore_reason(&names(&["e2fsprogs"]), ""), None);
        assert_eq!(ignore_reason(&names(&["e2fsprogs"]), "fuse,root"), None);
        let why = ignore_reason(&names(&["e2fsprogs", "loop_mount", "fuse"]), "fio,e2fsprogs,fuse").unwrap();
        assert!(why.starts_with("needs e2fsprogs, fuse "), "{why}");
        // Names match whole: `e2fsck` missing says nothing about `e2fsprogs`'s other tools being named.
        assert_eq!(ignore_reason(&names(&["e2fsprogs"]), "e2fsck"), None);
    }

    #[test]
    fn the_capabilities_are_known_names() {
        for name in ["e2fsprogs", "root", "loop_mount", "fuse", "e2fsck", "setfattr"] {
            assert!(known().any(|k| k == name), "{name}");
        }
        let missing = env!("EXT4_ORACLES_MISSING");
        assert!(missing.is_empty() || missing.split(',').all(|m| known().any(|k| k == m)), "{missing}");
    }
}
