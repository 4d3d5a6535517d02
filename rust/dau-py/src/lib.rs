//! `dau._native`: the Python face of `dau-core` (PyO3 glue only).
//!
//! * Input labels are read from NumPy without copying when the array is C-contiguous int64;
//!   planning and sampling run with the GIL released, and a plan's sets are written
//!   straight into new NumPy arrays.
//! * Errors map to `dau.errors`: `SplitError::FingerprintMismatch` → `SplitMismatchError`,
//!   every other `SplitError` → `SplitError`, every `SamplerError` → `ConfigError`, every
//!   `FingerprintError` → `RequestError` (a `SplitError`);
//!   a non-array or wrong-dtype argument → `TypeError`, a wrong shape → `ValueError`.

use dau_core::{Fingerprint, FingerprintError, SamplerError, SetName, SplitError, FINGERPRINT_LEN};
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// Instantiates `dau.errors.<class>(message)` as a Python exception.
fn dau_error(py: Python<'_>, class: &str, message: String) -> PyErr {
    let made = py
        .import("dau.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((message.clone(),)));
    match made {
        Ok(obj) => PyErr::from_value(obj),
        // dau.errors is part of the same package; fall back rather than hide the message.
        Err(_) => PyValueError::new_err(message),
    }
}

fn split_error(py: Python<'_>, err: SplitError) -> PyErr {
    let class = match err {
        SplitError::FingerprintMismatch { .. } => "SplitMismatchError",
        _ => "SplitError",
    };
    dau_error(py, class, err.to_string())
}

fn sampler_error(py: Python<'_>, err: SamplerError) -> PyErr {
    dau_error(py, "ConfigError", err.to_string())
}

fn fingerprint_error(py: Python<'_>, err: FingerprintError) -> PyErr {
    dau_error(py, "RequestError", err.to_string())
}

/// Where a bad integer argument is reported: the error class for out-of-range values.
#[derive(Clone, Copy)]
enum ArgArea {
    Split,
    Sampler,
    Request,
}

/// Reads a non-negative integer argument that fits in `u64`, with a clear error otherwise.
fn u64_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str, area: ArgArea) -> PyResult<u64> {
    if let Ok(v) = obj.extract::<u64>() {
        return Ok(v);
    }
    let type_name = obj
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    if obj.is_instance_of::<pyo3::types::PyFloat>() || obj.call_method0("__index__").is_err() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, got {type_name}"
        )));
    }
    let shown = obj
        .repr()
        .map_or_else(|_| "?".to_owned(), |r| r.to_string());
    let message = format!("{name} must be an integer in [0, 2**64), got {shown}");
    Err(match area {
        ArgArea::Split => dau_error(py, "SplitError", message),
        ArgArea::Sampler => dau_error(py, "ConfigError", message),
        ArgArea::Request => dau_error(py, "RequestError", message),
    })
}

/// Runs `f` on the int64 contents of a 1-D NumPy array with the GIL released; borrows the
/// array's memory when it is contiguous and copies it otherwise.
fn with_i64_array<R, F>(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str, f: F) -> PyResult<R>
where
    F: FnOnce(&[i64]) -> R + Send,
    R: Send,
{
    let Ok(array) = obj.cast::<PyArray1<i64>>() else {
        return Err(describe_bad_array(obj, name));
    };
    let readonly = array.try_readonly().map_err(|e| {
        PyValueError::new_err(format!(
            "{name}: the array is borrowed mutably elsewhere ({e})"
        ))
    })?;
    if let Ok(slice) = readonly.as_slice() {
        Ok(py.detach(|| f(slice)))
    } else {
        let copied: Vec<i64> = readonly.as_array().iter().copied().collect();
        Ok(py.detach(|| f(&copied)))
    }
}

fn describe_bad_array(obj: &Bound<'_, PyAny>, name: &str) -> PyErr {
    if let Ok(array) = obj.cast::<PyUntypedArray>() {
        let dtype = array
            .getattr("dtype")
            .and_then(|d| d.str())
            .map_or_else(|_| "?".to_owned(), |s| s.to_string());
        if array.ndim() != 1 {
            return PyValueError::new_err(format!(
                "{name} must be a 1-D array, got {} dimensions with shape {:?}",
                array.ndim(),
                array.shape()
            ));
        }
        return PyTypeError::new_err(format!(
            "{name} must have dtype int64, got {dtype}; convert it with \
             numpy.ascontiguousarray({name}, dtype=numpy.int64)"
        ));
    }
    let type_name = obj
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!(
        "{name} must be a 1-D numpy.ndarray of int64, got {type_name}"
    ))
}

