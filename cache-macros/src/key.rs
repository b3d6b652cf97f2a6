use std::fmt;

#[derive(Debug, PartialEq)]
pub(crate) struct Template {
    pub(crate) text: String,
    pub(crate) segments: Vec<Segment>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Segment {
    Lit(String),
    Arg(Placeholder),
}

/// `<param.field.field>`
#[derive(Debug, PartialEq)]
pub(crate) struct Placeholder {
    pub(crate) param: String,
    pub(crate) fields: Vec<String>,
}

/// What follows a placeholder, for the runtime's escaping.
#[derive(Debug, PartialEq)]
pub(crate) enum Next {
    Lit(char),
    Arg,
    End,
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty key template; write e.g. `key = \"service:method:<id>\"`".into());
        }
        if text.starts_with(':') {
            return Err(
                "key template starts with `:`; begin with the service name, e.g. `key = \"service:method:<id>\"`"
                    .into(),
            );
        }
        if text.contains("::") {
            return Err("key template contains `::`; separate its segments with a single `:`".into());
        }
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['<', '>']) {
            if rest[open..].starts_with('>') {
                return Err(format!("stray `>` in key template `{text}`; placeholders are written `<name>`"));
            }
            if open > 0 {
                segments.push(Segment::Lit(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            match after.find(['<', '>']) {
                Some(close) if after[close..].starts_with('>') => {
                    segments.push(Segment::Arg(Placeholder::parse(&after[..close])?));
                    rest = &after[close + 1..];
                }
                close => {
                    let inner = &after[..close.unwrap_or(after.len())];
                    return Err(format!("unclosed placeholder `<{inner}` in key template; close it with `>`"));
                }
            }
        }
        if !rest.is_empty() {
            segments.push(Segment::Lit(rest.to_owned()));
        }
        for pair in segments.windows(2) {
            if let [Segment::Arg(arg), Segment::Lit(lit)] = pair {
                if lit.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '%') {
                    return Err(format!(
                        "placeholder `{arg}` is directly followed by `{lit}` in key template; \
                         put a separator such as `_` or `:` between them"
                    ));
                }
            }
        }
        Ok(Template { text: text.to_owned(), segments })
    }

    /// The first `:`-segment, when it is plain text.
    pub(crate) fn service(&self) -> Option<&str> {
        let first = self.text.split(':').next()?;
        (!first.contains('<')).then_some(first)
    }

    /// The second `:`-segment, when it is non-empty plain text.
    pub(crate) fn method(&self) -> Option<&str> {
        let second = self.text.split(':').nth(1)?;
        (!second.is_empty() && !second.contains('<')).then_some(second)
    }

    pub(crate) fn next_after(&self, index: usize) -> Next {
        match self.segments.get(index + 1) {
            None => Next::End,
            Some(Segment::Arg(_)) => Next::Arg,
            Some(Segment::Lit(lit)) => Next::Lit(lit.chars().next().expect("literals are non-empty")),
        }
    }
}

impl Placeholder {
    fn parse(inner: &str) -> Result<Self, String> {
        if inner.is_empty() {
            return Err("empty placeholder `<>` in key template; name a parameter, e.g. `<id>`".into());
        }
        let mut parts = inner.split('.');
        let param = parts.next().unwrap_or_default();
        if param == "self" {
            return Err(format!(
                "placeholder `<{inner}>` names `self`; the key is built from the fn's parameters, name one of them"
            ));
        }
        let fields: Vec<String> = parts.map(str::to_owned).collect();
        if !is_ident(param) || !fields.iter().all(|f| is_ident(f) || is_index(f)) {
            return Err(format!(
                "invalid placeholder `<{inner}>` in key template; expected a parameter name such as `<id>` or `<id.field>`"
            ));
        }
        Ok(Placeholder { param: param.to_owned(), fields })
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "<{}", self.param)?;
        for field in &self.fields {
            write!(f, ".{field}")?;
        }
        f.write_str(">")
    }
}

fn is_ident(s: &str) -> bool {
    !s.contains(|c: char| c.is_whitespace()) && syn::parse_str::<syn::Ident>(s).is_ok()
}

fn is_index(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Lit(s.into())
    }

    fn arg(param: &str, fields: &[&str]) -> Segment {
        Segment::Arg(Placeholder { param: param.into(), fields: fields.iter().map(|f| f.to_string()).collect() })
    }

    fn err(text: &str) -> String {
        Template::parse(text).unwrap_err()
    }

    #[test]
    fn literals_and_placeholders() {
        let t = Template::parse("coingecko:price:<id>_<vs>").unwrap();
        assert_eq!(t.segments, [lit("coingecko:price:"), arg("id", &[]), lit("_"), arg("vs", &[])]);
        assert_eq!(t.service(), Some("coingecko"));
        assert_eq!(t.method(), Some("price"));
        assert_eq!(t.next_after(1), Next::Lit('_'));
        assert_eq!(t.next_after(3), Next::End);
    }

    #[test]
    fn fields_and_adjacent_placeholders() {
        let t = Template::parse("<user.id.0><r#type>").unwrap();
        assert_eq!(t.segments, [arg("user", &["id", "0"]), arg("r#type", &[])]);
        assert_eq!(t.next_after(0), Next::Arg);
        assert_eq!(t.service(), None);
        assert_eq!(t.method(), None);
    }

    #[test]
    fn service_and_method() {
        let t = Template::parse("users").unwrap();
        assert_eq!(t.segments, [lit("users")]);
        assert_eq!((t.service(), t.method()), (Some("users"), None));
        let t = Template::parse("users:<id>:profile").unwrap();
        assert_eq!((t.service(), t.method()), (Some("users"), None));
        let t = Template::parse("users:").unwrap();
        assert_eq!((t.service(), t.method()), (Some("users"), None));
    }

    #[test]
    fn malformed() {
        assert!(err("").contains("empty key template"));
        assert!(err(":a:<id>").contains("starts with `:`"));
        assert!(err("a::<id>").contains("`::`"));
        assert!(err("a:<id").contains("unclosed placeholder `<id`"));
        assert!(err("a:<id_<vs>").contains("unclosed placeholder `<id_`"));
        assert!(err("a:<>").contains("empty placeholder"));
        assert!(err("a:id>").contains("stray `>`"));
        assert!(err("a:<self>").contains("names `self`"));
        assert!(err("a:<self.id>").contains("names `self`"));
        assert!(err("a:<1d>").contains("invalid placeholder `<1d>`"));
        assert!(err("a:<a b>").contains("invalid placeholder"));
        assert!(err("a:< a>").contains("invalid placeholder"));
        assert!(err("a:<a.>").contains("invalid placeholder"));
        assert!(err("a:<a.01>").contains("invalid placeholder"));
        assert!(err("a:<fn>").contains("invalid placeholder"));
    }

    #[test]
    fn literal_after_placeholder_needs_a_separator() {
        assert!(err("a:<id>x").contains("`<id>` is directly followed by `x`"));
        assert!(err("a:<id>9").contains("separator"));
        assert!(err("a:<id>%2F").contains("separator"));
        for ok in ["a:<id>_x", "a:<id>:x", "a:<id>-x", "a:<id>.x", "a:<id>/<b>"] {
            Template::parse(ok).unwrap();
        }
    }
}
