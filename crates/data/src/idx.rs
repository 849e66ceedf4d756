//! Reader for the IDX format used by MNIST.
//!
//! An IDX file is a 4-byte magic number followed by one big-endian `u32` per dimension and the
//! payload, row-major, with no padding. The magic is `0x00 0x00 <type> <ndims>`; MNIST uses
//! type `0x08` (unsigned byte), so images are `0x00000803` (count x rows x columns) and labels
//! `0x00000801` (count). Files may be raw or gzip-compressed; compression is detected from the
//! gzip magic `1f 8b`, not from the file name.
//!
//! Every check is made against the bytes actually present: the header is never trusted for an
//! allocation, and a payload that is shorter *or* longer than the header promises is an error.

use std::io::BufRead;
use std::path::Path;

use crate::error::{DataError, IdxPromise};
use crate::input::{self, Input};

/// IDX magic of an unsigned-byte, 3-dimensional array (MNIST images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic of an unsigned-byte, 1-dimensional array (MNIST labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;
/// Number of MNIST classes: labels are digits 0..=9.
pub const MNIST_CLASSES: usize = 10;

/// The images of one IDX image file: `count` grayscale images of `height` x `width` bytes,
/// stored contiguously, row-major (0 = background, 255 = ink for MNIST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images (first header dimension).
    pub count: usize,
    /// Rows per image (second header dimension; 28 for MNIST).
    pub height: usize,
    /// Columns per image (third header dimension; 28 for MNIST).
    pub width: usize,
    /// `count * height * width` pixel bytes.
    pub pixels: Vec<u8>,
}

/// The labels of one IDX label file, each checked to be a digit 0..=9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxLabels {
    /// One class index per record.
    pub labels: Vec<u8>,
}

/// Reads an IDX image file (`0x00000803`), raw or gzip.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages, DataError> {
    let path = path.as_ref();
    parse_images(input::open(path)?)
}

/// Reads an IDX label file (`0x00000801`), raw or gzip, and checks every label is 0..=9.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<IdxLabels, DataError> {
    let path = path.as_ref();
    parse_labels(input::open(path)?)
}

/// Parses IDX image bytes (raw or gzip) held in memory; `name` is used in error messages.
pub fn parse_idx_images(bytes: &[u8], name: impl AsRef<Path>) -> Result<IdxImages, DataError> {
    parse_images(input::from_bytes(bytes, name.as_ref())?)
}

/// Parses IDX label bytes (raw or gzip) held in memory; `name` is used in error messages.
pub fn parse_idx_labels(bytes: &[u8], name: impl AsRef<Path>) -> Result<IdxLabels, DataError> {
    parse_labels(input::from_bytes(bytes, name.as_ref())?)
}

/// Encodes images as an uncompressed IDX image file (header + payload).
///
/// Useful to build fixtures; returns an error if a dimension does not fit in a `u32` or the
/// pixel count does not match.
pub fn encode_idx_images(images: &IdxImages) -> Result<Vec<u8>, DataError> {
    let dims = [images.count, images.height, images.width];
    let expected = images
        .count
        .checked_mul(images.height)
        .and_then(|v| v.checked_mul(images.width));
    if expected != Some(images.pixels.len()) {
        return Err(DataError::InvalidArgument {
            reason: format!(
                "{} pixel bytes do not make {} images of {}x{}",
                images.pixels.len(),
                images.count,
                images.height,
                images.width
            ),
        });
    }
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    out.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
    for d in dims {
        let d = u32::try_from(d).map_err(|_| DataError::InvalidArgument {
            reason: format!("dimension {d} does not fit in an IDX header"),
        })?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    Ok(out)
}

/// Encodes labels as an uncompressed IDX label file (header + payload).
pub fn encode_idx_labels(labels: &[u8]) -> Result<Vec<u8>, DataError> {
    let n = u32::try_from(labels.len()).map_err(|_| DataError::InvalidArgument {
        reason: format!("{} labels do not fit in an IDX header", labels.len()),
    })?;
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(labels);
    Ok(out)
}

fn parse_images<R: BufRead>(mut input: Input<R>) -> Result<IdxImages, DataError> {
    let dims = read_header(&mut input, IDX_IMAGES_MAGIC)?;
    let [count, height, width] = [dims[0], dims[1], dims[2]];
    let path = input.path().to_path_buf();
    if count == 0 {
        return Err(DataError::InvalidDims {
            path,
            dims,
            reason: "the header promises zero images",
        });
    }
    if height == 0 || width == 0 {
        return Err(DataError::InvalidDims {
            path,
            dims,
            reason: "image height and width must be positive",
        });
    }
    let promised = IdxPromise::Images {
        count,
        height,
        width,
    };
    let expected = u128::from(count) * u128::from(height) * u128::from(width);
    let pixels = read_payload(&mut input, promised, expected)?;
    let too_big = |_| DataError::InvalidDims {
        path: path.clone(),
        dims: vec![count, height, width],
        reason: "dimension does not fit in memory on this platform",
    };
    Ok(IdxImages {
        count: usize::try_from(count).map_err(too_big)?,
        height: usize::try_from(height).map_err(too_big)?,
        width: usize::try_from(width).map_err(too_big)?,
        pixels,
    })
}

fn parse_labels<R: BufRead>(mut input: Input<R>) -> Result<IdxLabels, DataError> {
    let dims = read_header(&mut input, IDX_LABELS_MAGIC)?;
    let count = dims[0];
    if count == 0 {
        return Err(DataError::InvalidDims {
            path: input.path().to_path_buf(),
            dims,
            reason: "the header promises zero labels",
        });
    }
    let labels = read_payload(&mut input, IdxPromise::Labels { count }, u128::from(count))?;
    check_labels(&labels, MNIST_CLASSES, input.path())?;
    Ok(IdxLabels { labels })
}

/// Checks that every label is below `num_classes`, naming the first bad record.
pub(crate) fn check_labels(
    labels: &[u8],
    num_classes: usize,
    path: &Path,
) -> Result<(), DataError> {
    match labels.iter().position(|&l| usize::from(l) >= num_classes) {
        None => Ok(()),
        Some(index) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: labels[index],
            num_classes,
        }),
    }
}

