//! Payload paths: `a.b`, `tags[]`, `a[].b`, `a[0]` as filters, payload selectors and payload
//! operations name a place in a point's JSON payload; reading the values there, setting and
//! removing them, and the prefix tree a payload selector applies.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    /// `[]`: every element of an array.
    All,
    /// `[n]`: one element of an array.
    Index(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path(pub Vec<Step>);

/// The keys of a payload selector (`with_payload=[...]`, or an exclude list) merged into a
/// prefix tree, applied the way Qdrant applies them: object keys by name, `[]` to every element
/// of an array; `[n]` selects nothing; a shorter path takes in everything under it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathTree {
    keys: BTreeMap<String, Sub>,
    items: Option<Sub>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Sub {
    All,
    Tree(Box<PathTree>),
}

impl Sub {
    fn include(&self, v: &Value) -> Value {
        match self {
            Sub::All => v.clone(),
            Sub::Tree(t) => t.include(v),
        }
    }
}

impl PathTree {
    pub fn new(paths: &[Path]) -> Self {
        let mut tree = PathTree::default();
        for p in paths {
            tree.insert(&p.0);
        }
        tree
    }

    fn insert(&mut self, steps: &[Step]) {
        let Some((first, rest)) = steps.split_first() else {
            return;
        };
        let slot = match first {
            Step::Key(k) => self
                .keys
                .entry(k.clone())
                .or_insert_with(|| Sub::Tree(Box::default())),
            Step::All => self.items.get_or_insert_with(|| Sub::Tree(Box::default())),
            Step::Index(_) => return, // selects nothing, but its parent stays a tree
        };
        if rest.is_empty() {
            *slot = Sub::All;
        } else if let Sub::Tree(t) = slot {
            t.insert(rest);
        }
    }

    /// Only the parts of `payload` the paths name, in payload order.
    pub fn include_map(&self, payload: &Map<String, Value>) -> Map<String, Value> {
        payload
            .iter()
            .filter_map(|(k, x)| self.keys.get(k).map(|s| (k.clone(), s.include(x))))
            .collect()
    }

    fn include(&self, v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(self.include_map(m)),
            Value::Array(items) => match &self.items {
                None => Value::Array(Vec::new()),
                Some(s) => Value::Array(items.iter().map(|x| s.include(x)).collect()),
            },
            other => other.clone(),
        }
    }

    /// `payload` without the parts the paths name.
    pub fn exclude_map(&self, payload: &Map<String, Value>) -> Map<String, Value> {
        payload
            .iter()
            .filter_map(|(k, x)| match self.keys.get(k) {
                None => Some((k.clone(), x.clone())),
                Some(Sub::All) => None,
                Some(Sub::Tree(t)) => Some((k.clone(), t.exclude(x))),
            })
            .collect()
    }

    fn exclude(&self, v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(self.exclude_map(m)),
            Value::Array(items) => match &self.items {
                None => v.clone(),
                Some(Sub::All) => Value::Array(Vec::new()),
                Some(Sub::Tree(t)) => Value::Array(items.iter().map(|x| t.exclude(x)).collect()),
            },
            other => other.clone(),
        }
    }
}

impl Path {
    pub fn parse(key: &str, at: &str) -> Result<Path> {
        let bad = |why: &str| Error::invalid(format!("{at}: invalid key {key:?}: {why}"));
        if key.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut steps = Vec::new();
        for part in key.split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if name.is_empty() {
                return Err(bad("a part between dots is empty"));
            }
            steps.push(Step::Key(name.to_string()));
            while !rest.is_empty() {
                let close = rest.find(']').ok_or_else(|| bad("'[' without ']'"))?;
                let inner = &rest[1..close];
                if inner.is_empty() {
                    steps.push(Step::All);
                } else {
                    let n = inner
                        .parse::<usize>()
                        .map_err(|_| bad("only [] and [number] may follow a name"))?;
                    steps.push(Step::Index(n));
                }
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(bad("text after ']' must be another '[' or a '.'"));
                }
            }
        }
        Ok(Path(steps))
    }

    /// The values at this path in `payload`; a final array is flattened.
    pub fn values<'a>(&self, payload: &'a Map<String, Value>) -> Vec<&'a Value> {
        let mut out = Vec::new();
        if let Some((Step::Key(first), rest)) = self.0.split_first() {
            if let Some(v) = payload.get(first) {
                collect(v, rest, &mut out);
            }
        }
        out
    }
}

