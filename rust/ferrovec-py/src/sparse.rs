//! Sparse vectors and documents between Python and the core: `ferrovec.SparseVector`, what a
//! point's sparse vector may be given as (a SparseVector, an `(indices, values)` pair, a dict,
//! any object with `indices` and `values` such as qdrant-client's, or a document to embed), and
//! a whole column of them (a list, or a scipy CSR matrix with one row per point).

use ferrovec_core::{Document, SparseInput, SparseVector};
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::json_value_from_py;
use crate::errors::invalid;

/// A sparse vector: `values` at `indices` (sorted by index when it comes from the store).
#[pyclass(name = "SparseVector", module = "ferrovec", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct PySparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

#[pymethods]
impl PySparseVector {
    #[new]
    fn new(
        py: Python<'_>,
        indices: &Bound<'_, PyAny>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Ok(PySparseVector {
            indices: indices_from_py(py, indices, "indices")?,
            values: values_from_py(py, values, "values")?,
        })
    }

    fn __len__(&self) -> usize {
        self.indices.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "SparseVector(indices={:?}, values={:?})",
            self.indices, self.values
        )
    }
}

pub fn sparse_to_py(py: Python<'_>, v: SparseVector) -> PyResult<Py<PySparseVector>> {
    Py::new(
        py,
        PySparseVector {
            indices: v.indices,
            values: v.values,
        },
    )
}

/// Indices as u32: a numpy integer array or any sequence of ints, each in 0..=4294967295.
fn indices_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u32>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, u32>>() {
        return Ok(a.as_array().to_vec());
    }
    let wide: Vec<i64> = match obj.extract::<PyReadonlyArray1<'_, i64>>() {
        Ok(a) => a.as_array().to_vec(),
        Err(_) => match obj.extract::<PyReadonlyArray1<'_, i32>>() {
            Ok(a) => a.as_array().iter().map(|&x| i64::from(x)).collect(),
            Err(_) => obj.extract::<Vec<i64>>().map_err(|_| {
                invalid(
                    py,
                    format!("sparse {what}: expected a sequence of integers in 0..=4294967295"),
                )
            })?,
        },
    };
    wide.iter()
        .map(|&i| {
            u32::try_from(i).map_err(|_| {
                invalid(
                    py,
                    format!("sparse {what}: index {i} is not in 0..=4294967295"),
                )
            })
        })
        .collect()
}

fn values_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f32>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f32>>() {
        return Ok(a.as_array().to_vec());
    }
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f64>>() {
        return Ok(a.as_array().iter().map(|&x| x as f32).collect());
    }
    let v: Vec<f64> = obj
        .extract()
        .map_err(|_| invalid(py, format!("sparse {what}: expected a sequence of numbers")))?;
    Ok(v.into_iter().map(|x| x as f32).collect())
}