/// Moves a vector of positions into a NumPy array (the allocation is reused).
fn owned_to_numpy(py: Python<'_>, positions: Vec<u64>) -> Bound<'_, PyArray1<i64>> {
    PyArray1::from_vec(py, positions.into_iter().map(|p| p as i64).collect())
}

/// A planned split of a training set into validation, train, forget and retain positions.
#[pyclass(frozen, name = "SplitPlan", module = "dau._native")]
struct PySplitPlan {
    inner: dau_core::SplitPlan,
}

impl PySplitPlan {
    /// One set's positions as a new int64 array, written in place with the GIL released.
    /// The array comes from `numpy.empty`: every element is written, so zeroing it first
    /// would be a wasted pass over memory.
    fn set_array<'py>(
        &self,
        py: Python<'py>,
        set: SetName,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let plan = &self.inner;
        let array = py
            .import("numpy")?
            .call_method1("empty", (plan.len(set), "int64"))?
            .cast_into::<PyArray1<i64>>()?;
        {
            let mut view = array.readwrite();
            let out = view.as_slice_mut()?;
            py.detach(|| plan.positions_into(set, out));
        }
        Ok(array)
    }
}

#[pymethods]
impl PySplitPlan {
    /// Training-split positions (all − val), ascending; a new int64 array each call.
    #[getter]
    fn train<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        self.set_array(py, SetName::Train)
    }

    /// Validation positions, ascending; a new int64 array each call.
    #[getter]
    fn val<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        self.set_array(py, SetName::Val)
    }

    /// Forget positions, ascending; a new int64 array each call.
    #[getter]
    fn forget<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        self.set_array(py, SetName::Forget)
    }

    /// Retain positions (train − forget), ascending; a new int64 array each call.
    #[getter]
    fn retain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        self.set_array(py, SetName::Retain)
    }

    /// The canonical forget spec.
    #[getter]
    fn spec(&self) -> &str {
        self.inner.spec()
    }

    /// The seed the plan was drawn with.
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed()
    }

    /// The fraction of each class carved out for validation.
    #[getter]
    fn val_fraction(&self) -> f64 {
        self.inner.val_fraction()
    }

    /// The number of classes.
    #[getter]
    fn num_classes(&self) -> u64 {
        self.inner.num_classes()
    }

    /// The size of the full training set.
    #[getter]
    fn num_samples(&self) -> u64 {
        self.inner.num_samples()
    }

    /// Classes forgotten entirely (class/classes specs), ascending.
    #[getter]
    fn forgotten_classes(&self) -> Vec<u64> {
        self.inner.forgotten_classes().to_vec()
    }

    /// Hex SHA-256 fingerprint of the four index arrays (computed once, on first use).
    #[getter]
    fn fingerprint(&self, py: Python<'_>) -> String {
        let plan = &self.inner;
        py.detach(|| plan.fingerprint().to_owned())
    }

    /// Sizes of the sets: {"val", "train", "forget", "retain"}.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, n) in self.inner.counts() {
            d.set_item(name.as_str(), n)?;
        }
        Ok(d)
    }

    /// Per-class counts of one set ("val", "train", "forget" or "retain").
    fn class_counts<'py>(
        &self,
        py: Python<'py>,
        set_name: &str,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let set = SetName::parse(set_name).map_err(|e| split_error(py, e))?;
        let counts: Vec<i64> = self
            .inner
            .class_counts(set)
            .iter()
            .map(|&n| n as i64)
            .collect();
        Ok(PyArray1::from_vec(py, counts))
    }

    /// Test-set positions to evaluate on, ascending (dropping forgotten classes if asked).
    #[pyo3(signature = (test_labels, drop_forgotten_classes = true))]
    fn test_indices<'py>(
        &self,
        py: Python<'py>,
        test_labels: &Bound<'py, PyAny>,
        drop_forgotten_classes: bool,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let plan = &self.inner;
        let result = with_i64_array(py, test_labels, "test_labels", |labels| {
            plan.test_indices(labels, drop_forgotten_classes)
        })?;
        let positions = result.map_err(|e| split_error(py, e))?;
        Ok(owned_to_numpy(py, positions))
    }

    /// The split manifest as JSON.
    fn to_json(&self, py: Python<'_>) -> String {
        let plan = &self.inner;
        py.detach(|| plan.to_json())
    }

    /// Reads a manifest written by `to_json`, verifying its fingerprint and consistency.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let parsed = py.detach(|| dau_core::SplitPlan::from_json(text));
        parsed
            .map(|inner| Self { inner })
            .map_err(|e| split_error(py, e))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let p = &self.inner;
        let fingerprint = py.detach(|| p.fingerprint().to_owned());
        let [val, train, forget, retain] = p.counts().map(|(_, n)| n);
        format!(
            "SplitPlan(spec={:?}, seed={}, val_fraction={}, num_classes={}, num_samples={}, \
             val={val}, train={train}, forget={forget}, retain={retain}, fingerprint='{}')",
            p.spec(),
            p.seed(),
            p.val_fraction(),
            p.num_classes(),
            p.num_samples(),
            &fingerprint[..16],
        )
    }

    fn __eq__(&self, py: Python<'_>, other: &Self) -> bool {
        let (a, b) = (&self.inner, &other.inner);
        py.detach(|| a == b)
    }

    fn __hash__(&self, py: Python<'_>) -> u64 {
        let plan = &self.inner;
        let fingerprint = py.detach(|| plan.fingerprint().to_owned());
        u64::from_str_radix(&fingerprint[..16], 16).unwrap_or(0)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let from_json = slf.get_type().getattr("from_json")?;
        let plan = &slf.get().inner;
        let json = py.detach(|| plan.to_json());
        Ok((from_json, PyTuple::new(py, [json])?))
    }
}

