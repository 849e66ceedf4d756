//! Errors of safetensors export and import: every error about one tensor names it.

use std::path::PathBuf;

/// What can go wrong between a fep model and a safetensors file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A parameter of the model has no PyTorch name in the table of its architecture.
    #[error(
        "cannot export a {architecture} model: its parameter `{path}` has no PyTorch name \
         (the name table of crates/models/src/export/names.rs does not cover it)"
    )]
    Unmapped {
        /// Kebab-case architecture name.
        architecture: String,
        /// Burn path of the parameter (enum variants left out), e.g. `encoder.conv1.weight`.
        path: String,
    },
    /// The name table lists a parameter the model does not have.
    #[error("the {architecture} model has no parameter `{path}` for the PyTorch tensor `{name}`")]
    NotInModel {
        /// Kebab-case architecture name.
        architecture: String,
        /// Burn path the table expected.
        path: String,
        /// The PyTorch name it maps to.
        name: String,
    },
    /// The file lacks a tensor the model needs.
    #[error("{}: missing tensor `{name}` (shape {expected:?}) that a {architecture} model needs{hint}", file.display())]
    Missing {
        /// The file.
        file: PathBuf,
        /// The PyTorch name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// Kebab-case architecture name.
        architecture: String,
        /// The file's tensors the model does not know (`"; the file has ..."`) or empty.
        hint: String,
    },
    /// The file has a tensor the model has no place for.
    #[error("{}: unexpected tensor `{name}`: a {architecture} model has no such parameter{hint}", file.display())]
    Unexpected {
        /// The file.
        file: PathBuf,
        /// The PyTorch name in the file.
        name: String,
        /// Kebab-case architecture name.
        architecture: String,
        /// A closest expected name, if any (`" (did you mean `...`?)"`) or empty.
        hint: String,
    },
    /// A tensor of the file has another shape than the model's parameter.
    #[error("{}: tensor `{name}` has shape {found:?}, the model expects {expected:?}", file.display())]
    Shape {
        /// The file.
        file: PathBuf,
        /// The PyTorch name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the model expects (PyTorch layout).
        expected: Vec<usize>,
    },
    /// A tensor of the file has another element type than the one expected.
    #[error("{}: tensor `{name}` is {found}, expected {expected}", file.display())]
    Dtype {
        /// The file.
        file: PathBuf,
        /// The tensor's name.
        name: String,
        /// Element type in the file.
        found: String,
        /// Element type expected.
        expected: String,
    },
    /// The file's metadata lacks a key or holds a value that does not parse.
    #[error("{}: metadata: {reason}", file.display())]
    Metadata {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file is not a valid safetensors file.
    #[error("{}: not a valid safetensors file: {reason}", file.display())]
    Format {
        /// The file.
        file: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// Reading a tensor back from the backend failed.
    #[error("reading tensor `{name}` from the backend: {reason}")]
    Backend {
        /// The tensor's name.
        name: String,
        /// The backend's message.
        reason: String,
    },
    /// The file could not be read or written.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
