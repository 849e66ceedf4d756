//! PNG contact sheets of sample images (grayscale for 1 channel, RGB for 3).

use std::path::Path;

use crate::atomic::atomic_write;
use crate::dataset::ImageDataset;
use crate::error::DataError;

/// Layout of a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridOptions {
    /// Images per row.
    pub columns: usize,
    /// Pixels of background between and around tiles.
    pub padding: usize,
    /// Integer nearest-neighbour upscaling of each image.
    pub scale: usize,
    /// Background byte value (all channels).
    pub background: u8,
}

impl Default for GridOptions {
    fn default() -> Self {
        Self {
            columns: 10,
            padding: 2,
            scale: 2,
            background: 64,
        }
    }
}

/// An 8-bit image, interleaved (`Gray` or `RGB` per pixel), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// `height * width * channels` bytes.
    pub pixels: Vec<u8>,
}

impl GridImage {
    /// Encodes the image as PNG bytes; `path` only names the target in errors.
    pub fn to_png(&self, path: &Path) -> Result<Vec<u8>, DataError> {
        let err = |source| DataError::Png {
            path: path.to_path_buf(),
            source,
        };
        let too_big = || DataError::InvalidArgument {
            reason: format!(
                "grid of {}x{} is too large for PNG",
                self.width, self.height
            ),
        };
        let width = u32::try_from(self.width).map_err(|_| too_big())?;
        let height = u32::try_from(self.height).map_err(|_| too_big())?;
        let color = match self.channels {
            1 => png::ColorType::Grayscale,
            3 => png::ColorType::Rgb,
            c => {
                return Err(DataError::InvalidArgument {
                    reason: format!("cannot write {c}-channel images as PNG"),
                });
            }
        };
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(color);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(err)?;
            writer.write_image_data(&self.pixels).map_err(err)?;
            writer.finish().map_err(err)?;
        }
        Ok(out)
    }
}

/// Tiles the images at `indices` row by row. Planar dataset images (`[c, h, w]`) are
/// interleaved for display; 1-channel images stay grayscale, 3-channel become RGB.
pub fn render_grid(
    dataset: &ImageDataset,
    indices: &[usize],
    options: GridOptions,
) -> Result<GridImage, DataError> {
    let [c, h, w] = dataset.shape();
    if c != 1 && c != 3 {
        return Err(DataError::InvalidArgument {
            reason: format!("cannot render {c}-channel images"),
        });
    }
    if indices.is_empty() || options.columns == 0 || options.scale == 0 {
        return Err(DataError::InvalidArgument {
            reason: "a grid needs at least one image, one column and scale >= 1".to_string(),
        });
    }
    let cols = options.columns.min(indices.len());
    let rows = indices.len().div_ceil(cols);
    let (th, tw) = (h * options.scale, w * options.scale);
    let pad = options.padding;
    let width = cols * (tw + pad) + pad;
    let height = rows * (th + pad) + pad;
    let mut pixels = vec![options.background; width * height * c];
    for (k, &index) in indices.iter().enumerate() {
        let image = dataset.image(index).ok_or(DataError::IndexOutOfRange {
            index,
            len: dataset.len(),
        })?;
        let (row, col) = (k / cols, k % cols);
        let (y0, x0) = (pad + row * (th + pad), pad + col * (tw + pad));
        for y in 0..th {
            for x in 0..tw {
                let (sy, sx) = (y / options.scale, x / options.scale);
                let dst = ((y0 + y) * width + x0 + x) * c;
                for ch in 0..c {
                    pixels[dst + ch] = image[ch * h * w + sy * w + sx];
                }
            }
        }
    }
    Ok(GridImage {
        width,
        height,
        channels: c,
        pixels,
    })
}

/// Renders the images at `indices` as a grid and writes it to `path` as PNG, atomically.
pub fn write_png_grid(
    path: impl AsRef<Path>,
    dataset: &ImageDataset,
    indices: &[usize],
    options: GridOptions,
) -> Result<(), DataError> {
    let path = path.as_ref();
    let grid = render_grid(dataset, indices, options)?;
    let bytes = grid.to_png(path)?;
    atomic_write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Split, mnist_class_names};

    #[test]
    fn rgb_grid_round_trips_through_png() {
        // Two 3x1x2 images: pixel (0,0) red 10 green 20 blue 30, pixel (0,1) 11 21 31.
        let images = vec![10, 11, 20, 21, 30, 31, 1, 2, 3, 4, 5, 6];
        let ds = ImageDataset::new(
            Split::Test,
            [3, 1, 2],
            images,
            vec![0, 1],
            mnist_class_names(),
        )
        .unwrap();
        let opts = GridOptions {
            columns: 2,
            padding: 1,
            scale: 1,
            background: 0,
        };
        let grid = render_grid(&ds, &[0, 1], opts).unwrap();
        assert_eq!((grid.width, grid.height), (7, 3));
        let at = |x: usize, y: usize| &grid.pixels[(y * grid.width + x) * 3..][..3];
        assert_eq!(at(1, 1), &[10, 20, 30]);
        assert_eq!(at(2, 1), &[11, 21, 31]);
        assert_eq!(at(4, 1), &[1, 3, 5]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        write_png_grid(&path, &ds, &[0, 1], opts).unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(&buf[..info.buffer_size()], &grid.pixels[..]);
        assert!(render_grid(&ds, &[2], opts).is_err());
    }
}