fn document_from(
    py: Python<'_>,
    text: &Bound<'_, PyAny>,
    model: Option<Bound<'_, PyAny>>,
    options: Option<Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Document> {
    let text: String = text
        .extract()
        .map_err(|_| invalid(py, format!("{what}: a document's text must be a string")))?;
    let model: String = match model.filter(|m| !m.is_none()) {
        Some(m) => m
            .extract()
            .map_err(|_| invalid(py, format!("{what}: a document's model must be a string")))?,
        None => ferrovec_core::bm25::MODEL.to_string(),
    };
    let options = match options.filter(|o| !o.is_none()) {
        None => serde_json::Map::new(),
        Some(o) => match json_value_from_py(py, &o, what)? {
            serde_json::Value::Object(m) => m,
            _ => {
                return Err(invalid(
                    py,
                    format!("{what}: document options must be a dict"),
                ))
            }
        },
    };
    Ok(Document {
        text,
        model,
        options,
    })
}

/// One point's sparse vector or document, as the caller gives it.
pub fn sparse_input_from_py(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<SparseInput> {
    if let Ok(v) = obj.cast::<PySparseVector>() {
        let v = v.get();
        return Ok(SparseInput::Vector(SparseVector {
            indices: v.indices.clone(),
            values: v.values.clone(),
        }));
    }
    let vector = |i: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| -> PyResult<SparseInput> {
        Ok(SparseInput::Vector(SparseVector {
            indices: indices_from_py(py, i, what)?,
            values: values_from_py(py, v, what)?,
        }))
    };
    if let Ok(t) = obj.cast::<PyTuple>() {
        if t.len() == 2 {
            return vector(&t.get_item(0)?, &t.get_item(1)?);
        }
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        if let (Some(i), Some(v)) = (d.get_item("indices")?, d.get_item("values")?) {
            return vector(&i, &v);
        }
        if let Some(text) = d.get_item("text")? {
            return Ok(SparseInput::Document(document_from(
                py,
                &text,
                d.get_item("model")?,
                d.get_item("options")?,
                what,
            )?));
        }
    } else if obj.hasattr("indices")? && obj.hasattr("values")? {
        return vector(&obj.getattr("indices")?, &obj.getattr("values")?);
    } else if obj.hasattr("text")? && obj.hasattr("model")? {
        return Ok(SparseInput::Document(document_from(
            py,
            &obj.getattr("text")?,
            Some(obj.getattr("model")?),
            obj.getattr("options").ok(),
            what,
        )?));
    }
    Err(invalid(
        py,
        format!(
            "{what}: expected a sparse vector (a SparseVector, an (indices, values) pair or a \
             dict of them) or a Document, got {}",
            obj.get_type().name()?
        ),
    ))
}

/// A column of sparse vectors, one entry per point (`None`: the point has none): a list, or a
/// scipy sparse matrix (CSR) with one row per point.
pub fn sparse_column_from_py(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    name: &str,
) -> PyResult<Vec<Option<SparseInput>>> {
    if obj.hasattr("indptr")? && obj.hasattr("tocsr")? {
        let csr = obj.call_method0("tocsr")?;
        let ptr = indices_wide(py, &csr.getattr("indptr")?, name)?;
        let idx = indices_from_py(py, &csr.getattr("indices")?, name)?;
        let val = values_from_py(py, &csr.getattr("data")?, name)?;
        let bad = || invalid(py, format!("vector {name:?}: inconsistent CSR matrix"));
        if idx.len() != val.len() || ptr.last().copied().unwrap_or(0) as usize != idx.len() {
            return Err(bad());
        }
        return ptr
            .windows(2)
            .map(|w| {
                let (s, e) = (w[0] as usize, w[1] as usize);
                if s > e || e > idx.len() {
                    return Err(bad());
                }
                Ok(Some(SparseInput::Vector(SparseVector {
                    indices: idx[s..e].to_vec(),
                    values: val[s..e].to_vec(),
                })))
            })
            .collect();
    }
    let items: Vec<Bound<'_, PyAny>> = obj
        .try_iter()
        .map_err(|_| {
            invalid(
                py,
                format!("vector {name:?}: expected a list of sparse vectors or a CSR matrix"),
            )
        })?
        .collect::<PyResult<_>>()?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            if x.is_none() {
                Ok(None)
            } else {
                sparse_input_from_py(py, x, &format!("vector {name:?} of point #{i}")).map(Some)
            }
        })
        .collect()
}

fn indices_wide(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, i32>>() {
        return Ok(a.as_array().iter().map(|&x| i64::from(x)).collect());
    }
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, i64>>() {
        return Ok(a.as_array().to_vec());
    }
    obj.extract::<Vec<i64>>()
        .map_err(|_| invalid(py, format!("vector {name:?}: CSR indptr is not integers")))
}

/// BM25 term weights of `texts` as the core computes them for `Document(text,
/// model="qdrant/bm25")`: document weights (`query=False`) or a query's (each distinct token
/// weighs 1; the collection's IDF modifier weighs them at search time). Runs on the core's
/// threads without the GIL.
#[pyfunction]
#[pyo3(signature = (texts, *, query = false, model = "qdrant/bm25", options = None))]
pub fn bm25(
    py: Python<'_>,
    texts: Vec<String>,
    query: bool,
    model: &str,
    options: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<Py<PySparseVector>>> {
    let options = match options.filter(|o| !o.is_none()) {
        None => serde_json::Map::new(),
        Some(o) => match json_value_from_py(py, o, "options")? {
            serde_json::Value::Object(m) => m,
            _ => return Err(invalid(py, "bm25 options must be a dict")),
        },
    };
    let model =
        ferrovec_core::bm25::Bm25::new(model, &options).map_err(|e| crate::errors::to_py(py, e))?;
    let vectors = py.detach(|| ferrovec_core::bm25::embed_all(&model, &texts, query));
    vectors.into_iter().map(|v| sparse_to_py(py, v)).collect()
}