/// Plans a split of a training set (see dau._native.pyi for the full contract).
#[pyfunction]
#[pyo3(signature = (labels, num_classes, forget, seed, val_fraction = 0.1))]
fn plan_split(
    py: Python<'_>,
    labels: &Bound<'_, PyAny>,
    num_classes: &Bound<'_, PyAny>,
    forget: &str,
    seed: &Bound<'_, PyAny>,
    val_fraction: f64,
) -> PyResult<PySplitPlan> {
    let num_classes = u64_arg(py, num_classes, "num_classes", ArgArea::Split)?;
    let seed = u64_arg(py, seed, "seed", ArgArea::Split)?;
    let spec = dau_core::ForgetSpec::parse(forget).map_err(|e| split_error(py, e))?;
    let planned = with_i64_array(py, labels, "labels", |labels| {
        dau_core::plan_split(labels, num_classes, &spec, seed, val_fraction)
    })?;
    planned
        .map(|inner| PySplitPlan { inner })
        .map_err(|e| split_error(py, e))
}

/// A random permutation of 0..n for (seed, stream); use the epoch as the stream.
#[pyfunction]
fn permutation<'py>(
    py: Python<'py>,
    n: &Bound<'py, PyAny>,
    seed: &Bound<'py, PyAny>,
    stream: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let n = u64_arg(py, n, "n", ArgArea::Sampler)?;
    let seed = u64_arg(py, seed, "seed", ArgArea::Sampler)?;
    let stream = u64_arg(py, stream, "stream", ArgArea::Sampler)?;
    let drawn = py.detach(|| dau_core::permutation(n, seed, stream));
    drawn
        .map(|v| owned_to_numpy(py, v))
        .map_err(|e| sampler_error(py, e))
}

/// k uniform draws from 0..n with replacement for (seed, stream).
#[pyfunction]
fn with_replacement<'py>(
    py: Python<'py>,
    n: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    seed: &Bound<'py, PyAny>,
    stream: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let n = u64_arg(py, n, "n", ArgArea::Sampler)?;
    let k = u64_arg(py, k, "k", ArgArea::Sampler)?;
    let seed = u64_arg(py, seed, "seed", ArgArea::Sampler)?;
    let stream = u64_arg(py, stream, "stream", ArgArea::Sampler)?;
    let drawn = py.detach(|| dau_core::with_replacement(n, k, seed, stream));
    drawn
        .map(|v| owned_to_numpy(py, v))
        .map_err(|e| sampler_error(py, e))
}