/// Reads and checks the magic, then returns the dimensions.
fn read_header<R: BufRead>(input: &mut Input<R>, magic: u32) -> Result<Vec<u32>, DataError> {
    let mut head = [0u8; 4];
    let got = input.read_full(&mut head)?;
    let ndims = (magic & 0xff) as usize;
    let needed = 4 + 4 * ndims;
    if got == 0 {
        return Err(DataError::Empty {
            path: input.path().to_path_buf(),
        });
    }
    if got < 4 {
        return Err(DataError::TruncatedHeader {
            path: input.path().to_path_buf(),
            needed,
            found: got,
        });
    }
    let found = u32::from_be_bytes(head);
    if found != magic {
        return Err(DataError::BadMagic {
            path: input.path().to_path_buf(),
            found,
            expected: magic,
        });
    }
    let mut raw = vec![0u8; 4 * ndims];
    let got = input.read_full(&mut raw)?;
    if got < raw.len() {
        return Err(DataError::TruncatedHeader {
            path: input.path().to_path_buf(),
            needed,
            found: 4 + got,
        });
    }
    Ok(raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Reads exactly `expected` payload bytes and checks that nothing follows.
fn read_payload<R: BufRead>(
    input: &mut Input<R>,
    promised: IdxPromise,
    expected: u128,
) -> Result<Vec<u8>, DataError> {
    // Read one byte more than promised to detect trailing data. `expected` is at most
    // (2^32-1)^3 < 2^96; clamping to u64 keeps the comparison correct because no real
    // stream can hold 2^64 bytes.
    let limit = u64::try_from(expected).unwrap_or(u64::MAX - 1) + 1;
    let payload = input.read_up_to(limit)?;
    let got = payload.len() as u64;
    if u128::from(got) == expected {
        return Ok(payload);
    }
    let found = if u128::from(got) > expected {
        got + input.count_rest()?
    } else {
        got
    };
    Err(DataError::PayloadLength {
        path: input.path().to_path_buf(),
        promised,
        expected,
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(count: usize, h: usize, w: usize) -> Vec<u8> {
        encode_idx_images(&IdxImages {
            count,
            height: h,
            width: w,
            pixels: (0..count * h * w).map(|i| (i % 251) as u8).collect(),
        })
        .unwrap()
    }

    #[test]
    fn round_trip_non_mnist_dims() {
        let bytes = images(3, 5, 7);
        let parsed = parse_idx_images(&bytes, "x").unwrap();
        assert_eq!((parsed.count, parsed.height, parsed.width), (3, 5, 7));
        assert_eq!(parsed.pixels.len(), 105);
    }

    #[test]
    fn gigantic_header_is_rejected_without_allocation() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
        for d in [u32::MAX, u32::MAX, u32::MAX] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(&[1, 2, 3]);
        let err = parse_idx_images(&bytes, "huge").unwrap_err();
        match err {
            DataError::PayloadLength {
                expected, found, ..
            } => {
                assert_eq!(expected, u128::from(u32::MAX).pow(3));
                assert_eq!(found, 3);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn too_long_payload_reports_actual_length() {
        let mut bytes = images(2, 2, 2);
        bytes.extend_from_slice(&[9; 10]);
        let err = parse_idx_images(&bytes, "long.idx").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(
                "long.idx: header promises 2 images of 2x2 (8 bytes) but the payload has 18 bytes"
            ),
            "{msg}"
        );
    }

    #[test]
    fn labels_round_trip_and_range() {
        let bytes = encode_idx_labels(&[0, 9, 3]).unwrap();
        assert_eq!(parse_idx_labels(&bytes, "l").unwrap().labels, vec![0, 9, 3]);
        let bad = encode_idx_labels(&[0, 10]).unwrap();
        assert!(matches!(
            parse_idx_labels(&bad, "l"),
            Err(DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            })
        ));
    }
}