impl Path {
    /// Remove what this path names, as Qdrant's `delete_payload` does: a path that names
    /// nothing changes nothing; one ending in `[]` empties that array; one ending in `[n]`
    /// changes nothing (a Qdrant server does not remove array elements by index, since doing
    /// so twice would remove two).
    pub fn remove(&self, payload: &mut Map<String, Value>) {
        match self.0.split_first() {
            Some((Step::Key(first), [])) => {
                payload.shift_remove(first);
            }
            Some((Step::Key(first), rest)) => {
                if let Some(v) = payload.get_mut(first) {
                    remove_in(v, rest);
                }
            }
            _ => {}
        }
    }
}

impl Path {
    /// Set `value`'s keys in the object at this path, as Qdrant's `set_payload(key=...)` does:
    /// missing objects on the way are created and a value of another type in the way is
    /// replaced (by an object at a key; by an empty array at `[n]` or `[]`, which then takes
    /// nothing); `[]` applies to every element, `[n]` only to an element that exists. With
    /// `null_removes`, a null in `value` removes its key.
    pub fn set(
        &self,
        payload: &mut Map<String, Value>,
        value: &Map<String, Value>,
        null_removes: bool,
    ) {
        if let Some((Step::Key(first), rest)) = self.0.split_first() {
            let slot = payload
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            set_at(slot, rest, value, null_removes);
        }
    }
}

/// Merge `value` into the object `slot` leads to along `steps` (see `Path::set`).
fn set_at(slot: &mut Value, steps: &[Step], value: &Map<String, Value>, null_removes: bool) {
    match steps.split_first() {
        None | Some((Step::Key(_), _)) if !slot.is_object() => {
            *slot = Value::Object(Map::new());
            set_at(slot, steps, value, null_removes);
        }
        None => {
            if let Value::Object(m) = slot {
                for (k, v) in value {
                    if null_removes && v.is_null() {
                        m.shift_remove(k);
                    } else {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        Some((Step::Key(k), rest)) => {
            if let Value::Object(m) = slot {
                let next = m
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                set_at(next, rest, value, null_removes);
            }
        }
        Some((Step::Index(i), rest)) => match slot {
            Value::Array(items) => {
                if let Some(x) = items.get_mut(*i) {
                    set_at(x, rest, value, null_removes);
                }
            }
            other => *other = Value::Array(Vec::new()),
        },
        Some((Step::All, rest)) => match slot {
            Value::Array(items) => {
                for x in items {
                    set_at(x, rest, value, null_removes);
                }
            }
            other => *other = Value::Array(Vec::new()),
        },
    }
}

fn remove_in(v: &mut Value, steps: &[Step]) {
    match (steps, v) {
        ([Step::Key(k)], Value::Object(m)) => {
            m.shift_remove(k);
        }
        ([Step::Key(k), rest @ ..], Value::Object(m)) => {
            if let Some(x) = m.get_mut(k) {
                remove_in(x, rest);
            }
        }
        ([Step::All], Value::Array(items)) => items.clear(),
        ([Step::All, rest @ ..], Value::Array(items)) => {
            for x in items {
                remove_in(x, rest);
            }
        }
        ([Step::Index(i), rest @ ..], Value::Array(items)) if !rest.is_empty() => {
            if let Some(x) = items.get_mut(*i) {
                remove_in(x, rest);
            }
        }
        _ => {}
    }
}

fn collect<'a>(v: &'a Value, steps: &[Step], out: &mut Vec<&'a Value>) {
    match steps.split_first() {
        None => match v {
            Value::Array(items) => out.extend(items.iter()),
            _ => out.push(v),
        },
        Some((Step::Key(k), rest)) => {
            if let Some(x) = v.as_object().and_then(|m| m.get(k)) {
                collect(x, rest, out);
            }
        }
        Some((Step::All, rest)) => {
            if let Value::Array(items) = v {
                for x in items {
                    collect(x, rest, out);
                }
            }
        }
        Some((Step::Index(i), rest)) => {
            if let Some(x) = v.as_array().and_then(|a| a.get(*i)) {
                collect(x, rest, out);
            }
        }
    }
}