/// Fingerprints [M, 16] and one int64 per row (e.g. its line in a file).
type FingerprintsAnd<'py> = (Bound<'py, PyArray2<u8>>, Bound<'py, PyArray1<i64>>);
/// Two int64 arrays of equal length.
type Int64Pair<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// Reads an optional thread count (`None`: all cores).
fn threads_arg(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => {
            let t = u64_arg(py, o, "threads", ArgArea::Request)?;
            usize::try_from(t)
                .map(Some)
                .map_err(|_| dau_error(py, "RequestError", format!("threads = {t} is too large")))
        }
    }
}

fn dtype_name(array: &Bound<'_, PyUntypedArray>) -> String {
    array
        .getattr("dtype")
        .and_then(|d| d.str())
        .map_or_else(|_| "?".to_owned(), |s| s.to_string())
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// Runs `f` on the bytes of a uint8 array of at least `min_dims` dimensions (a copy when it
/// is not C-contiguous) and its shape, with the GIL released.
fn with_u8_array<R, F>(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    name: &str,
    min_dims: usize,
    f: F,
) -> PyResult<R>
where
    F: FnOnce(&[u8], &[usize]) -> R + Send,
    R: Send,
{
    let Ok(array) = obj.cast::<PyArrayDyn<u8>>() else {
        if let Ok(untyped) = obj.cast::<PyUntypedArray>() {
            return Err(PyTypeError::new_err(format!(
                "{name} must have dtype uint8, got {}; convert it with \
                 numpy.ascontiguousarray({name}, dtype=numpy.uint8)",
                dtype_name(untyped)
            )));
        }
        return Err(PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray of uint8, got {}",
            type_name(obj)
        )));
    };
    let shape = array.shape().to_vec();
    if shape.len() < min_dims {
        return Err(PyValueError::new_err(format!(
            "{name} must have at least {min_dims} dimensions (samples first), got shape {shape:?}"
        )));
    }
    let readonly = array.try_readonly().map_err(|e| {
        PyValueError::new_err(format!(
            "{name}: the array is borrowed mutably elsewhere ({e})"
        ))
    })?;
    if let Ok(slice) = readonly.as_slice() {
        Ok(py.detach(|| f(slice, &shape)))
    } else {
        let copied: Vec<u8> = readonly.as_array().iter().copied().collect();
        Ok(py.detach(|| f(&copied, &shape)))
    }
}

/// Runs `f` on an array of fingerprints (uint8, shape [M, 16]) with the GIL released.
fn with_fingerprints<R, F>(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str, f: F) -> PyResult<R>
where
    F: FnOnce(&[Fingerprint]) -> R + Send,
    R: Send,
{
    let result = with_u8_array(py, obj, name, 2, |bytes, shape| {
        if shape.len() != 2 || shape[1] != FINGERPRINT_LEN {
            return Err(shape.to_vec());
        }
        let fps: Vec<Fingerprint> = bytes
            .chunks_exact(FINGERPRINT_LEN)
            .map(|c| {
                let mut fp = [0u8; FINGERPRINT_LEN];
                fp.copy_from_slice(c);
                fp
            })
            .collect();
        Ok(f(&fps))
    })?;
    result.map_err(|shape| {
        PyValueError::new_err(format!(
            "{name} must have shape [M, {FINGERPRINT_LEN}] (one 16-byte fingerprint per row), \
             got {shape:?}"
        ))
    })
}

fn fingerprints_to_numpy(py: Python<'_>, fps: Vec<Fingerprint>) -> Bound<'_, PyArray2<u8>> {
    let n = fps.len();
    let flat: Vec<u8> = fps.into_iter().flatten().collect();
    Array2::from_shape_vec((n, FINGERPRINT_LEN), flat)
        .unwrap_or_else(|_| Array2::zeros((0, FINGERPRINT_LEN)))
        .into_pyarray(py)
}

/// Fingerprints of samples (uint8 array [N, ...]; each sample's bytes in C order), in parallel.
#[pyfunction]
#[pyo3(signature = (samples, threads = None))]
fn fingerprint_samples<'py>(
    py: Python<'py>,
    samples: &Bound<'py, PyAny>,
    threads: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let threads = threads_arg(py, threads)?;
    let result = with_u8_array(py, samples, "samples", 2, |bytes, shape| {
        let sample_len: usize = shape[1..].iter().product();
        dau_core::fingerprint_samples(bytes, sample_len, threads)
    })?;
    result
        .map(|fps| fingerprints_to_numpy(py, fps))
        .map_err(|e| fingerprint_error(py, e))
}

