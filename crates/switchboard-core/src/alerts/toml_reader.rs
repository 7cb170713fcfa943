//! The reading of one TOML file key by key, for `config`: every value is
//! checked on its own and every problem recorded with its line and dotted
//! key, so that one bad key never hides the next (as the rest of the
//! catalog reports problems).
//!
//! Owns only the generic helpers (tables, arrays, strings, durations,
//! matcher lists, label names); what the keys mean is `config`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::labels::is_valid_label_name;
use super::matchers::{MatchOp, Matcher, Matchers};
use crate::catalog::CatalogError;
use crate::params::{closest, parse_duration};

pub(crate) type Entry<'i> = Spanned<DeValue<'i>>;

/// The text being read and the problems found so far.
/// One table of an array of tables.
pub(crate) struct Item<'t, 'i> {
    /// Its dotted key: `escalations[1]`.
    pub(crate) path: String,
    pub(crate) entry: &'t Entry<'i>,
    pub(crate) fields: BTreeMap<&'static str, &'t Entry<'i>>,
}

impl Item<'_, '_> {
    /// The dotted key of one of its fields.
    pub(crate) fn key(&self, field: &str) -> String {
        join(&self.path, field)
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) file: &'static str,
    pub(crate) src: &'a str,
    pub(crate) errors: Vec<CatalogError>,
}

