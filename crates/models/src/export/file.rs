//! Host tensors and the safetensors file format: an 8-byte little-endian header length, a
//! JSON header (name -> dtype, shape, byte offsets; `__metadata__` a string -> string map),
//! then the raw little-endian values in row-major order.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::error::ExportError;

/// The values of a host tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// 32-bit floats (every model parameter).
    F32(Vec<f32>),
    /// 64-bit integers (indices and labels of an evaluation dump).
    I64(Vec<i64>),
}

impl HostData {
    /// The safetensors name of the element type.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            HostData::F32(_) => "F32",
            HostData::I64(_) => "I64",
        }
    }

    fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::I64(v) => v.len(),
        }
    }

    fn to_le_bytes(&self) -> (Dtype, Vec<u8>) {
        match self {
            HostData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        }
    }
}

/// A tensor on the host: a shape and its values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, `shape.iter().product()` of them.
    pub data: HostData,
}

impl HostTensor {
    /// A float tensor; the caller guarantees `values.len() == shape.iter().product()`.
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Self {
        Self {
            shape,
            data: HostData::F32(values),
        }
    }

    /// An integer tensor; the caller guarantees `values.len() == shape.iter().product()`.
    pub fn i64(shape: Vec<usize>, values: Vec<i64>) -> Self {
        Self {
            shape,
            data: HostData::I64(values),
        }
    }
}

/// The tensors and metadata of a safetensors file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TensorFile {
    /// Tensors by name.
    pub tensors: BTreeMap<String, HostTensor>,
    /// The `__metadata__` map.
    pub metadata: HashMap<String, String>,
}

/// The bytes of a safetensors file holding `file`.
pub fn serialize(file: &TensorFile, path: &Path) -> Result<Vec<u8>, ExportError> {
    let format = |reason: String| ExportError::Format {
        file: path.to_path_buf(),
        reason,
    };
    let mut raw = Vec::with_capacity(file.tensors.len());
    for (name, t) in &file.tensors {
        if t.data.len() != t.shape.iter().product::<usize>() {
            return Err(format(format!(
                "tensor `{name}` has {} values for shape {:?}",
                t.data.len(),
                t.shape
            )));
        }
        let (dtype, bytes) = t.data.to_le_bytes();
        raw.push((name.as_str(), dtype, t.shape.clone(), bytes));
    }
    let mut views = Vec::with_capacity(raw.len());
    for (name, dtype, shape, bytes) in &raw {
        let view = TensorView::new(*dtype, shape.clone(), bytes)
            .map_err(|e| format(format!("tensor `{name}`: {e}")))?;
        views.push((*name, view));
    }
    let metadata = (!file.metadata.is_empty()).then(|| file.metadata.clone());
    safetensors::serialize(views, metadata).map_err(|e| format(e.to_string()))
}

/// Writes `file` to `path` atomically (a temporary file, then a rename).
pub fn write_file(file: &TensorFile, path: &Path) -> Result<(), ExportError> {
    let bytes = serialize(file, path)?;
    fep_data::atomic_write(path, &bytes).map_err(|e| ExportError::Io {
        file: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Parses the bytes of a safetensors file; `path` names it in errors. Tensors other than
/// F32 and I64 are refused with their name.
pub fn deserialize(bytes: &[u8], path: &Path) -> Result<TensorFile, ExportError> {
    let format = |reason: String| ExportError::Format {
        file: path.to_path_buf(),
        reason,
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let parsed = SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in parsed.iter() {
        let data = match view.dtype() {
            Dtype::F32 => HostData::F32(
                view.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::I64 => HostData::I64(
                view.data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            other => {
                return Err(ExportError::Dtype {
                    file: path.to_path_buf(),
                    name: name.to_string(),
                    found: format!("{other:?}"),
                    expected: "F32 (or I64 for indices)".into(),
                });
            }
        };
        let shape = view.shape().to_vec();
        tensors.insert(name.to_string(), HostTensor { shape, data });
    }
    Ok(TensorFile { tensors, metadata })
}

/// Reads the safetensors file at `path`.
pub fn read_file(path: &Path) -> Result<TensorFile, ExportError> {
    let bytes = std::fs::read(path).map_err(|source| ExportError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    deserialize(&bytes, path)
}
