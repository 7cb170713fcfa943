//! Secret masking: replaces every occurrence of a secret parameter's value
//! with `****` in output lines and results. It masks values it was given; it
//! does not guess what else might be secret.

/// What a masked secret looks like everywhere.
pub const MASK: &str = "****";

/// Masks a fixed set of secret values in text and JSON.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl Masker {
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s| !s.is_empty())
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// Masks every string (keys included) inside a JSON value.
    pub fn mask_json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        if self.is_empty() {
            return value;
        }
        match value {
            J::String(s) => J::String(self.mask(&s)),
            J::Array(items) => J::Array(items.into_iter().map(|v| self.mask_json(v)).collect()),
            J::Object(map) => J::Object(
                map.into_iter()
                    .map(|(k, v)| (self.mask(&k), self.mask_json(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_longest_first_and_inside_json() {
        let m = Masker::new(["abc", "abcdef", ""]);
        assert_eq!(m.mask("x abcdef y abc"), "x **** y ****");
        let v = m.mask_json(serde_json::json!({"k": ["abcdef", 1], "abc": "ok"}));
        assert_eq!(v, serde_json::json!({"k": ["****", 1], "****": "ok"}));
    }
}