/// The dataset digest of fingerprints in position order (64 hex digits).
#[pyfunction]
fn fingerprint_digest(py: Python<'_>, fingerprints: &Bound<'_, PyAny>) -> PyResult<String> {
    with_fingerprints(py, fingerprints, "fingerprints", dau_core::digest)
}

/// Fingerprints as lists of 32 lowercase hex digits.
#[pyfunction]
fn fingerprints_to_hex(py: Python<'_>, fingerprints: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    with_fingerprints(py, fingerprints, "fingerprints", |fps| {
        fps.iter().map(dau_core::fingerprint::to_hex).collect()
    })
}

/// Reads a fingerprint file: (fingerprints [M, 16] uint8, 1-based line of each, int64).
#[pyfunction]
fn read_fingerprints<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
) -> PyResult<FingerprintsAnd<'py>> {
    let listed = py
        .detach(|| dau_core::read_fingerprints(&path))
        .map_err(|e| fingerprint_error(py, e))?;
    let lines: Vec<i64> = listed.iter().map(|l| l.line as i64).collect();
    let fps: Vec<Fingerprint> = listed.into_iter().map(|l| l.fingerprint).collect();
    Ok((fingerprints_to_numpy(py, fps), PyArray1::from_vec(py, lines)))
}

/// Matches request fingerprints against a dataset's: (items, positions), int64, sorted.
#[pyfunction]
#[pyo3(signature = (dataset, request, threads = None))]
fn resolve_fingerprints<'py>(
    py: Python<'py>,
    dataset: &Bound<'py, PyAny>,
    request: &Bound<'py, PyAny>,
    threads: Option<&Bound<'py, PyAny>>,
) -> PyResult<Int64Pair<'py>> {
    let threads = threads_arg(py, threads)?;
    let req = with_fingerprints(py, request, "request", <[Fingerprint]>::to_vec)?;
    let pairs = with_fingerprints(py, dataset, "dataset", |data| {
        dau_core::resolve(data, &req, threads)
    })?
    .map_err(|e| fingerprint_error(py, e))?;
    let (items, positions): (Vec<i64>, Vec<i64>) =
        pairs.into_iter().map(|(i, p)| (i as i64, p as i64)).unzip();
    Ok((PyArray1::from_vec(py, items), PyArray1::from_vec(py, positions)))
}

/// Plans a split whose forget set is a resolved request (see dau._native.pyi).
#[pyfunction]
#[pyo3(signature = (labels, num_classes, forget, seed, positions, val_fraction = 0.1))]
fn plan_split_request<'py>(
    py: Python<'py>,
    labels: &Bound<'py, PyAny>,
    num_classes: &Bound<'py, PyAny>,
    forget: &str,
    seed: &Bound<'py, PyAny>,
    positions: &Bound<'py, PyAny>,
    val_fraction: f64,
) -> PyResult<(PySplitPlan, Bound<'py, PyArray1<i64>>)> {
    let num_classes = u64_arg(py, num_classes, "num_classes", ArgArea::Split)?;
    let seed = u64_arg(py, seed, "seed", ArgArea::Split)?;
    let spec = dau_core::ForgetSpec::parse(forget).map_err(|e| split_error(py, e))?;
    let positions = with_i64_array(py, positions, "positions", |p| p.to_vec())?;
    let positions: Vec<u64> = positions
        .into_iter()
        .map(|p| u64::try_from(p).unwrap_or(u64::MAX))
        .collect();
    let planned = with_i64_array(py, labels, "labels", |labels| {
        dau_core::plan_split_request(labels, num_classes, &spec, seed, val_fraction, &positions)
    })?;
    let (inner, in_val) = planned.map_err(|e| split_error(py, e))?;
    Ok((PySplitPlan { inner }, owned_to_numpy(py, in_val)))
}

