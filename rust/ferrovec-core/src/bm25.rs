//! BM25 term weights in the core: `Document(text, model="qdrant/bm25")` becomes a sparse vector
//! the way a Qdrant server's inference makes one, so hybrid search needs no model download.
//!
//! Tokens: the text split at every character that is not alphanumeric, lowercased, stop words
//! (NLTK's list for the language) dropped, the rest stemmed (Snowball); a token's index is the
//! absolute value of its 32-bit murmur3 hash (seed 0) read as a signed integer. A document's
//! weight for a token is BM25's term part, `tf · (k + 1) / (tf + k · (1 − b + b · len / avg_len))`
//! with `len` its number of tokens; a query's weights are 1 for each distinct token. The
//! inverse document frequency is the collection's `modifier: idf`, applied at query time.
//! As in Qdrant, `avg_len` is a constant (256 by default), not the corpus' real average.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::point::SparseVector;

/// The one model name this module answers to (compared case-insensitively, as Qdrant does).
pub const MODEL: &str = "qdrant/bm25";

/// Qdrant's defaults.
pub const DEFAULT_K: f64 = 1.2;
pub const DEFAULT_B: f64 = 0.75;
pub const DEFAULT_AVG_LEN: f64 = 256.0;

/// The languages with a stemmer and a stop-word list: (name, Snowball algorithm, ISO code).
const LANGUAGES: &[(&str, Algorithm, &str)] = &[
    ("arabic", Algorithm::Arabic, "ar"),
    ("danish", Algorithm::Danish, "da"),
    ("dutch", Algorithm::Dutch, "nl"),
    ("english", Algorithm::English, "en"),
    ("finnish", Algorithm::Finnish, "fi"),
    ("french", Algorithm::French, "fr"),
    ("german", Algorithm::German, "de"),
    ("greek", Algorithm::Greek, "el"),
    ("hungarian", Algorithm::Hungarian, "hu"),
    ("italian", Algorithm::Italian, "it"),
    ("norwegian", Algorithm::Norwegian, "no"),
    ("portuguese", Algorithm::Portuguese, "pt"),
    ("romanian", Algorithm::Romanian, "ro"),
    ("russian", Algorithm::Russian, "ru"),
    ("spanish", Algorithm::Spanish, "es"),
    ("swedish", Algorithm::Swedish, "sv"),
    ("turkish", Algorithm::Turkish, "tr"),
];

/// A configured BM25 "model": the parameters and the token processing of one language.
pub struct Bm25 {
    k: f64,
    b: f64,
    avg_len: f64,
    language: Option<&'static Language>,
}

struct Language {
    stemmer: Stemmer,
    stop_words: HashSet<&'static str>,
}

static PREPARED: LazyLock<HashMap<&'static str, Language>> = LazyLock::new(|| {
    LANGUAGES
        .iter()
        .map(|&(name, algorithm, code)| {
            let stop_words = stop_words::lookup(code)
                .unwrap_or_default()
                .iter()
                .copied()
                .collect();
            let lang = Language {
                stemmer: Stemmer::create(algorithm),
                stop_words,
            };
            (name, lang)
        })
        .collect()
});

impl Bm25 {
    /// The model `model` with `options` (Qdrant's `Document.options`): `k`, `b`, `avg_len`,
    /// and `language` (one of `LANGUAGES`, default "english"; "none": no stop words, no
    /// stemming). Anything else is refused, naming it.
    pub fn new(model: &str, options: &Map<String, Value>) -> Result<Self> {
        if !model.eq_ignore_ascii_case(MODEL) {
            return Err(Error::invalid(format!(
                "unknown document model {model:?}: the core embeds text with {MODEL:?} only"
            )));
        }
        let number = |key: &str, default: f64| -> Result<f64> {
            match options.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                    Error::invalid(format!("document option {key:?} must be a number, got {v}"))
                }),
            }
        };
        let (k, b, avg_len) = (
            number("k", DEFAULT_K)?,
            number("b", DEFAULT_B)?,
            number("avg_len", DEFAULT_AVG_LEN)?,
        );
        if k < 0.0 || !(0.0..=1.0).contains(&b) || avg_len <= 0.0 {
            return Err(Error::invalid(format!(
                "document options out of range: k {k} (at least 0), b {b} (0 to 1), avg_len {avg_len} (above 0)"
            )));
        }
        let language = match options.get("language") {
            None | Some(Value::Null) => Some("english"),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("none") => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(v) => {
                return Err(Error::invalid(format!(
                    "document option \"language\" must be a string, got {v}"
                )))
            }
        };
        let language = match language {
            None => None,
            Some(name) => Some(
                PREPARED
                    .get(name.to_ascii_lowercase().as_str())
                    .ok_or_else(|| {
                        let known: Vec<&str> = LANGUAGES.iter().map(|l| l.0).collect();
                        Error::invalid(format!(
                            "document language {name:?} is not one of {} (or \"none\")",
                            known.join(", ")
                        ))
                    })?,
            ),
        };
        if let Some(key) = options
            .keys()
            .find(|k| !matches!(k.as_str(), "k" | "b" | "avg_len" | "language"))
        {
            return Err(Error::invalid(format!(
                "unknown document option {key:?}; the options are k, b, avg_len and language"
            )));
        }
        Ok(Bm25 {
            k,
            b,
            avg_len,
            language,
        })
    }

    /// Call `f` with each token of `text`, processed (lowercase, stop words out, stemmed).
    fn tokens(&self, text: &str, mut f: impl FnMut(&str)) {
        let mut lower = String::new();
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            lower.clear();
            for c in word.chars() {
                lower.extend(c.to_lowercase());
            }
            match self.language {
                None => f(&lower),
                Some(lang) if lang.stop_words.contains(lower.as_str()) => {}
                Some(lang) => f(&lang.stemmer.stem(&lower)),
            }
        }
    }

    /// A document's term weights.
    pub fn document(&self, text: &str) -> SparseVector {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        let mut len = 0u32;
        self.tokens(text, |t| {
            *counts.entry(token_id(t)).or_insert(0) += 1;
            len += 1;
        });
        let norm = self.k * (1.0 - self.b + self.b * f64::from(len) / self.avg_len);
        let mut entries: Vec<(u32, f32)> = counts
            .into_iter()
            .map(|(id, tf)| {
                let tf = f64::from(tf);
                (id, (tf * (self.k + 1.0) / (tf + norm)) as f32)
            })
            .collect();
        entries.sort_unstable_by_key(|e| e.0);
        SparseVector {
            indices: entries.iter().map(|e| e.0).collect(),
            values: entries.iter().map(|e| e.1).collect(),
        }
    }

    /// A query's weights: 1 for each distinct token.
    pub fn query(&self, text: &str) -> SparseVector {
        let mut ids = Vec::new();
        self.tokens(text, |t| ids.push(token_id(t)));
        ids.sort_unstable();
        ids.dedup();
        let values = vec![1.0; ids.len()];
        SparseVector {
            indices: ids,
            values,
        }
    }
}