impl Reader<'_> {
    pub(crate) fn line(&self, offset: usize) -> usize {
        crate::catalog::line_at(self.src, offset)
    }

    pub(crate) fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line(span.start);
        self.errors.push(CatalogError {
            file: self.file.into(),
            line: Some(line),
            key: (!key.is_empty()).then(|| key.to_owned()),
            message: message.into(),
        });
    }

    /// The known keys of a table (unknown ones are reported).
    pub(crate) fn fields<'t, 'i>(
        &mut self,
        table: &'t DeTable<'i>,
        path: &str,
        allowed: &[&'static str],
    ) -> BTreeMap<&'static str, &'t Entry<'i>> {
        let mut out = BTreeMap::new();
        for (k, v) in table.iter() {
            let name: &str = k.get_ref();
            match allowed.iter().find(|a| **a == name) {
                Some(a) => {
                    out.insert(*a, v);
                }
                None => {
                    let hint = closest(name, allowed)
                        .map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default();
                    self.error(k.span(), &join(path, name), format!("unknown key{hint}"));
                }
            }
        }
        out
    }

    /// The tables of the array `v` (at `key`), each with its path and its
    /// known fields; what is not a table, and unknown keys, are reported.
    pub(crate) fn tables<'t, 'i>(
        &mut self,
        v: &'t Entry<'i>,
        key: &str,
        allowed: &[&'static str],
    ) -> Vec<Item<'t, 'i>> {
        let mut out = Vec::new();
        for (i, entry) in self.array(v, key).unwrap_or_default().iter().enumerate() {
            let path = format!("{key}[{i}]");
            if let Some(table) = self.table(entry, &path) {
                let fields = self.fields(table, &path, allowed);
                out.push(Item {
                    path,
                    entry,
                    fields,
                });
            }
        }
        out
    }

    /// An item's required `name`.
    pub(crate) fn item_name(&mut self, item: &Item<'_, '_>) -> Option<String> {
        let key = join(&item.path, "name");
        match item.fields.get("name") {
            Some(n) => self.name(n, &key),
            None => {
                self.error(item.entry.span(), &key, "missing");
                None
            }
        }
    }

    pub(crate) fn table<'t, 'i>(&mut self, v: &'t Entry<'i>, key: &str) -> Option<&'t DeTable<'i>> {
        let table = v.get_ref().as_table();
        if table.is_none() {
            let found = v.get_ref().type_str();
            self.error(v.span(), key, format!("must be a table, not {found}"));
        }
        table
    }

    pub(crate) fn array<'t, 'i>(&mut self, v: &'t Entry<'i>, key: &str) -> Option<&'t [Entry<'i>]> {
        let array = v.get_ref().as_array().map(|a| &a[..]);
        if array.is_none() {
            let found = v.get_ref().type_str();
            self.error(v.span(), key, format!("must be an array, not {found}"));
        }
        array
    }

    pub(crate) fn string(&mut self, v: &Entry<'_>, key: &str) -> Option<String> {
        let s = v.get_ref().as_str().map(str::to_owned);
        if s.is_none() {
            let found = v.get_ref().type_str();
            self.error(v.span(), key, format!("must be a string, not {found}"));
        }
        s
    }

    /// A required non-empty string field of an item.
    pub(crate) fn required(&mut self, it: &Item<'_, '_>, field: &str) -> Option<String> {
        match it.fields.get(field) {
            Some(v) => self.name(v, &it.key(field)),
            None => {
                self.error(it.entry.span(), &it.key(field), "missing");
                None
            }
        }
    }

    /// A non-empty string.
    pub(crate) fn name(&mut self, v: &Entry<'_>, key: &str) -> Option<String> {
        let s = self.string(v, key)?;
        if s.trim().is_empty() {
            self.error(v.span(), key, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// An array of strings, each with its span.
    pub(crate) fn strings(
        &mut self,
        v: &Entry<'_>,
        key: &str,
    ) -> Option<Vec<(String, Range<usize>)>> {
        let items = self.array(v, key)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.string(item, &format!("{key}[{i}]")) {
                Some(s) => out.push((s, item.span())),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub(crate) fn duration(&mut self, v: &Entry<'_>, key: &str, nonzero: bool) -> Option<Duration> {
        let text = self.string(v, key)?;
        match parse_duration(&text) {
            Ok(d) if nonzero && d.is_zero() => {
                self.error(v.span(), key, "must not be zero");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(v.span(), key, e);
                None
            }
        }
    }

    /// An array of matcher lists, joined and sorted.
    pub(crate) fn matchers(&mut self, v: &Entry<'_>, key: &str) -> Option<Matchers> {
        let items = self.strings(v, key)?;
        let mut all = Matchers::default();
        let mut ok = true;
        for (i, (text, span)) in items.into_iter().enumerate() {
            match Matchers::parse(&text) {
                Ok(m) => all.extend(m),
                Err(e) => {
                    self.error(span, &format!("{key}[{i}]"), format!("`{text}`: {e}"));
                    ok = false;
                }
            }
        }
        ok.then(|| all.sorted())
    }

    /// Alertmanager's older form of matchers, still read so that routes
    /// copied from an Alertmanager configuration work: a table of label
    /// name → value (`match`, `op` `=`) or → regular expression
    /// (`match_re`, `op` `=~`, anchored like every regex matcher).
    pub(crate) fn label_table(
        &mut self,
        v: &Entry<'_>,
        key: &str,
        op: MatchOp,
    ) -> Option<Matchers> {
        let table = self.table(v, key)?;
        let mut all = Vec::new();
        let mut ok = true;
        for (name, value) in table.iter() {
            let name: &str = name.get_ref();
            let k = join(key, name);
            let Some(value) = self.string(value, &k) else {
                ok = false;
                continue;
            };
            match Matcher::new(name, op, value) {
                Ok(m) => all.push(m),
                Err(e) => {
                    self.error(v.span(), &k, e.message);
                    ok = false;
                }
            }
        }
        ok.then(|| Matchers::new(all))
    }

    /// Distinct label names.
    pub(crate) fn label_names(&mut self, v: &Entry<'_>, key: &str) -> Option<BTreeSet<String>> {
        let items = self.strings(v, key)?;
        let mut out = BTreeSet::new();
        let mut ok = true;
        for (i, (name, span)) in items.into_iter().enumerate() {
            let k = format!("{key}[{i}]");
            if !is_valid_label_name(&name) {
                self.error(span, &k, format!("`{name}` is not a valid label name"));
                ok = false;
            } else if !out.insert(name.clone()) {
                self.error(span, &k, format!("`{name}` is listed twice"));
                ok = false;
            }
        }
        ok.then_some(out)
    }
}

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