/// Rank `rank`'s share of the permutation of 0..n for (seed, stream).
#[pyfunction]
fn permutation_shard<'py>(
    py: Python<'py>,
    n: &Bound<'py, PyAny>,
    seed: &Bound<'py, PyAny>,
    stream: &Bound<'py, PyAny>,
    rank: &Bound<'py, PyAny>,
    world_size: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let [n, seed, stream, rank, world_size] = [
        (n, "n"),
        (seed, "seed"),
        (stream, "stream"),
        (rank, "rank"),
        (world_size, "world_size"),
    ]
    .map(|(o, name)| u64_arg(py, o, name, ArgArea::Sampler));
    let (n, seed, stream, rank, world_size) = (n?, seed?, stream?, rank?, world_size?);
    let drawn = py.detach(|| dau_core::permutation_shard(n, seed, stream, rank, world_size));
    drawn
        .map(|v| owned_to_numpy(py, v))
        .map_err(|e| sampler_error(py, e))
}

/// Rank `rank`'s k draws with replacement from 0..n for (seed, stream).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn with_replacement_shard<'py>(
    py: Python<'py>,
    n: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    seed: &Bound<'py, PyAny>,
    stream: &Bound<'py, PyAny>,
    rank: &Bound<'py, PyAny>,
    world_size: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let [n, k, seed, stream, rank, world_size] = [
        (n, "n"),
        (k, "k"),
        (seed, "seed"),
        (stream, "stream"),
        (rank, "rank"),
        (world_size, "world_size"),
    ]
    .map(|(o, name)| u64_arg(py, o, name, ArgArea::Sampler));
    let (n, k, seed, stream, rank, world_size) = (n?, k?, seed?, stream?, rank?, world_size?);
    let drawn =
        py.detach(|| dau_core::with_replacement_shard(n, k, seed, stream, rank, world_size));
    drawn
        .map(|v| owned_to_numpy(py, v))
        .map_err(|e| sampler_error(py, e))
}

/// The sampler stream of a set ("val", "train", "forget", "retain") for an epoch or step.
#[pyfunction]
fn set_stream(py: Python<'_>, set_name: &str, index: &Bound<'_, PyAny>) -> PyResult<u64> {
    let set = SetName::parse(set_name).map_err(|e| split_error(py, e))?;
    let index = u64_arg(py, index, "index", ArgArea::Sampler)?;
    Ok(dau_core::set_stream(set, index))
}

/// Split planning, deterministic samplers, split manifests and sample fingerprints (Rust).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SPLIT_ALGORITHM_VERSION", dau_core::SPLIT_ALGORITHM_VERSION)?;
    m.add("MANIFEST_SCHEMA_VERSION", dau_core::MANIFEST_SCHEMA_VERSION)?;
    m.add("DEFAULT_VAL_FRACTION", dau_core::DEFAULT_VAL_FRACTION)?;
    m.add("MAX_CLASSES", dau_core::MAX_CLASSES)?;
    m.add_class::<PySplitPlan>()?;
    m.add_function(wrap_pyfunction!(plan_split, m)?)?;
    m.add_function(wrap_pyfunction!(permutation, m)?)?;
    m.add_function(wrap_pyfunction!(with_replacement, m)?)?;
    m.add("FINGERPRINT_ALGORITHM", dau_core::FINGERPRINT_ALGORITHM)?;
    m.add("FINGERPRINT_LEN", FINGERPRINT_LEN)?;
    m.add_function(wrap_pyfunction!(fingerprint_samples, m)?)?;
    m.add_function(wrap_pyfunction!(fingerprint_digest, m)?)?;
    m.add_function(wrap_pyfunction!(fingerprints_to_hex, m)?)?;
    m.add_function(wrap_pyfunction!(read_fingerprints, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_fingerprints, m)?)?;
    m.add_function(wrap_pyfunction!(plan_split_request, m)?)?;
    m.add_function(wrap_pyfunction!(permutation_shard, m)?)?;
    m.add_function(wrap_pyfunction!(with_replacement_shard, m)?)?;
    m.add_function(wrap_pyfunction!(set_stream, m)?)?;
    Ok(())
}