/// `texts` embedded in parallel on the core's pool: as documents, or as queries.
pub fn embed_all(model: &Bm25, texts: &[String], query: bool) -> Vec<SparseVector> {
    use rayon::prelude::*;
    crate::pool::install(|| {
        texts
            .par_iter()
            .with_min_len(64)
            .map(|t| {
                if query {
                    model.query(t)
                } else {
                    model.document(t)
                }
            })
            .collect()
    })
}

/// A token's index in the sparse vector: Qdrant's (and fastembed's) hash of its bytes.
fn token_id(token: &str) -> u32 {
    let h = murmur3::murmur3_32(&mut token.as_bytes(), 0).unwrap_or(0);
    (h as i32).unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bm25() -> Bm25 {
        Bm25::new("Qdrant/bm25", &Map::new()).expect("model")
    }

    #[test]
    fn documents_and_queries_are_weighed_as_bm25() {
        let m = bm25();
        // "the" is a stop word; "running" and "runs" stem to "run".
        let d = m.document("The dog runs; the DOG is running.");
        let (run, dog) = (token_id("run"), token_id("dog"));
        assert_eq!(d.len(), 2, "{d:?}");
        // len = 4 tokens (dog, run, dog, run), tf 2 each.
        let norm = 1.2 * (1.0 - 0.75 + 0.75 * 4.0 / 256.0);
        let want = (2.0 * 2.2 / (2.0 + norm)) as f32;
        for id in [run, dog] {
            let i = d.indices.iter().position(|&x| x == id).expect("token");
            assert!((d.values[i] - want).abs() < 1e-6, "{}", d.values[i]);
        }
        assert!(d.indices.windows(2).all(|w| w[0] < w[1]));
        let q = m.query("running dogs, the dog");
        assert_eq!(q.indices.len(), 2);
        assert!(q.values.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn token_ids_are_murmur3_as_qdrant_computes_them() {
        // murmur3_32("hello", seed 0) = 0x248bfa47, positive as an i32.
        assert_eq!(token_id("hello"), 0x248b_fa47);
        // A hash with the top bit set is negated as a signed integer.
        let h = murmur3::murmur3_32(&mut "world".as_bytes(), 0).expect("hash");
        assert_eq!(token_id("world"), (h as i32).unsigned_abs());
    }

    #[test]
    fn bad_models_and_options_are_refused() {
        assert!(Bm25::new("sentence-transformers/all-MiniLM-L6-v2", &Map::new()).is_err());
        let opts = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(Bm25::new(MODEL, &opts(serde_json::json!({"k": "big"}))).is_err());
        assert!(Bm25::new(MODEL, &opts(serde_json::json!({"b": 2}))).is_err());
        assert!(Bm25::new(MODEL, &opts(serde_json::json!({"language": "klingon"}))).is_err());
        assert!(Bm25::new(MODEL, &opts(serde_json::json!({"tokenizer": "x"}))).is_err());
        let none = Bm25::new(MODEL, &opts(serde_json::json!({"language": "none"}))).expect("ok");
        assert_eq!(
            none.query("the running").len(),
            2,
            "nothing dropped nor stemmed"
        );
    }
}
