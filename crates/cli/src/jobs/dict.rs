//! A JSON object that keeps its keys in order and is handled as the official client
//! handles its Python dicts: `get`, `pop`, assignment (in place, or appended when new).
//!
//! The order shows in the output: `images` prints the keys of the image objects as columns
//! in the order the server sent them, and the request bodies keep the official key order.
//! (`serde_json::Map` sorts its keys unless a feature this workspace does not enable is on.)
//!
//! It implements `Serialize` by hand for the request bodies of `run` and `load`: the wire
//! structs of `api-types` are for the server side and carry no `Serialize` for requests.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// An ordered JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dict(Vec<(String, Value)>);

impl Dict {
    /// The value of `key`, if present (it may be `null`).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `dict.get(key)` is not `None`: present and not `null`.
    pub fn is_set(&self, key: &str) -> bool {
        self.get(key).is_some_and(|value| !value.is_null())
    }

    /// `dict[key] = value`: replaces in place, or appends a new key.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// `dict.pop(key, None)`.
    pub fn pop(&mut self, key: &str) -> Option<Value> {
        let idx = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(idx).1)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Python's truthiness of a JSON value.
pub fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => number.as_f64().is_some_and(|n| n != 0.0),
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
    }
}

impl<'de> Deserialize<'de> for Dict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dict, D::Error> {
        struct DictVisitor;

        impl<'de> Visitor<'de> for DictVisitor {
            type Value = Dict;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dict, A::Error> {
                let mut dict = Dict::default();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    dict.set(&key, value);
                }
                Ok(dict)
            }
        }

        deserializer.deserialize_map(DictVisitor)
    }
}

impl Serialize for Dict {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
